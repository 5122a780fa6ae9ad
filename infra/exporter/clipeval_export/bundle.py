"""bundle.json: what a model bundle holds, and the sha256 of every file in it."""

import hashlib
import json
from pathlib import Path

import onnxruntime
import torch
import transformers

from .onnx_export import OPSET
from .towers import as_towers

FORMAT = "clipeval-bundle/1"


# OpenAI CLIP's normalisation (its training data's channel statistics): HF's CLIPImageProcessor
# defaults, and OpenCLIP's OPENAI_DATASET_MEAN/STD.
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]


def clip_preprocessing(image_size: int) -> dict:
    """OpenAI CLIP's preprocessing at `image_size`: for random-init models, which have no processor config."""
    return {
        "imageSize": image_size,
        "resizeSize": image_size,
        "resize": "shortest-edge",
        "interpolation": "bicubic",
        "crop": "center",
        "rescale": 1 / 255,
        "mean": OPENAI_MEAN,
        "std": OPENAI_STD,
    }


def library_versions(family: str) -> dict:
    versions = {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]}
    if family == "open-clip":
        import open_clip

        versions["open_clip"] = open_clip.__version__
    return versions


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_bundle_json(model, out: Path, *, name: str, source: dict, graphs: dict, coop: dict, tokenizer: dict, preprocessing: dict) -> dict:
    towers = as_towers(model)
    files = sorted(p.name for p in out.iterdir() if p.is_file() and p.name != "bundle.json")
    bundle = {
        "format": FORMAT,
        "name": name,
        "family": towers.family,
        "source": {**source, **library_versions(towers.family)},
        "architecture": towers.architecture(),
        "logitScale": float(towers.logit_scale.exp().item()),
        "tokenizer": tokenizer,
        "preprocessing": preprocessing,
        "graphs": graphs,
        "coop": coop,
        "opset": OPSET,
        "exportedWith": {"onnxruntime": onnxruntime.__version__},
        "files": {f: sha256(out / f) for f in files},
    }
    (out / "bundle.json").write_text(json.dumps(bundle, indent=2) + "\n")
    return bundle
