#!/usr/bin/env bash
# The search's CUDA-only paths (fp16 autocast and both GradScalers, NCCL DDP on 2 GPUs when present) for a few
# iterations, with the search/training iteration ratio and peak memory; on a machine without CUDA a clean skip
# (exit 0). What it runs and what it leaves out: scripts/gpu_check.py. Arguments go to it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" scripts/gpu_check.py "$@"
