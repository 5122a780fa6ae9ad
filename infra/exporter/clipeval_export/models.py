"""CLIP models to export: a checkpoint folder, or the same architecture with seeded random weights."""

import math
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel

# Same architecture family as openai/clip-vit-base-patch32; `tiny` is small enough to commit.
RANDOM_CONFIGS = {
    "tiny": dict(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=224, patch_size=32),
        projection_dim=16,
    ),
    # CLIPConfig's defaults are ViT-B/32: same FLOPs as the real model.
    "vit-b-32": dict(text_config={}, vision_config={}, projection_dim=512),
}


def random_clip(name: str, seed: int) -> CLIPModel:
    if name not in RANDOM_CONFIGS:
        raise SystemExit(f"--random-init must be one of {', '.join(RANDOM_CONFIGS)}")
    torch.manual_seed(seed)
    cfg = RANDOM_CONFIGS[name]
    config = CLIPConfig(text_config=cfg["text_config"], vision_config=cfg["vision_config"], projection_dim=cfg["projection_dim"])
    config._attn_implementation = "eager"
    model = CLIPModel(config).eval()
    with torch.no_grad():
        # Released CLIP weights carry logit_scale = ln(100) (clamped in training); mirror that.
        model.logit_scale.fill_(math.log(100.0))
    return model


def load_checkpoint(folder: Path) -> CLIPModel:
    if not (folder / "config.json").exists():
        raise SystemExit(f"{folder} is not a Hugging Face checkpoint folder (no config.json)")
    return CLIPModel.from_pretrained(folder, attn_implementation="eager").eval()
