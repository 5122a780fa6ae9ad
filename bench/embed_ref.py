"""bench/embed.ts's reference sides, one process per row (pinned to k cores by the parent).

argv[1]: JSON {"engine": "torch" | "ort", "threads": k, "batch": B, "pixels": file of
[B, 3, S, S] float32 or [B, S, S, 3] uint8 ("inputFormat": float32-nchw | uint8-nhwc), "iters": batches per repeat, "repeats": R, "out": embeddings file,
torch: "model", "seed" (the random-init weights the bundle was exported from);
ort: "graph" (an .onnx file), "input", "output" (its tensor names)}.

- torch: HF transformers CLIPModel.get_image_features, eager fp32, torch.set_num_threads(k),
  inference_mode, SDPA attention (what from_pretrained gives a user by default).
- ort: ONNX Runtime Python on the given graph (e.g. the bundle's dynamic-int8 graph), k intra-op
  threads, 1 inter-op thread, all graph optimisations: the session options clipeval's session
  thread uses.

Prints one JSON line: images/s per timed repeat. Writes the batch's embeddings to "out".
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_common import args, emit, repeat  # noqa: E402

A = args()
B = A["batch"]
# float32-nchw: normalised pixels; uint8-nhwc: the same crops' bytes (graphs that normalise inside).
if A.get("inputFormat") == "uint8-nhwc":
    pixels = np.fromfile(A["pixels"], dtype=np.uint8).reshape(B, 224, 224, 3)
else:
    pixels = np.fromfile(A["pixels"], dtype=np.float32).reshape(B, 3, 224, 224)


def torch_runner():
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "infra", "exporter"))
    from clipeval_export.models import random_clip

    torch.set_num_threads(A["threads"])
    model = random_clip(A["model"], A["seed"]).eval()
    model.set_attn_implementation("sdpa")
    x = torch.from_numpy(pixels)

    def run() -> np.ndarray:
        with torch.inference_mode():
            out = model.get_image_features(pixel_values=x)
            # transformers 5 returns an output object whose pooler_output is the projection.
            return getattr(out, "pooler_output", out).numpy()

    return run, {"torch_threads": torch.get_num_threads(), "attention": "sdpa"}


def ort_runner():
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = A["threads"]
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(A["graph"], so, providers=["CPUExecutionProvider"])

    def run() -> np.ndarray:
        return session.run([A["output"]], {A["input"]: pixels})[0]

    return run, {}


if __name__ == "__main__":
    run, info = torch_runner() if A["engine"] == "torch" else ort_runner()
    run().astype(np.float32).tofile(A["out"])

    def once() -> int:
        for _ in range(A["iters"]):
            run()
        return A["iters"] * B

    emit({"ips": repeat(once, A["repeats"]), **info})
