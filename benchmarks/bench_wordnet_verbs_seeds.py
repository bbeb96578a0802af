"""The embedded WordNet verb benchmark over several train/validation redraws.

Runs the comparison of ``skvrf demo --benchmark wordnet-verbs`` (every method
that :func:`skvrf.evaluation.compare_methods` returns, all tuned on ID
validation only; the probe's C chosen on validation) for each seed, and prints

- accuracy on ID test and on each shift, mean and standard deviation over
  seeds;
- each method's difference to the fine-tuned probe, averaged over seeds, with a
  95 % paired bootstrap interval (test and shift rows resampled, the same
  resample for every method and seed);
- the zero-shot model's effective robustness on each shift: the probe's drop
  from ID minus the zero-shot model's, with its interval;
- VRF against OSE (OOD mean difference and interval; the OSE alpha sweep at
  VRF's ID accuracy).

and writes ``results.json``, ``results.md`` and ``tradeoff.png`` to ``--out``.

Usage::

    python benchmarks/bench_wordnet_verbs_seeds.py --seeds 0 1 2 3 4 --out DIR

Embeddings are cached (``--cache-dir``, default skvrf's cache; first run: a
few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from _fixed_grid import NAME as FIXED
from _fixed_grid import fixed_grid_vrf

from skvrf import ZeroShotClassifier
from skvrf.commands._common import fit_finetuned
from skvrf.datasets import benchmark_feature_suite
from skvrf.evaluation import compare_methods, sweep_alpha

BENCHMARK = "wordnet-verbs"
FT = "fine-tuned"
ZS = "zero-shot"


def run(seed, cache_dir):
    suite = benchmark_feature_suite(
        BENCHMARK, seed=seed, cache_dir=cache_dir, verbose=0
    )
    zs = ZeroShotClassifier(suite.class_embeddings).fit(suite.train[0])
    ft, ft_info = fit_finetuned(suite.train, suite.validation, max_iter=2000)
    estimators, selection = compare_methods(zs, ft, suite.train, suite.validation)
    estimators[FIXED], selection["fixed_grid"] = fixed_grid_vrf(
        zs, ft, suite.train, suite.validation
    )
    sets = {"id": suite.test, **suite.shifts}
    correct = {
        name: {s: est.predict(X) == y for s, (X, y) in sets.items()}
        for name, est in estimators.items()
    }
    sweep = sweep_alpha(estimators["OSE"], suite.test, suite.shifts)
    selection = {"finetuned": ft_info, **selection}
    return correct, sweep, selection


def bootstrap_weights(n, n_boot, rng):
    """(n_boot, n) resampling counts, each row a bootstrap draw of n rows."""
    idx = rng.integers(0, n, size=(n_boot, n))
    w = np.zeros((n_boot, n))
    np.add.at(w, (np.repeat(np.arange(n_boot), n), idx.ravel()), 1.0)
    return w / n


def tradeoff_figure_of(results):
    """ID vs mean OOD accuracy (seed means), with OSE's alpha sweep as a curve:
    skvrf demo's two-panel figure (:func:`skvrf.plotting._robustness.tradeoff_figure`),
    drawn from a results.json (the documentation build draws it this way)."""
    import matplotlib

    matplotlib.use("Agg")
    from skvrf.plotting import RobustnessDisplay
    from skvrf.plotting._robustness import tradeoff_figure

    acc = results["accuracy"]
    sweep = results["ose_sweep"]
    n_seeds, n_sets = len(results["seeds"]), len(results["sets"]) - 2
    display = RobustnessDisplay(
        id_scores={m: float(np.mean(acc[m]["id"])) for m in results["methods"]},
        ood_scores={m: float(np.mean(acc[m]["ood_mean"])) for m in results["methods"]},
        sweeps={"OSE": (sweep["alphas"], sweep["id"], sweep["ood_mean"])},
        n_ood_sets=n_sets,
        zeroshot_name=ZS,
        finetuned_name=FT,
    )
    seeds = f"mean of {n_seeds} seed{'s' * (n_seeds > 1)}"
    return tradeoff_figure(
        display, title=f"WordNet verb supersenses (MiniLM-L6), {seeds}"
    )


def plot_tradeoff(results, path):
    """Write :func:`tradeoff_figure_of` to ``path``."""
    import matplotlib.pyplot as plt

    fig = tradeoff_figure_of(results)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=Path("bench-wordnet-verbs"))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument(
        "--replot", type=Path, help="redraw tradeoff.png from a results.json"
    )
    args = parser.parse_args()
    if args.replot:
        results = json.loads(args.replot.read_text())
        plot_tradeoff(results, args.replot.parent / "tradeoff.png")
        return
    t0 = time.perf_counter()
    runs = []
    for seed in args.seeds:
        correct, sweep, selection = run(seed, args.cache_dir)
        runs.append((correct, sweep, selection))
        ose, vrf = selection["ose"], selection["vrf"]
        print(
            f"seed {seed}: C={selection['finetuned']['C']:g}, alpha={ose['alpha']}, "
            f"VRF k={vrf['k']} (k_={vrf['k_used']}), a={vrf['threshold']}, "
            f"b={vrf['temperature']}, |ZSF|={selection['zsf_size']}"
            + (
                f"; tolerance: alpha={tol['ose']['alpha']}, VRF k={tol['vrf']['k']}, "
                f"a={tol['vrf']['threshold']}, b={tol['vrf']['temperature']}, "
                f"mean w={tol['vrf']['finetuned_weight']}"
                if (tol := selection.get("tolerance"))
                else ""
            )
            + f" ({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    methods = list(runs[0][0])
    sets = list(runs[0][0][methods[0]])
    shifts = [s for s in sets if s != "id"]
    # correct[s]: (n_methods, n_seeds, n_rows)
    C = {
        s: np.array([[r[0][m][s] for r in runs] for m in methods], dtype=np.float64)
        for s in sets
    }
    acc = {s: C[s].mean(axis=2) for s in sets}  # (n_methods, n_seeds)
    acc["ood_mean"] = np.mean([acc[s] for s in shifts], axis=0)
    columns = [*sets, "ood_mean"]

    rng = np.random.default_rng(0)
    boot = {}
    for s in sets:
        W = bootstrap_weights(C[s].shape[2], args.n_boot, rng)
        boot[s] = np.einsum("msn,bn->bms", C[s], W).mean(axis=2)  # (B, methods)
    boot["ood_mean"] = np.mean([boot[s] for s in shifts], axis=0)
    point = {s: acc[s].mean(axis=1) for s in columns}
    i_ft, i_zs = methods.index(FT), methods.index(ZS)

    def interval(col, fn):
        est = 100 * fn(point[col][None, :])[0]
        draws = 100 * fn(boot[col])
        lo, hi = np.percentile(draws, [2.5, 97.5])
        return float(est), float(lo), float(hi)

    diffs = {
        m: {col: interval(col, lambda a, i=i: a[:, i] - a[:, i_ft]) for col in columns}
        for i, m in enumerate(methods)
        if m != FT
    }

    er = {}
    for s in shifts:
        est_id, est_s = point["id"], point[s]
        est = 100 * ((est_id[i_ft] - est_s[i_ft]) - (est_id[i_zs] - est_s[i_zs]))
        draws = 100 * (
            (boot["id"][:, i_ft] - boot[s][:, i_ft])
            - (boot["id"][:, i_zs] - boot[s][:, i_zs])
        )
        lo, hi = np.percentile(draws, [2.5, 97.5])
        er[s] = (float(est), float(lo), float(hi))

    pairs = [("VRF", "OSE"), ("VRF (tolerance)", "OSE (tolerance)")]
    pairs += [("VRF (paper defaults)", "OSE"), ("VRF", FIXED), (FIXED, "OSE")]
    versus = {}
    for a, b in pairs:
        if a in methods and b in methods:
            ia, ib = methods.index(a), methods.index(b)
            versus[f"{a} - {b}"] = {
                col: interval(col, lambda x, ia=ia, ib=ib: x[:, ia] - x[:, ib])
                for col in ("id", "ood_mean")
            }

    # OSE's alpha sweep, averaged over seeds; its OOD mean at VRF's ID accuracy
    sweeps = [r[1] for r in runs]
    alphas = sweeps[0].alphas
    sw_id = np.mean([sw.scores["accuracy"]["id"] for sw in sweeps], axis=0)
    sw_ood = np.mean([sw.scores["accuracy"]["ood_mean"] for sw in sweeps], axis=0)

    def ose_at(id_acc):
        order = np.argsort(sw_id)
        return float(np.interp(id_acc, sw_id[order], sw_ood[order]))

    lines = [f"accuracy (%), mean ± sd over seeds {args.seeds}", ""]
    head = [c if c != "ood_mean" else "OOD mean" for c in columns]
    lines += ["| method | " + " | ".join(head) + " |", "|:--|" + "--:|" * len(head)]
    for i, m in enumerate(methods):
        cells = [
            f"{100 * acc[c][i].mean():.1f} ± "
            f"{100 * acc[c][i].std(ddof=1) if len(args.seeds) > 1 else 0:.1f}"
            for c in columns
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "difference to the fine-tuned probe (points, seed mean, 95 % CI)", ""]
    lines += ["| method | " + " | ".join(head) + " |", "|:--|" + "--:|" * len(head)]
    for m, d in diffs.items():
        cells = [f"{d[c][0]:+.1f} [{d[c][1]:+.1f}, {d[c][2]:+.1f}]" for c in columns]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "zero-shot effective robustness (probe drop - zero-shot drop)", ""]
    for s, (e, lo, hi) in er.items():
        lines.append(f"- {s}: {e:+.1f} [{lo:+.1f}, {hi:+.1f}]")
    lines += [""]
    for name, d in versus.items():
        lines.append(
            f"- {name}: ID {d['id'][0]:+.1f} [{d['id'][1]:+.1f}, {d['id'][2]:+.1f}], "
            f"OOD mean {d['ood_mean'][0]:+.1f} "
            f"[{d['ood_mean'][1]:+.1f}, {d['ood_mean'][2]:+.1f}]"
        )
    for m in ("VRF", FIXED, "VRF (paper defaults)", "VRF (tolerance)"):
        if m in methods:
            i = methods.index(m)
            lines.append(
                f"- {m}: ID {100 * point['id'][i]:.1f}, OOD mean "
                f"{100 * point['ood_mean'][i]:.1f}; OSE's alpha sweep at that ID "
                f"accuracy: {100 * ose_at(point['id'][i]):.1f}"
            )
    text = "\n".join(lines)
    print(text)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text + "\n")
    results = {
        "seeds": args.seeds,
        "methods": methods,
        "sets": columns,
        "accuracy": {
            m: {c: acc[c][i].tolist() for c in columns} for i, m in enumerate(methods)
        },
        "difference_to_finetuned": diffs,
        "effective_robustness": er,
        "versus": versus,
        "ose_sweep": {"alphas": alphas.tolist(), "id": sw_id.tolist(),
                      "ood_mean": sw_ood.tolist()},
        "selection": [r[2] for r in runs],
    }  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(results, indent=1))

    plot_tradeoff(results, args.out / "tradeoff.png")
    print(f"wrote {args.out}/ in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
