"""``skvrf evaluate``: every method on an ID test set and OOD sets, one report.

Methods: the zero-shot head, the fine-tuned model, the output-space ensemble
(OSE), the entropy-weighted ensemble, VRF, and the rows of
:func:`~skvrf.evaluation.compare_methods` (the tolerance rule, selective
prediction, VRF's all-rows bank, GLA), all sharing the same frozen components
and the same calibration (temperatures fitted on ``--val``).

Model selection uses ``--val`` only, never the test or OOD sets: the fine-tuned
LogisticRegression's ``C`` is the best of ``--Cs`` by validation accuracy (ties to
the smaller C; ``--C`` skips the choice), OSE's alpha is
the best of ``--alphas`` by validation accuracy (a loop, ties to the smaller
alpha), and VRF's ``k``, ``threshold`` and ``temperature`` are the best of their
grids by validation accuracy, found by :class:`~skvrf.VRFEnsembleClassifierCV`
with one predefined split (fit on ``--train``, score on ``--val``; by default
the thresholds are quantiles of the ``--val`` rows' distances and the
temperatures fractions of their spread, so they suit any encoder); the chosen
VRF is then fitted on ``--train`` alone. The "(tolerance)" rows take, instead of
the best, the most zero-shot-leaning candidate within ``--tol`` of the best
validation accuracy. The chosen values are printed and written to
``selection.json``.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..evaluation import DEFAULT_ALPHAS, DEFAULT_VRF_GRID
from ..evaluation._compare import DEFAULT_TOL
from ._common import (
    DEFAULT_CS,
    FEATURE_FILE_HELP,
    add_clip_benchmark_arguments,
    add_store_arguments,
    candidates_or,
    comma_list,
    finetuned_component,
    k_value,
    load_evaluation_files,
    ood_spec,
    write_clip_benchmark_results,
    write_outputs,
)

__all__ = ["configure_parser", "main"]

_DESCRIPTION = f"""\
Fit zero-shot, fine-tuned, OSE, entropy-ensemble, VRF, selective-prediction
and GLA models on feature files, tune them on --val, and report their scores on
--test and each --ood set.

{FEATURE_FILE_HELP}

The fine-tuned model is a LogisticRegression fitted on --train, its C chosen on
--val from --Cs (default 0.01,0.1,1,10,100; best validation accuracy, ties to the
smaller C; an explicit --C is used as given), or the fixed linear head of --head
(an .npz with 'coef', optional 'intercept', 'classes', 'normalize_input'; or a
fine-tuned checkpoint read safely by skvrf.clip.load_linear_head). Both
components are used frozen; each ensemble's calibration temperatures are fitted
on --val.

