"""GPU check of the k-th-neighbour engine and of the open_clip embedder.

Run by ``benchmarks/gpu_check.sh`` (which refuses to start without CUDA). At the
ImageNet shape (320k bank rows, 166k queries, 512-d float32 unit rows, k=100)
by default, on one device, it times:

* ``torch.topk (full block)``: float32 ``Q_block @ B.T`` (TF32 off) for query
  blocks whose products fit ``--block-gib``, then ``torch.topk``: the plain
  way on a GPU;
* ``skvrf torch float32``: ``kth_neighbor_distances(..., backend="torch",
  screen=False)``;
* ``skvrf torch tf32-screened`` and ``skvrf torch bf16-screened``:
  ``screen="tf32"`` / ``screen="bfloat16"`` (TF32 on CUDA only);
* ``faiss GPU``: ``faiss.GpuIndexFlatIP`` when the installed faiss has GPU
  support;

(skvrf's calls get ``--working-memory`` MiB, default 8192: the default 256 MiB
is sized for CPUs), checks every method's k-th distances against the CPU
float32 engine (numpy, ``screen=False``) on the first ``--check-queries``
queries, runs the bfloat16 kernel check (float32 accumulation) on the device,
and times ``skvrf.clip.OpenCLIPImageEmbedder`` on a tiny random-weight model
in float32 and under fp16/bf16 autocast. Prints a markdown report; ``--out``
also writes JSON.

``--device cpu`` with small sizes runs the same code on the CPU (the tests do),
without the CUDA-only methods.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from skvrf.neighbors import kth_neighbor_distances

TINY_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {
        "image_size": 64,
        "layers": 2,
        "width": 64,
        "patch_size": 16,
        "head_width": 32,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 1,
    },
}


def _sync(torch, device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def unit_rows(torch, n, d, device, seed):
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(n, d, generator=g, device=device)
    return torch.nn.functional.normalize(x, dim=1)


def topk_full_blocks(torch, Q, B, k, block_gib):
    """k-th largest product per query by float32 GEMM blocks + torch.topk."""
    from skvrf.neighbors._torch_screen import float32_matmul

    rows = max(1, int(block_gib * 2**30 // (4 * B.shape[0])))
    out = torch.empty(Q.shape[0], device=Q.device)
    with float32_matmul(torch, tf32=False):
        for s in range(0, Q.shape[0], rows):
            S = Q[s : s + rows] @ B.T
            out[s : s + rows] = torch.topk(S, k, dim=1, sorted=False).values.amin(1)
    return (2 - 2 * out.double()).clamp(0, 4).cpu().numpy()


def faiss_gpu(Q, B, k):
    import faiss

    res = faiss.StandardGpuResources()
    index = faiss.GpuIndexFlatIP(res, B.shape[1])
    index.add(B)
    return np.clip(2 - 2 * index.search(Q, k)[0][:, k - 1].astype(np.float64), 0, 4)


def kernel_check(torch, device, d=512):
    """The device's bfloat16 mm accumulates in float32 (see
    ``skvrf.neighbors._calibrate.kernel_accumulates_in_float32``)."""
    from skvrf.neighbors._torch_screen import float32_matmul

    rng = np.random.default_rng(0)
    a = rng.integers(-16, 17, (64, d)).astype(np.float32)
    b = rng.integers(-16, 17, (64, d)).astype(np.float32)
    a[:, 0], b[:, 0] = 200.0, 200.0
    exact = a.astype(np.float64) @ b.T.astype(np.float64)
    A = torch.from_numpy(a).to(device).to(torch.bfloat16)
    Bt = torch.from_numpy(b).to(device).to(torch.bfloat16)
    with float32_matmul(torch):
        got = (A @ Bt.T).double().cpu().numpy()
    return bool(np.all(np.abs(got - exact) <= np.abs(exact) * 2.0**-7 + 1e-30))


def run_neighbors(args, torch):
    device = args.device
    cuda = torch.device(device).type == "cuda"
    t0 = time.perf_counter()
    Bd = unit_rows(torch, args.n_bank, 512, device, 0)
    Qd = unit_rows(torch, args.n_queries, 512, device, 1)
    B, Q = Bd.cpu().numpy(), Qd.cpu().numpy()
    setup = time.perf_counter() - t0
    nc = min(args.check_queries, args.n_queries)
    t0 = time.perf_counter()
    ref = kth_neighbor_distances(Q[:nc], B, args.k, backend="numpy", screen=False)
    t_ref = time.perf_counter() - t0
    wm = args.working_memory
    methods = {
        "torch.topk (full block)": lambda: topk_full_blocks(
            torch, Qd, Bd, args.k, args.block_gib
        ),
        "skvrf torch float32": lambda: kth_neighbor_distances(
            Q, B, args.k, backend="torch", screen=False, working_memory=wm
        ),
    }
    if cuda:
        methods["skvrf torch tf32-screened"] = lambda: kth_neighbor_distances(
            Q, B, args.k, backend="torch", screen="tf32", working_memory=wm
        )
    methods["skvrf torch bf16-screened"] = lambda: kth_neighbor_distances(
        Q, B, args.k, backend="torch", screen="bfloat16", working_memory=wm
    )
    faiss_note = "not installed"
    try:
        import faiss

        if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
            if cuda:
                methods["faiss GPU (GpuIndexFlatIP)"] = lambda: faiss_gpu(Q, B, args.k)
                faiss_note = "GPU build"
            else:
                faiss_note = "GPU build (not run: --device cpu)"
        else:
            faiss_note = "CPU-only build (faiss-gpu does not install here)"
    except ImportError:
        pass
    results = {}
    for name, fn in methods.items():
        times = []
        for _ in range(args.repeat):
            _sync(torch, device)
            t0 = time.perf_counter()
            out = fn()
            _sync(torch, device)
            times.append(time.perf_counter() - t0)
        err = float(np.abs(np.asarray(out)[:nc] - ref).max())
        results[name] = dict(seconds=min(times), max_abs_err_vs_cpu=err)
    base = results["torch.topk (full block)"]["seconds"]
    for r in results.values():
        r["vs_topk"] = r["seconds"] / base
    return dict(
        setup_s=setup,
        cpu_reference_s=t_ref,
        check_queries=nc,
        faiss=faiss_note,
        bf16_kernel_accumulates_in_float32=kernel_check(torch, device),
        methods=results,
    )


def run_embedder(args, torch):
    from skvrf.clip import OpenCLIPImageEmbedder, register_model_config

    register_model_config("gpu-check-tiny", TINY_CLIP)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n_images, 64, 64, 3), dtype=np.uint8)
    out = {}
    for precision in ("fp32", "fp16", "bf16"):
        emb = OpenCLIPImageEmbedder(
            "gpu-check-tiny",
            None,
            device=args.device,
            precision=precision,
            batch_size=args.batch_size,
        )
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random weights: a warning
            emb.fit()
        emb.transform(images[: args.batch_size])  # warm up
        _sync(torch, args.device)
        t0 = time.perf_counter()
        X = emb.transform(images)
        _sync(torch, args.device)
        dt = time.perf_counter() - t0
        out[precision] = dict(
            images_per_s=len(images) / dt, seconds=dt, shape=list(X.shape)
        )
    return out


def report(res) -> str:
    lines = [
        f"# {res['when']} {res['host']}: {res['device_name']}, torch {res['torch']}"
    ]
    nb = res.get("neighbors")
    if nb:
        lines += [
            "",
            f"k-th neighbour, bank {res['args']['n_bank']} x 512, "
            f"{res['args']['n_queries']} queries, k={res['args']['k']} "
            f"(exactness on the first {nb['check_queries']} queries vs the CPU "
            f"float32 engine; faiss: {nb['faiss']}; bfloat16 kernel accumulates "
            f"in float32: {nb['bf16_kernel_accumulates_in_float32']})",
            "",
            "| method | time (s) | / torch.topk | max abs err vs CPU |",
            "|---|---|---|---|",
        ]
        for name, r in nb["methods"].items():
            lines.append(
                f"| {name} | {r['seconds']:.3f} | {r['vs_topk']:.2f} | "
                f"{r['max_abs_err_vs_cpu']:.1e} |"
            )
    emb = res.get("embedder")
    if emb:
        lines += [
            "",
            f"OpenCLIPImageEmbedder, tiny random model, {res['args']['n_images']} "
            "images of 64x64:",
            "",
            "| precision | images/s |",
            "|---|---|",
        ]
        lines += [f"| {p} | {r['images_per_s']:,.0f} |" for p, r in emb.items()]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--n-bank", type=int, default=320_000)
    p.add_argument("--n-queries", type=int, default=166_000)
    p.add_argument("-k", type=int, default=100)
    p.add_argument("--check-queries", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--block-gib", type=float, default=4.0)
    p.add_argument("--working-memory", type=float, default=8192.0)
    p.add_argument("--n-images", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--no-neighbors", action="store_true")
    p.add_argument("--no-embedder", action="store_true")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    import torch

    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible to torch; nothing measured.")
        return 2
    res = dict(
        when=time.strftime("%Y-%m-%d %H:%M"),
        host=platform.node(),
        torch=torch.__version__,
        device_name=(
            torch.cuda.get_device_name(args.device)
            if torch.device(args.device).type == "cuda"
            else f"CPU ({os.cpu_count()} cores)"
        ),
        args=vars(args),
    )
    if not args.no_neighbors:
        res["neighbors"] = run_neighbors(args, torch)
    if not args.no_embedder:
        res["embedder"] = run_embedder(args, torch)
    print(report(res), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    bad = [
        name
        for name, r in res.get("neighbors", {}).get("methods", {}).items()
        if r["max_abs_err_vs_cpu"] > 1e-5
    ]
    if bad:
        print(f"gpu_check: NOT EXACT vs the CPU engine: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
