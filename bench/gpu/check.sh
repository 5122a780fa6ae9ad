#!/usr/bin/env bash
# Issue 13's GPU check, extended to the CUDA execution provider (issue 23): one prepared script for
# a GPU machine (the device tool; see docs/benchmarks.md), about 10 minutes:
#   source .devpack/setup.sh && bash bench/gpu/check.sh
# 1. exports the random-init ViT-B/32 bundle there (its graphs are too large to carry),
# 2. for cuda: installs onnxruntime-node's CUDA provider with infra/cuda/install-ort-cuda.sh
#    unless the binding already has it (from ORT_CUDA_WHEELS, offline, when set: the GPU machine
#    may reach no registry), and gives the cuda phases its LD_LIBRARY_PATH,
# 3. clipeval, for each provider in GPU_PROVIDERS (cuda webgpu): image-tower inference (fp32 and
#    fp16 graphs, uint8 input, batch GPU_BATCH) through the session thread with reused input
#    buffers, the same on a bare onnxruntime-node session with pre-allocated input and output
#    tensors, then the extraction loop (embedImages, exact with a decode pool of every core, and
#    fast) feeding that encoder from in-memory JPEGs,
# 4. PyTorch fp32 and fp16 on CUDA, same weights, same batch,
# with nvidia-smi sampling the GPU's busy share (utilization.gpu) during each phase.
# A phase that fails (cuda that cannot load: the row names the missing library) is kept in the
# results as a failure, the other phases still run, and the script exits 1 at the end: a provider
# never reports another's figures (embed-gpu.ts refuses a fallback).
# Results: JSON lines and a summary table in $OUT (the device tool) or .clipeval/gpu-check.
# Env: GPU_PROVIDERS ("cuda webgpu"; GPU_PROVIDER=X runs X alone), ORT_CUDA_PREFIX
# (.clipeval/ort-cuda), ORT_CUDA_WHEELS (a folder with the wheels of infra/cuda/requirements.txt),
# ORT_CUDA_LD_LIBRARY_PATH (other CUDA 13 + cuDNN 9 library folders instead of the prefix's).
# Without a GPU, `GPU_PROVIDER=cpu TORCH_DEVICE=cpu GPU_BATCH=4 GPU_ITERS=1 GPU_IMAGES=16
# BENCH_REPEATS=3 bash bench/gpu/check.sh` checks that the script itself runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-.clipeval/gpu-check}"
mkdir -p "$out"
providers="${GPU_PROVIDER:-${GPU_PROVIDERS:-cuda webgpu}}"
export PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] && py=.venv/bin/python
bundle=.clipeval/bundles/random-vit-b-32
failed=()

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
  "$@" | tee -a "$out/results.jsonl" || failed+=("$name")
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
}

# The CUDA provider: the recipe, unless done already; its library path for the cuda phases only
# (PyTorch keeps its own CUDA libraries).
cuda_ld=""
cuda_setup() {
  local prefix="${ORT_CUDA_PREFIX:-.clipeval/ort-cuda}"
  local bin=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
  if [ -n "${ORT_CUDA_WHEELS:-}" ]; then
    bash infra/cuda/install-ort-cuda.sh --prefix "$prefix" --offline --wheels "$ORT_CUDA_WHEELS" >&2 || return 1
  elif [ ! -f "$bin/libonnxruntime_providers_cuda.so" ]; then
    bash infra/cuda/install-ort-cuda.sh --prefix "$prefix" >&2 || return 1
  fi
  # shellcheck disable=SC1091
  cuda_ld="${ORT_CUDA_LD_LIBRARY_PATH:-$( [ -f "$prefix/env.sh" ] && . "$prefix/env.sh"; echo "${LD_LIBRARY_PATH:-}")}"
  echo "cuda: LD_LIBRARY_PATH=$cuda_ld; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')" >&2
}

: > "$out/results.jsonl"
for provider in $providers; do
  envs=(GPU_PROVIDER="$provider")
  if [ "$provider" = cuda ]; then
    # A failed install is recorded; the cuda rows then fail with the check's precise reason.
    cuda_setup || failed+=(cuda-setup)
    envs+=(LD_LIBRARY_PATH="$cuda_ld")
  fi
  for precision in fp32 fp16; do
    for what in inference bare extract; do
      phase "clipeval-$provider-$what-$precision" env "${envs[@]}" GPU_PHASE=$what \
        GPU_PRECISION=$precision npx tsx bench/gpu/embed-gpu.ts
    done
  done
done
phase pytorch "$py" bench/gpu/torch_gpu.py
"$py" bench/gpu/summary.py "$out" | tee "$out/summary.md"
if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu check: FAILED phases: ${failed[*]} (the rows with an error say why)" >&2
  exit 1
fi
