"""The CPU-executable parts of benchmarks/gpu_check.sh (no GPU here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
pytestmark = pytest.mark.skipif(
    not (BENCH / "gpu_check.sh").exists(), reason="benchmarks/ not beside the tests"
)


def _gpu_check():
    sys.path.insert(0, str(BENCH))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(BENCH))
    return gpu_check


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidia0"),
    reason="this machine has an NVIDIA driver",
)
def test_script_says_no_cuda_and_exits_2(tmp_path):
    out = subprocess.run(
        ["bash", str(BENCH / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "OUT_DIR": str(tmp_path)},
    )
    assert out.returncode == 2
    assert "nothing measured" in out.stderr and "NVIDIA" in out.stderr


def test_neighbour_checks_run_on_cpu(tmp_path):
    """The timed methods and the exactness check against the CPU engine, at
    a small size on the CPU (the CUDA-only TF32 and faiss GPU are left out)."""
    torch = pytest.importorskip("torch")
    gpu_check = _gpu_check()
    out = tmp_path / "gpu.json"
    args = ["--device", "cpu", "--n-bank", "3000", "--n-queries", "300", "-k", "20"]
    args += ["--check-queries", "100", "--repeat", "1", "--no-embedder"]
    assert gpu_check.main([*args, "--out", str(out)]) == 0
    res = json.loads(out.read_text())["neighbors"]
    assert set(res["methods"]) == {
        "torch.topk (full block)",
        "skvrf torch float32",
        "skvrf torch bf16-screened",
    }
    assert all(r["max_abs_err_vs_cpu"] < 1e-5 for r in res["methods"].values())
    assert res["bf16_kernel_accumulates_in_float32"]
    if not torch.cuda.is_available():
        assert gpu_check.main(["--device", "cuda", "--no-embedder"]) == 2


def test_embedder_timing_runs_on_cpu(tmp_path):
    pytest.importorskip("open_clip")
    gpu_check = _gpu_check()
    out = tmp_path / "gpu.json"
    args = ["--device", "cpu", "--no-neighbors", "--n-images", "8"]
    assert gpu_check.main([*args, "--batch-size", "4", "--out", str(out)]) == 0
    emb = json.loads(out.read_text())["embedder"]
    assert set(emb) == {"fp32", "fp16", "bf16"}
    assert all(r["shape"] == [8, 64] for r in emb.values())
