"""``skvrf evaluate``: every method on an ID test set and OOD sets, one report.

Methods: the zero-shot head, the fine-tuned model, the output-space ensemble
(OSE), the entropy-weighted ensemble and VRF, all sharing the same frozen
components and the same calibration (temperatures fitted on ``--val``).

Model selection uses ``--val`` only, never the test or OOD sets: OSE's alpha is
the best of ``--alphas`` by validation accuracy (a loop, ties to the smaller
alpha), and VRF's ``k``, ``threshold`` and ``temperature`` are the best of their
grids by validation accuracy, found by :class:`~skvrf.VRFEnsembleClassifierCV`
with one predefined split (fit on ``--train``, score on ``--val``); the chosen
VRF is then fitted on ``--train`` alone. The chosen values are printed and
written to ``selection.json``.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..evaluation import DEFAULT_ALPHAS, DEFAULT_VRF_GRID
from ._common import (
    FEATURE_FILE_HELP,
    comma_list,
    k_value,
    load_components,
    load_set,
    ood_spec,
    write_outputs,
)

__all__ = ["configure_parser", "main"]

_DESCRIPTION = f"""\
Fit zero-shot, fine-tuned, OSE, entropy-ensemble and VRF models on feature
files, tune them on --val, and report their scores on --test and each --ood set.

{FEATURE_FILE_HELP}

The fine-tuned model is a LogisticRegression fitted on --train, or the fixed
linear head of --head (an .npz with 'coef', optional 'intercept', 'classes',
'normalize_input'; or a fine-tuned checkpoint read safely by
skvrf.clip.load_linear_head). Both components are used frozen; each ensemble's
calibration temperatures are fitted on --val.

OOD class maps: an --ood file that covers only some of the model's classes
(ImageNet-A/R) holds 'class_map_kept' (m,), the model classes it covers: each
model's logits are restricted to them. A file whose labels pool several model
classes (ObjectNet) holds 'class_map_source' and 'class_map_target' (m,) each:
model class class_map_source[i] counts as set label class_map_target[i] (max
logit over a label's classes); model classes not listed are dropped. Labels of
such a file ('classes'[labels]) are values of the kept classes or the targets.

Model selection uses --val only (never --test or --ood): OSE's alpha by
validation accuracy over --alphas; VRF's k x threshold x temperature grid by
validation accuracy (VRFEnsembleClassifierCV with one predefined split: fitted on
--train, scored on --val), then refitted on --train.

Writes to --out: report.md (the markdown tables), report.json
(RobustnessReport.to_dict()), selection.json (chosen parameters), and the plots
tradeoff.png (ID vs OOD accuracy with the OSE alpha curve) and weights.png (VRF's
weights per set); plots need matplotlib and are skipped with --no-plots.
"""


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``evaluate`` arguments to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The (sub)command parser.

    Returns
    -------
    parser : argparse.ArgumentParser
        The same parser.
    """
    parser.description = _DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--train", required=True, help="training features (.npz)")
    parser.add_argument(
        "--val", required=True, help="ID validation features: calibration, tuning"
    )
    parser.add_argument("--test", required=True, help="ID test features")
    parser.add_argument(
        "--ood",
        action="append",
        type=ood_spec,
        required=True,
        metavar="NAME=FILE",
        help="an OOD test set (repeat for several); may carry a class map",
    )
    parser.add_argument(
        "--zeroshot", required=True, help="class text embeddings (.npz)"
    )
    parser.add_argument(
        "--head", default=None, help="fine-tuned linear head file (default: fit LR)"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--scoring",
        type=comma_list(str),
        default=["accuracy"],
        help="comma-separated metrics: accuracy, log_loss, ece (default accuracy)",
    )
    parser.add_argument(
        "--alphas",
        type=comma_list(float),
        default=list(DEFAULT_ALPHAS),
        help="OSE alphas to choose from (default 0,0.1,...,1)",
    )
    parser.add_argument(
        "--ks",
        type=comma_list(k_value),
        default=list(DEFAULT_VRF_GRID["ks"]),
        help="VRF k candidates (ints, auto, authors; default %(default)s)",
    )
    parser.add_argument(
        "--thresholds",
        type=comma_list(float),
        default=list(DEFAULT_VRF_GRID["thresholds"]),
        help="VRF threshold candidates (default %(default)s)",
    )
    parser.add_argument(
        "--temperatures",
        type=comma_list(float),
        default=list(DEFAULT_VRF_GRID["temperatures"]),
        help="VRF temperature candidates (default %(default)s)",
    )
    parser.add_argument(
        "--C", type=float, default=1.0, help="LogisticRegression C (without --head)"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    return parser


def _fit_finetuned(X, y, head, C):
    from sklearn.linear_model import LogisticRegression

    if head is not None:
        return head
    return LogisticRegression(C=C, max_iter=1000).fit(X, y)


def run(args) -> int:
    """Run ``skvrf evaluate``; see the module docstring."""
    from ..evaluation import compare_methods, evaluate_shifts, sweep_alpha

    say = lambda *a: print(*a, file=sys.stderr)  # noqa: E731
    names = [name for name, _ in args.ood]
    if len(set(names)) != len(names):
        raise ValueError(f"--ood: set names must be unique, got {names}.")
    X, y, zs, head = load_components(args.train, args.zeroshot, args.head)
    X_val, y_val = load_set(args.val)
    test = load_set(args.test)
    ood = {name: load_set(path, class_map=True) for name, path in args.ood}
    for path, Z in [(args.val, X_val), (args.test, test[0])] + [
        (p, ood[n][0]) for n, p in args.ood
    ]:
        if Z.shape[1] != X.shape[1]:
            raise ValueError(
                f"{path} has {Z.shape[1]} features but {args.train} has {X.shape[1]}."
            )
    ood = {n: (d[0], d[1]) if d[2] is None else d for n, d in ood.items()}
    os.makedirs(args.out, exist_ok=True)

    ft = _fit_finetuned(X, y, head, args.C)
    grid = {
        "ks": args.ks,
        "thresholds": args.thresholds,
        "temperatures": args.temperatures,
    }
    estimators, selection = compare_methods(
        zs, ft, (X, y), (X_val, y_val), alphas=args.alphas, vrf_grid=grid
    )
    selection["selected_on"] = os.fspath(args.val)
    vrf = estimators["VRF"]
    chosen = selection["vrf"]
    say(
        f"selected on {args.val}: OSE alpha={selection['ose']['alpha']:g}; "
        f"VRF k={chosen['k']} (k_={chosen['k_used']}), "
        f"threshold={chosen['threshold']:g}, temperature={chosen['temperature']:g}"
    )
    sweep = sweep_alpha(estimators["OSE"], test, ood, args.alphas, scoring=args.scoring)
    report = evaluate_shifts(
        estimators, test, ood, scoring=args.scoring, sweeps={"OSE": sweep}
    )
    print(report.to_markdown())
    write_outputs(args.out, report, selection, vrf, test, ood, plots=not args.no_plots)
    say(f"wrote {args.out}")
    return 0


def main(args: argparse.Namespace) -> int:
    """Run ``skvrf evaluate`` with parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From a parser set up by :func:`configure_parser`.

    Returns
    -------
    status : int
        0 on success. Missing files, bad keys or shapes raise errors that
        :func:`skvrf.cli.main` reports with exit status 2.
    """
    return run(args)
