"""bundle.json: what a model bundle holds, and the sha256 of every file in it."""

import hashlib
import json
from pathlib import Path

import onnxruntime
import torch
import transformers
from transformers import CLIPModel

from .onnx_export import OPSET

FORMAT = "clipeval-bundle/1"


def clip_preprocessing(model: CLIPModel) -> dict:
    """bundle.json's preprocessing: CLIP's; the uint8 image graphs build these steps in."""
    size = model.config.vision_config.image_size
    return {
        "imageSize": size,
        "resize": "shortest-edge",
        "interpolation": "bicubic",
        "crop": "center",
        "rescale": 1 / 255,
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
    }


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_bundle_json(model: CLIPModel, out: Path, *, name: str, source: dict, graphs: dict, coop: dict) -> dict:
    v, t = model.config.vision_config, model.config.text_config
    files = sorted(p.name for p in out.iterdir() if p.is_file() and p.name != "bundle.json")
    bundle = {
        "format": FORMAT,
        "name": name,
        "source": {**source, "transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]},
        "architecture": {
            "embedDim": model.config.projection_dim,
            "vision": {"imageSize": v.image_size, "patchSize": v.patch_size, "width": v.hidden_size, "layers": v.num_hidden_layers, "heads": v.num_attention_heads},
            "text": {"width": t.hidden_size, "layers": t.num_hidden_layers, "heads": t.num_attention_heads, "vocabSize": t.vocab_size},
        },
        "logitScale": float(model.logit_scale.exp().item()),
        "tokenizer": {
            "vocab": "vocab.json",
            "merges": "merges.txt",
            "contextLength": t.max_position_embeddings,
            "bosTokenId": 49406,
            "eosTokenId": 49407,
            "padTokenId": 49407,
        },
        "preprocessing": clip_preprocessing(model),
        "graphs": graphs,
        "coop": coop,
        "opset": OPSET,
        "exportedWith": {"onnxruntime": onnxruntime.__version__},
        "files": {f: sha256(out / f) for f in files},
    }
    (out / "bundle.json").write_text(json.dumps(bundle, indent=2) + "\n")
    return bundle
