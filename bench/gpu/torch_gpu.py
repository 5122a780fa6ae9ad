"""The GPU check's PyTorch side (bench/gpu/check.sh): the same random-init ViT-B/32 weights the
bundle was exported from (seed 0), image tower only, on CUDA in fp32 and fp16 (model.half(), the
way PyTorch users run CLIP fast), at the same batch as clipeval's side, timed with
torch.cuda.synchronize() around each repeat. Prints one JSON line per precision; also the min
per-image cosine of fp16 against fp32 on the batch.

Env: GPU_BATCH (256), GPU_ITERS (8), BENCH_REPEATS (>= 3), TORCH_DEVICE (cuda; cpu only to check
this script without a GPU).
"""

import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "infra", "exporter"))
from clipeval_export.models import random_clip  # noqa: E402

BATCH = int(os.environ.get("GPU_BATCH", 256))
ITERS = int(os.environ.get("GPU_ITERS", 8))
REPEATS = max(3, int(os.environ.get("BENCH_REPEATS", 5)))
DEVICE = os.environ.get("TORCH_DEVICE", "cuda")
MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def main() -> None:
    model = random_clip("vit-b-32", 0).eval()
    model.set_attn_implementation("sdpa")
    # The same crops clipeval's inference side feeds (uint8, then normalised as the graph does).
    crops = (np.arange(BATCH * 224 * 224 * 3, dtype=np.uint64) * 2654435761 % 2**32 >> 24).astype(np.uint8)
    x = torch.from_numpy(crops.reshape(BATCH, 224, 224, 3)).permute(0, 3, 1, 2).float() / 255.0
    x = ((x - MEAN) / STD).to(DEVICE)
    outs = {}
    # fp32 always runs first: fp16's cosine is taken against it.
    for precision in ("fp32", "fp16"):
        m = model.to(DEVICE)
        inp = x
        if precision == "fp16":
            m = m.half()
            inp = x.half()

        def once() -> float:
            torch.cuda.synchronize() if DEVICE == "cuda" else None
            t = time.perf_counter()
            with torch.inference_mode():
                for _ in range(ITERS):
                    out = m.get_image_features(pixel_values=inp)
            torch.cuda.synchronize() if DEVICE == "cuda" else None
            return ITERS * BATCH / (time.perf_counter() - t)

        once()  # warm-up (kernels, autotuning)
        ips = sorted(once() for _ in range(REPEATS))
        with torch.inference_mode():
            out = m.get_image_features(pixel_values=inp)
        out = getattr(out, "pooler_output", out).float()
        outs[precision] = torch.nn.functional.normalize(out, dim=-1).cpu()
        row = {"side": "pytorch", "precision": precision, "device": DEVICE, "batch": BATCH, "ips": ips, "median": ips[len(ips) // 2], "min": ips[0], "max": ips[-1]}
        if precision == "fp16":
            row["min_cosine_vs_fp32"] = float((outs["fp16"] * outs["fp32"]).sum(-1).min())
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
