#!/usr/bin/env bash
# Creates the exporter's virtual environment (.venv at the project root) from the pinned
# requirements. open-clip-torch is installed without its dependencies: the exporter reads the CLIP
# BPE vocabulary file in its wheel and builds OpenCLIP models (`--open-clip`), which needs only
# what the pinned requirements already bring (torch, torchvision, ftfy, regex, and transformers'
# huggingface_hub, safetensors, tqdm). timm is not installed: OpenCLIP models with timm towers
# (ConvNeXt, EVA, ...) cannot be built here, and the exporter refuses non-CLIP classes anyway.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${CLIPEVAL_VENV:-$root/.venv}"
stamp="$venv/.requirements.sha256"
want="$(cat "$root/infra/exporter/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "exporter venv up to date: $venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --disable-pip-version-check -q -r "$root/infra/exporter/requirements.txt"
"$venv/bin/pip" install --disable-pip-version-check -q --no-deps open-clip-torch==3.3.0
echo "$want" > "$stamp"
echo "exporter venv ready: $venv"
