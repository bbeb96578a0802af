#!/usr/bin/env bash
# GPU check of skvrf's k-th-neighbour engine and of the open_clip embedder
# (issue 15, item 4): one short run (under 5 minutes on one GPU) at the
# ImageNet shape -- the torch backend in float32, TF32-screened and
# bfloat16-screened against torch.topk on full GEMM blocks and faiss on GPU
# (when the installed faiss has GPU support), every result checked against
# the CPU float32 engine -- and OpenCLIPImageEmbedder on a tiny model with
# fp16/bf16 autocast. The report goes to stdout and to $OUT_DIR.
#
# Usage:  benchmarks/gpu_check.sh [gpu_check.py options]
#   PYTHON=...   the interpreter (default: .venv/bin/python, else python3)
#   OUT_DIR=...  where gpu_check.md and gpu_check.json go (default: .)
#   GPU_CHECK_TIMEOUT=...  seconds before the run is stopped (default 290)
# Exit status: 0 measured and exact, 1 a method not exact, 2 no CUDA device,
# 124 timed out.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT_DIR="${OUT_DIR:-.}"
mkdir -p "$OUT_DIR"

no_cuda() {
    echo "gpu_check: $1; nothing measured. Run benchmarks/gpu_check.sh on a" \
        "machine with an NVIDIA GPU and a CUDA build of torch." >&2
    exit 2
}

# cheap checks first: no driver, no device -- no need to import torch
if ! command -v nvidia-smi >/dev/null 2>&1 && ! ls /dev/nvidia0 >/dev/null 2>&1; then
    no_cuda "no NVIDIA driver or device on this machine (no nvidia-smi, no /dev/nvidia0)"
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)'; then
    no_cuda "torch sees no CUDA device (torch.cuda.is_available() is False)"
fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
set +e
timeout "${GPU_CHECK_TIMEOUT:-290}" "$PY" benchmarks/gpu_check.py \
    --out "$OUT_DIR/gpu_check.json" "$@" | tee "$OUT_DIR/gpu_check.md"
status=${PIPESTATUS[0]}
set -e
exit "$status"
