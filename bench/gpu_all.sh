#!/usr/bin/env bash
# One prepared GPU session: bench/gpu.py (streams, Score-CAM) and bench/pipeline.py (the whole
# predict path), eager and compiled, for the paper architecture in bf16. Results go to $OUT (or
# ./gpu-results) as text; copy the tables into bench/RESULTS.md with the card's name.
#
#   WHEELS=/path/to/wheels bash bench/gpu_all.sh        # on the GPU machine, from the repo root
#
# The GPU machine has torch, timm, transformers, safetensors and scikit-image but not open_clip,
# facenet-pytorch, ftfy, wcwidth or grad-cam: carry them as wheels (pip download --no-deps
# --only-binary=:all: --python-version 3.12 ...) in $WHEELS and grad-cam's extracted
# pytorch_grad_cam/ folder in $WHEELS/src.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
if [ -n "${WHEELS:-}" ]; then
  pip install --quiet --no-index --no-deps --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH="/tmp/site:$WHEELS/src:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"
timeout 240 python bench/gpu.py --batches 1,8,32,64,128 2>&1 | tee "$out/gpu_bench.txt" || true
timeout 150 python bench/pipeline.py --preset paper --device cuda --dtype bfloat16 --batch 32 2>&1 | tee "$out/pipeline_eager.txt" || true
timeout 180 python bench/pipeline.py --preset paper --device cuda --dtype bfloat16 --batch 32 --compile 2>&1 | tee "$out/pipeline_compiled.txt" || true
