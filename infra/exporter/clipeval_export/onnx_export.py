"""The two encoder graphs: pixels -> projected image embedding, token ids -> projected text embedding.

Embeddings leave the graphs unnormalised; clipeval L2-normalises them in TypeScript (one place
for both encoders, and the raw projection stays available for debugging).
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .towers import as_towers

OPSET = 17


def ImageEncoder(model) -> torch.nn.Module:
    """pixels [N, 3, S, S] (normalised) -> projected image embedding [N, D], for either family."""
    return as_towers(model).image_encoder()


def TextEncoder(model) -> torch.nn.Module:
    """token ids [N, L] -> projected text embedding [N, D], pooled at the end-of-text token."""
    return as_towers(model).text_encoder()


def export_encoders(model, out: Path, context_length: int) -> dict:
    towers = as_towers(model)
    size = towers.image_size
    pixels = torch.randn(2, 3, size, size)
    ids = torch.randint(0, towers.vocab_size, (2, context_length), dtype=torch.long)
    graphs = {
        "image": (ImageEncoder(model), pixels, "pixel_values", "image_embeds", {0: "batch"}),
        "text": (TextEncoder(model), ids, "input_ids", "text_embeds", {0: "batch", 1: "sequence"}),
    }
    described = {}
    for name, (module, example, input_name, output_name, axes) in graphs.items():
        path = out / f"{name}.onnx"
        with torch.no_grad():
            if towers.family == "open-clip" and name == "text":
                _export_dynamo(module, example, path, input_name, output_name, context_length)
            else:
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


def _export_dynamo(module, ids: torch.Tensor, path: Path, input_name: str, output_name: str, context_length: int) -> None:
    """OpenCLIP's text graph through the dynamo exporter: the TorchScript tracer bakes the sequence
    length into nn.MultiheadAttention's reshapes (Python ints there), the dynamo exporter keeps it a
    symbol, so the graph takes any length up to the context length like HF's."""
    from torch.export import Dim

    dims = {input_name: {0: Dim("batch"), 1: Dim("sequence", max=context_length)}}
    torch.onnx.export(
        module.eval(), (ids,), str(path), input_names=[input_name], output_names=[output_name], dynamic_shapes=dims,
        dynamo=True, opset_version=18, external_data=False, verbose=False,  # stdout is the JSON report
    )


def random_ids(tokenizer: dict, vocab_size: int, rows: int, length: int, g: torch.Generator) -> torch.Tensor:
    """Token ids shaped like the tokenizer's output: start token, ordinary tokens, end token."""
    special = {tokenizer["bosTokenId"], tokenizer["eosTokenId"]}
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in special])
    ids = ordinary[torch.randint(0, len(ordinary), (rows, length), generator=g)]
    ids[:, 0] = tokenizer["bosTokenId"]
    ids[:, -1] = tokenizer["eosTokenId"]
    return ids


def self_check(model, out: Path, tokenizer: dict, seed: int = 1234) -> dict:
    """ONNX Runtime vs PyTorch on fresh inputs (not the export's example inputs)."""
    towers = as_towers(model)
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randn(3, 3, towers.image_size, towers.image_size, generator=g)
    ids = random_ids(tokenizer, towers.vocab_size, 3, 12, g)
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


def int8_check(out: Path, graphs: dict, model, tokenizer: dict, seed: int = 4321) -> dict:
    """Worst cosine between the int8 and fp32 graphs' embeddings on fresh inputs."""
    towers = as_towers(model)
    g = torch.Generator().manual_seed(seed)
    size = towers.image_size
    feeds = {
        "image": {graphs["image"]["input"]: torch.randn(4, 3, size, size, generator=g).numpy()},
        "text": {graphs["text"]["input"]: random_ids(tokenizer, towers.vocab_size, 4, 16, g).numpy()},
    }
    worst = {}
    for name, graph in graphs.items():
        a = ort.InferenceSession(str(out / graph["file"])).run(None, feeds[name])[0]
        b = ort.InferenceSession(str(out / graph["int8"])).run(None, feeds[name])[0]
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        worst[f"{name}_int8_min_cosine"] = float(cos.min())
    return worst
