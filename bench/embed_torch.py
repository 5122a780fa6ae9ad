#!/usr/bin/env python3
"""PyTorch / HF transformers side of `npm run bench:embed`: same weights, same images, same threads.

Prints one JSON object: images/s for preprocessing alone (CLIPImageProcessorPil), inference alone
per batch size (eager fp32), and the full path (preprocess + inference, sequential as in a plain loop).
"""

import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from transformers import CLIPImageProcessorPil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra" / "exporter"))
from clipeval_export.models import random_clip  # noqa: E402


def main() -> None:
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    model = random_clip(args["model"], args["seed"]).eval()
    processor = CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    files = sorted(Path(args["images"]).iterdir())
    images = [f.read_bytes() for f in files]

    def preprocess(batch: list[bytes]) -> torch.Tensor:
        pil = [Image.open(__import__("io").BytesIO(b)).convert("RGB") for b in batch]
        return processor(images=pil, return_tensors="pt")["pixel_values"]

    t = time.perf_counter()
    preprocess(images)
    out = {"preprocess_ips": len(images) / (time.perf_counter() - t), "inference_ips": {}, "threads": torch.get_num_threads()}
    with torch.inference_mode():
        for bs in args["batch_sizes"]:
            x = torch.randn(bs, 3, 224, 224)
            model.get_image_features(pixel_values=x)  # warm-up
            n, t = 0, time.perf_counter()
            while n < args["min_images"] or time.perf_counter() - t < args["min_seconds"]:
                model.get_image_features(pixel_values=x)
                n += bs
            out["inference_ips"][str(bs)] = n / (time.perf_counter() - t)
        bs = args["full_batch"]
        t = time.perf_counter()
        for i in range(0, len(images), bs):
            model.get_image_features(pixel_values=preprocess(images[i : i + bs]))
        out["full_ips"] = len(images) / (time.perf_counter() - t)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
