"""bench/decode.ts's Python sides, one process per row (pinned to k cores by the parent).

argv[1]: JSON {"side": "hf" | "torchvision", "files": [...], "processes": k, "batch_size": B,
"mean": [...], "std": [...], "image_size": S, "repeats": R}.

- hf: the seed's reference path, PIL open + convert("RGB") + HF CLIPImageProcessorPil, in a
  multiprocessing Pool of k processes; each image's float32 pixels return to the parent, which
  copies them into a [B, 3, S, S] batch (as clipeval copies its crops into the batch).
- torchvision: what a PyTorch user runs: a Dataset doing PIL open + convert("RGB") +
  Resize(S, BICUBIC, antialias=True) + CenterCrop(S) + ToTensor() + Normalize(mean, std), in a
  DataLoader with k worker processes, batches of B (collated in the workers, shared memory).

Prints one JSON line: images/s per timed repeat. The pool/loader starts in the warm-up.
"""

import io
import multiprocessing as mp
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from bench_common import args, emit, repeat  # noqa: E402

A = args()
S = A["image_size"]


def hf_processor():
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"shortest_edge": S},
        crop_size={"height": S, "width": S},
        image_mean=A["mean"],
        image_std=A["std"],
    )


_processor = None


def hf_one(path: str) -> np.ndarray:
    global _processor
    if _processor is None:
        _processor = hf_processor()
    with open(path, "rb") as f:
        image = Image.open(io.BytesIO(f.read())).convert("RGB")
    return _processor(images=image, return_tensors="np")["pixel_values"][0]


def run_hf() -> list[float]:
    files, b = A["files"], A["batch_size"]
    # fork: the children share the imported modules, as a long-running feeder's pool would.
    pool = mp.get_context("fork").Pool(A["processes"])
    batch = np.empty((b, 3, S, S), dtype=np.float32)

    def once() -> int:
        n = 0
        for i, pixels in enumerate(pool.imap(hf_one, files, chunksize=4)):
            batch[i % b] = pixels
            n += 1
        return n

    try:
        return repeat(once, A["repeats"])
    finally:
        pool.terminate()


class TorchvisionImages:
    """A map-style Dataset over image files, the canonical torchvision CLIP transform."""

    def __init__(self, files: list[str]):
        from torchvision import transforms as T
        from torchvision.transforms import InterpolationMode

        self.files = files
        self.transform = T.Compose(
            [
                T.Resize(S, interpolation=InterpolationMode.BICUBIC, antialias=True),
                T.CenterCrop(S),
                T.ToTensor(),
                T.Normalize(A["mean"], A["std"]),
            ]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        with Image.open(self.files[i]) as image:
            return self.transform(image.convert("RGB"))


def run_torchvision() -> list[float]:
    import torch
    from torch.utils.data import DataLoader

    torch.set_num_threads(1)  # the parent only receives batches; workers do the work
    loader = DataLoader(
        TorchvisionImages(A["files"]),
        batch_size=A["batch_size"],
        num_workers=A["processes"],
        persistent_workers=True,
        multiprocessing_context="fork",
    )

    def once() -> int:
        return sum(batch.shape[0] for batch in loader)

    return repeat(once, A["repeats"])


if __name__ == "__main__":
    emit({"ips": run_hf() if A["side"] == "hf" else run_torchvision()})
