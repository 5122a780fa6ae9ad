"""bench/extract.ts's feed-rate reference: the seed's per-image steps over the same S3 objects.

argv[1]: JSON {"endpoint", "bucket", "keys": [...], "processes": k, "batch_size": B,
"image_size": S, "mean", "std", "repeats": R}; credentials and region from the environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, as the local stack writes them).

In a multiprocessing Pool of k processes, each with its own boto3 client: get_object, PIL open +
convert("RGB"), HF CLIPImageProcessorPil; the float32 pixels return to the parent, which copies
them into a [B, 3, S, S] batch. No inference: this is the rate a feeder hands pixels to a model.
Prints one JSON line: images/s per timed repeat (the pool starts in the warm-up), and the busy
seconds per phase summed over the processes in the last timed repeat (s3-read: get_object and
reading the body; decode: open + convert("RGB"), where PIL decodes; resample: the processor's
resize, crop and normalisation): bench/extract.ts's split table puts them beside clipeval's.
"""

import io
import multiprocessing as mp
import os
import sys
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from bench_common import args, emit, repeat  # noqa: E402

A = args()
S = A["image_size"]
_state = {}


def _init() -> None:
    import boto3
    from transformers import CLIPImageProcessorPil

    _state["s3"] = boto3.client("s3", endpoint_url=A["endpoint"])
    _state["processor"] = CLIPImageProcessorPil(
        size={"shortest_edge": S}, crop_size={"height": S, "width": S}, image_mean=A["mean"], image_std=A["std"]
    )


def one(key: str) -> tuple[np.ndarray, tuple[float, float, float]]:
    t0 = time.perf_counter()
    body = _state["s3"].get_object(Bucket=A["bucket"], Key=key)["Body"].read()
    t1 = time.perf_counter()
    image = Image.open(io.BytesIO(body)).convert("RGB")
    t2 = time.perf_counter()
    pixels = _state["processor"](images=image, return_tensors="np")["pixel_values"][0]
    return pixels, (t1 - t0, t2 - t1, time.perf_counter() - t2)


if __name__ == "__main__":
    b = A["batch_size"]
    pool = mp.get_context("fork").Pool(A["processes"], initializer=_init)
    batch = np.empty((b, 3, S, S), dtype=np.float32)

    busy = {}

    def once() -> int:
        n = 0
        phases = [0.0, 0.0, 0.0]
        for i, (pixels, took) in enumerate(pool.imap(one, A["keys"], chunksize=4)):
            batch[i % b] = pixels
            phases = [p + t for p, t in zip(phases, took)]
            n += 1
        busy.update(zip(["s3-read", "decode", "resample"], phases))
        return n

    try:
        emit({"ips": repeat(once, A["repeats"]), "busy_s": busy})
    finally:
        pool.terminate()
