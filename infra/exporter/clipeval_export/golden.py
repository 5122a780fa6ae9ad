"""Reference outputs computed by HF transformers in PyTorch, for clipeval's TypeScript parity tests."""

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

from .corpus import corpus
from .images import load_for_reference, write_test_images

PROMPTS = [
    "a photo of a dog.",
    "a photo of a cat.",
    "a blurry photo of a red circle.",
    "a drawing of a green square.",
    "itap of a blue triangle.",
    "a photo of many goldfish in a tank, seen from above on a sunny day.",
    "中文 emoji 😀 café",
    "a photo of a " + "very " * 90 + "long dog.",
]


def write_golden(model: CLIPModel, bundle: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = CLIPTokenizer.from_pretrained(str(bundle))
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": model.config.vision_config.image_size},
        crop_size={"height": model.config.vision_config.image_size, "width": model.config.vision_config.image_size},
    )

    texts = corpus()
    ids = tokenizer(texts, truncation=True, max_length=77)["input_ids"]
    (out / "tokens.json").write_text(json.dumps([{"text": t, "ids": i} for t, i in zip(texts, ids)], ensure_ascii=False))

    batch = tokenizer(PROMPTS, truncation=True, max_length=77, padding="max_length", return_tensors="pt")
    with torch.no_grad():
        text_embeds = model.get_text_features(input_ids=batch["input_ids"])
    text_embeds = getattr(text_embeds, "pooler_output", text_embeds)
    (out / "text-embeddings.json").write_text(
        json.dumps(
            [{"text": p, "ids": i.tolist(), "embedding": e.tolist()} for p, i, e in zip(PROMPTS, batch["input_ids"], text_embeds)],
            ensure_ascii=False,
        )
    )

    image_dir, crop_dir = out / "images", out / "crops"
    crop_dir.mkdir(exist_ok=True)
    records = []
    for name in write_test_images(image_dir):
        img = load_for_reference(image_dir / name)
        pixels = processor(images=img.convert("RGB"), return_tensors="pt")["pixel_values"]
        crop = _uint8_crop(pixels[0].numpy(), processor)
        Image.fromarray(crop, "RGB").save(crop_dir / f"{name}.png")
        with torch.no_grad():
            emb = model.get_image_features(pixel_values=pixels)
        emb = getattr(emb, "pooler_output", emb)
        records.append({"file": f"images/{name}", "crop": f"crops/{name}.png", "mode": img.mode, "size": list(img.size), "embedding": emb[0].tolist()})
    (out / "image-embeddings.json").write_text(json.dumps(records))
    (out / "preprocessing.json").write_text(
        json.dumps({"mean": processor.image_mean, "std": processor.image_std, "rescale": processor.rescale_factor})
    )


def _uint8_crop(pixels: np.ndarray, processor: CLIPImageProcessorPil) -> np.ndarray:
    """The resized, cropped 8-bit image behind a pixel tensor, stored losslessly as PNG.

    The processor resizes in PIL on 8-bit RGB, then rescales and normalises; so the float tensor
    is exactly recoverable from these bytes. Checked here, so the PNG is a faithful golden.
    """
    mean = np.array(processor.image_mean, dtype=np.float32)[:, None, None]
    std = np.array(processor.image_std, dtype=np.float32)[:, None, None]
    u8 = np.rint((pixels * std + mean) / processor.rescale_factor).clip(0, 255).astype(np.uint8)
    rebuilt = (u8.astype(np.float32) * np.float32(processor.rescale_factor) - mean) / std
    assert np.abs(rebuilt - pixels).max() < 1e-5, np.abs(rebuilt - pixels).max()
    return u8.transpose(1, 2, 0)
