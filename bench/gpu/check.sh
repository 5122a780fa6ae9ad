#!/usr/bin/env bash
# Issue 13's GPU check, one prepared script for a GPU machine (the device tool; see docs/benchmarks.md):
#   source .devpack/setup.sh && bash bench/gpu/check.sh
# 1. exports the random-init ViT-B/32 bundle there (its graphs are too large to carry),
# 2. clipeval: image-tower inference on the GPU provider (fp32 and fp16 graphs, uint8 input, batch
#    GPU_BATCH), then the extraction loop (embedImages, exact with a decode pool of every core, and
#    fast) feeding that encoder from in-memory JPEGs,
# 3. PyTorch fp32 and fp16 on CUDA, same weights, same batch,
# with nvidia-smi sampling the GPU's busy share (utilization.gpu) during each phase.
# Results: JSON lines and a summary table in $OUT (the device tool) or .clipeval/gpu-check.
# Without a GPU, `GPU_PROVIDER=cpu TORCH_DEVICE=cpu GPU_BATCH=4 GPU_ITERS=1 GPU_IMAGES=16
# BENCH_REPEATS=3 bash bench/gpu/check.sh` checks that the script itself runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-.clipeval/gpu-check}"
mkdir -p "$out"
export GPU_PROVIDER="${GPU_PROVIDER:-webgpu}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] && py=.venv/bin/python
bundle=.clipeval/bundles/random-vit-b-32

if [ ! -f "$bundle/bundle.json" ] || ! grep -q '"fp16"' "$bundle/bundle.json"; then
  echo "== exporting the random-init ViT-B/32 bundle"
  "$py" infra/exporter/export.py --random-init vit-b-32 --seed 0 --out "$bundle" > "$out/export.json"
fi

# Samples the GPU's busy share while a phase runs: one CSV per phase.
sample() {
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200 > "$out/util-$1.csv" &
    echo $!
  else
    echo ""
  fi
}
phase() {
  local name=$1; shift
  echo "== $name"
  local pid; pid=$(sample "$name")
  "$@" | tee -a "$out/results.jsonl"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
}

: > "$out/results.jsonl"
for precision in fp32 fp16; do
  phase "clipeval-inference-$precision" env GPU_PHASE=inference GPU_PRECISION=$precision npx tsx bench/gpu/embed-gpu.ts
  phase "clipeval-extract-$precision" env GPU_PHASE=extract GPU_PRECISION=$precision npx tsx bench/gpu/embed-gpu.ts
done
phase pytorch "$py" bench/gpu/torch_gpu.py
"$py" bench/gpu/summary.py "$out" | tee "$out/summary.md"
