"""Export-time checks of the uint8 image graphs, on images not used to build the model.

The images are the golden test set (seeded drawings, ./images.py) through HF's CLIPImageProcessor,
plus seeded random crops. Embeddings are compared after L2 normalisation, as clipeval uses them.
"""

import copy
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from transformers import CLIPImageProcessorPil

from .golden import _uint8_crop
from .images import load_for_reference, write_test_images
from .onnx_export import ImageEncoder
from .towers import as_towers

# Bounds the export must meet (export.py fails otherwise). Measured on the tiny bundle: see docs/model-bundles.md.
UINT8_MAX_ABS = 1e-5  # uint8 fp32 graph vs float graph: the same arithmetic after an exact table
FP16_MIN_COSINE = 0.999  # per image, fp16 vs fp32
FP16_MAX_ABS = 0.02  # largest element difference of the normalised embeddings, fp16 vs fp32
INT8_MIN_COSINE = 0.99  # as image.int8.onnx's check


def check_crops(model, preprocessing: dict, random_crops: int = 4, seed: int = 2468) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC crops and the float NCHW tensors HF's processor makes of them."""
    size = as_towers(model).image_size
    processor = hf_processor(preprocessing)
    u8, floats = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in write_test_images(Path(tmp)):
            pixels = processor(images=load_for_reference(Path(tmp) / name).convert("RGB"), return_tensors="np")["pixel_values"][0]
            u8.append(_uint8_crop(pixels, processor))
            floats.append(pixels)
    rng = np.random.default_rng(seed)
    for _ in range(random_crops):
        crop = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        u8.append(crop)
        floats.append(processor(images=crop, do_resize=False, do_center_crop=False, return_tensors="np")["pixel_values"][0])
    return np.stack(u8), np.stack(floats).astype(np.float32)


def hf_processor(preprocessing: dict) -> CLIPImageProcessorPil:
    """HF's processor doing what bundle.json's preprocessing says (the steps the uint8 graphs build in)."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": preprocessing.get("resizeSize", preprocessing["imageSize"])},
        crop_size={"height": preprocessing["imageSize"], "width": preprocessing["imageSize"]},
        image_mean=preprocessing["mean"],
        image_std=preprocessing["std"],
        rescale_factor=preprocessing["rescale"],
    )


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """min per-image cosine and max abs difference of the L2-normalised embeddings."""
    na, nb = _normalise(a), _normalise(b)
    return {"min_cosine": float((na * nb).sum(1).min()), "max_abs": float(np.abs(na - nb).max())}


def run(path: Path, feeds: dict, fp16: bool = False) -> np.ndarray:
    options = ort.SessionOptions()
    if fp16:  # as clipeval opens fp16 graphs (core/model/onnx/encoders.ts FP16_DISABLED_OPTIMIZERS)
        options.add_session_config_entry("optimization.disable_specified_optimizers", "NchwcTransformer")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def torch_fp16_reference(model, floats: np.ndarray) -> np.ndarray | None:
    """PyTorch's own fp16 (model.half()) on the same pixels; None where this torch build cannot run it."""
    try:
        with torch.no_grad():
            # A copy: .half() converts in place, and fp16-rounded weights must never reach the goldens.
            half = ImageEncoder(copy.deepcopy(as_towers(model))).half().eval()
            return half(torch.from_numpy(floats).half()).float().numpy()
    except RuntimeError as err:  # e.g. an op without a CPU half kernel
        print(f"note: torch fp16 reference unavailable on CPU: {err}")
        return None


def check_uint8_graphs(model, out: Path, graphs: dict, preprocessing: dict) -> dict:
    u8, floats = check_crops(model, preprocessing)
    variants = graphs["image"]["variants"]
    reference = run(out / graphs["image"]["file"], {graphs["image"]["input"]: floats})
    feeds = {variants["fp32"]["input"]: u8}
    u8_fp32 = run(out / variants["fp32"]["file"], feeds)
    report = {"images": len(u8), "uint8_fp32_vs_float": compare(u8_fp32, reference)}
    report["uint8_fp32_vs_float"]["raw_max_abs"] = float(np.abs(u8_fp32 - reference).max())
    # ONNX Runtime's CPU provider has no fp16 kernels for most of these ops: it inserts casts and runs
    # them in fp32 on fp16-rounded weights and activations (so this measures fp16 storage, not fp16 math).
    if "fp16" in variants:
        report["fp16_ort_cpu_vs_fp32"] = compare(run(out / variants["fp16"]["file"], feeds, fp16=True), u8_fp32)
    reference_half = torch_fp16_reference(model, floats)
    if reference_half is not None:
        report["torch_fp16_vs_fp32"] = compare(reference_half, u8_fp32)
    if "int8" in variants:
        report["int8_vs_fp32"] = compare(run(out / variants["int8"]["file"], feeds), u8_fp32)
    return report


def uint8_failures(report: dict) -> list[str]:
    out = []
    if report["uint8_fp32_vs_float"]["max_abs"] > UINT8_MAX_ABS:
        out.append(f"uint8 fp32 graph vs float graph: max abs {report['uint8_fp32_vs_float']['max_abs']:.3g} > {UINT8_MAX_ABS}")
    fp16 = report.get("fp16_ort_cpu_vs_fp32", {"min_cosine": 1.0, "max_abs": 0.0})  # absent: no fp16 graph
    if fp16["min_cosine"] < FP16_MIN_COSINE or fp16["max_abs"] > FP16_MAX_ABS:
        out.append(f"fp16 graph vs fp32: {fp16} (bounds: cosine >= {FP16_MIN_COSINE}, max abs <= {FP16_MAX_ABS})")
    if "int8_vs_fp32" in report and report["int8_vs_fp32"]["min_cosine"] < INT8_MIN_COSINE:
        out.append(f"int8 uint8 graph vs fp32: {report['int8_vs_fp32']} (bound: cosine >= {INT8_MIN_COSINE})")
    return out
