"""The two encoder graphs: pixels -> projected image embedding, token ids -> projected text embedding.

Embeddings leave the graphs unnormalised; clipeval L2-normalises them in TypeScript (one place
for both encoders, and the raw projection stays available for debugging).
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from transformers import CLIPModel

OPSET = 17


class ImageEncoder(torch.nn.Module):
    def __init__(self, model: CLIPModel):
        super().__init__()
        self.vision, self.projection = model.vision_model, model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projection(self.vision(pixel_values=pixel_values).pooler_output)


class TextEncoder(torch.nn.Module):
    """Pools at the end-of-text token; padding after it (any id) cannot change the result (causal mask)."""

    def __init__(self, model: CLIPModel):
        super().__init__()
        self.text, self.projection = model.text_model, model.text_projection

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.text(input_ids=input_ids).pooler_output)


def export_encoders(model: CLIPModel, out: Path) -> dict:
    size = model.config.vision_config.image_size
    ctx = model.config.text_config.max_position_embeddings
    pixels = torch.randn(2, 3, size, size)
    ids = torch.randint(0, 49406, (2, ctx), dtype=torch.long)
    graphs = {
        "image": (ImageEncoder(model), pixels, "pixel_values", "image_embeds", {0: "batch"}),
        "text": (TextEncoder(model), ids, "input_ids", "text_embeds", {0: "batch", 1: "sequence"}),
    }
    described = {}
    for name, (module, example, input_name, output_name, axes) in graphs.items():
        path = out / f"{name}.onnx"
        with torch.no_grad():
            torch.onnx.export(
                module.eval(),
                (example,),
                str(path),
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: axes, output_name: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
                do_constant_folding=True,
            )
        onnx.checker.check_model(onnx.load(str(path)))
        described[name] = {"file": path.name, "input": input_name, "output": output_name}
    return described


def self_check(model: CLIPModel, out: Path, seed: int = 1234) -> dict:
    """ONNX Runtime vs PyTorch on fresh inputs (not the export's example inputs)."""
    g = torch.Generator().manual_seed(seed)
    size = model.config.vision_config.image_size
    pixels = torch.randn(3, 3, size, size, generator=g)
    ids = torch.randint(0, 49406, (3, 12), generator=g, dtype=torch.long)
    ids[:, 0] = 49406
    ids[:, -1] = 49407
    with torch.no_grad():
        ref_img = ImageEncoder(model)(pixels).numpy()
        ref_txt = TextEncoder(model)(ids).numpy()
    img = ort.InferenceSession(str(out / "image.onnx")).run(None, {"pixel_values": pixels.numpy()})[0]
    txt = ort.InferenceSession(str(out / "text.onnx")).run(None, {"input_ids": ids.numpy()})[0]
    return {"image_max_abs": float(np.abs(img - ref_img).max()), "text_max_abs": float(np.abs(txt - ref_txt).max())}


def quantize_int8(out: Path, graphs: dict) -> dict:
    """Dynamic int8 variants of both graphs (weights int8, activations quantised per batch).

    On CPUs with VNNI/AMX this is several times faster than fp32; its accuracy cost is reported
    by the exporter's self-check and the benchmark, and it stays opt-in (fp32 is the default).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name, g in graphs.items():
        target = out / f"{name}.int8.onnx"
        quantize_dynamic(str(out / g["file"]), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        g["int8"] = target.name
    return graphs


def int8_check(out: Path, graphs: dict, model: CLIPModel, seed: int = 4321) -> dict:
    """Worst cosine between the int8 and fp32 graphs' embeddings on fresh inputs."""
    g = torch.Generator().manual_seed(seed)
    size = model.config.vision_config.image_size
    feeds = {
        "image": {"pixel_values": torch.randn(4, 3, size, size, generator=g).numpy()},
        "text": {"input_ids": torch.randint(0, 49406, (4, 16), generator=g, dtype=torch.long).numpy()},
    }
    worst = {}
    for name, graph in graphs.items():
        a = ort.InferenceSession(str(out / graph["file"])).run(None, feeds[name])[0]
        b = ort.InferenceSession(str(out / graph["int8"])).run(None, feeds[name])[0]
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        worst[f"{name}_int8_min_cosine"] = float(cos.min())
    return worst