OOD class maps: an --ood file that covers only some of the model's classes
(ImageNet-A/R) holds 'class_map_kept' (m,), the model classes it covers: each
model's logits are restricted to them. A file whose labels pool several model
classes (ObjectNet) holds 'class_map_source' and 'class_map_target' (m,) each:
model class class_map_source[i] counts as set label class_map_target[i] (max
logit over a label's classes); model classes not listed are dropped. Labels of
such a file ('classes'[labels]) are values of the kept classes or the targets.

Model selection uses --val only (never --test or --ood): the LogisticRegression's
C (unless --C or --head is given); OSE's alpha by validation accuracy over
--alphas; VRF's k x threshold x temperature grid by validation accuracy
(VRFEnsembleClassifierCV with one predefined split: fitted on --train, scored on
--val; by default thresholds at quantiles of the --val rows' k-th ZSF distances
and temperatures as fractions of their interquartile range, for each k, so the
candidates lie inside your features' distances whatever the encoder), then
refitted on --train; the "(tolerance)" rows: the smallest OSE alpha,
and the VRF candidate of lowest mean fine-tuned weight on --val, whose
validation accuracy is within --tol of the best; the selective-prediction rows'
thresholds pass 95 % of --val.

Writes to --out: report.md (the markdown tables), report.json
(RobustnessReport.to_dict(); methods 'zero-shot', 'fine-tuned', 'OSE',
'entropy', 'VRF', 'VRF (paper defaults)', 'OSE (tolerance)', 'VRF (tolerance)',
'selective (MSP)', 'selective (energy)', 'selective (MD)', 'selective (RMD)',
'selective (kNN)', 'VRF (all-rows bank)', 'zero-shot (GLA)', 'VRF (paper
defaults, GLA)'; --no-baselines keeps the first eight), selection.json (chosen
parameters, the grid VRF searched with the values tried for each k under
'vrf'/'grid', the fine-tuned model's C under 'finetuned'), and the plots
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
        type=candidates_or("quantiles"),
        default=DEFAULT_VRF_GRID["thresholds"],
        help="VRF threshold candidates: 'quantiles' (default: for each k, the "
        "0.05, 0.15, 0.3, 0.5, 0.7, 0.85, 0.95 and 0.99 quantiles of the --val "
        "rows' k-th ZSF distances) or comma-separated values (e.g. 1.0,1.5 for "
        "CLIP ViT-B/16-like distances)",
    )
    parser.add_argument(
        "--temperatures",
        type=candidates_or("spread"),
        default=DEFAULT_VRF_GRID["temperatures"],
        help="VRF temperature candidates: 'spread' (default: for each k, 0.05, "
        "0.1, 0.25, 0.5, 1, 2 and 4 times the interquartile range of those "
        "distances) or comma-separated values",
    )
    parser.add_argument(
        "--C",
        type=float,
        default=None,
        help="LogisticRegression C, used as given (default: chosen on --val from --Cs)",
    )
    parser.add_argument(
        "--Cs",
        type=comma_list(float),
        default=list(DEFAULT_CS),
        help="LogisticRegression C candidates chosen from on --val by accuracy "
        "when --C is not given (default %(default)s)",
    )
    parser.add_argument(
        "--tol",
        type=float,
        default=DEFAULT_TOL,
        help="tolerance in validation accuracy of the '(tolerance)' rows "
        "(default %(default)s: one point)",
    )
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the selective-prediction, all-rows-bank and GLA rows",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    add_store_arguments(parser)
    add_clip_benchmark_arguments(parser)
    return parser


def run(args) -> int:
    """Run ``skvrf evaluate``; see the module docstring."""
    from ..evaluation import compare_methods, evaluate_shifts, sweep_alpha

    say = lambda *a: print(*a, file=sys.stderr)  # noqa: E731
    files = load_evaluation_files(args)
    train, val, test, ood = files["train"], files["val"], files["test"], files["ood"]
    os.makedirs(args.out, exist_ok=True)

    ft, ft_info = finetuned_component(args, files["head"], train, val)
    grid = {
        "ks": args.ks,
        "thresholds": args.thresholds,
        "temperatures": args.temperatures,
    }
    estimators, selection = compare_methods(
        files["zeroshot"],
        ft,
        train,
        val,
        alphas=args.alphas,
        vrf_grid=grid,
        tol=args.tol,
        baselines=not args.no_baselines,
    )
    selection = {"selected_on": os.fspath(args.val), "finetuned": ft_info, **selection}
    vrf = estimators["VRF"]
    chosen = selection["vrf"]
    c_text = f"C={ft_info['C']:g} ({ft_info['chosen_on']}); " if "C" in ft_info else ""
    say(
        f"selected on {args.val}: fine-tuned {c_text}OSE "
        f"alpha={selection['ose']['alpha']:g}; "
        f"VRF k={chosen['k']} (k_={chosen['k_used']}), "
        f"threshold={chosen['threshold']:g}, temperature={chosen['temperature']:g}"
    )
    tolerant = selection["tolerance"]
    say(
        f"tolerance rule (within {tolerant['tol']:g} of the best): OSE "
        f"alpha={tolerant['ose']['alpha']:g}; VRF k={tolerant['vrf']['k']}, "
        f"threshold={tolerant['vrf']['threshold']:g}, "
        f"temperature={tolerant['vrf']['temperature']:g}"
    )
    sweep = sweep_alpha(estimators["OSE"], test, ood, args.alphas, scoring=args.scoring)
    report = evaluate_shifts(
        estimators, test, ood, scoring=args.scoring, sweeps={"OSE": sweep}
    )
    print(report.to_markdown())
    write_outputs(args.out, report, selection, vrf, test, ood, plots=not args.no_plots)
    write_clip_benchmark_results(args, estimators, test, ood)
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
