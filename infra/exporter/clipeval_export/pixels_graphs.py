"""Image graphs that take the center crop's bytes: uint8 NHWC [N, S, S, 3], as core/model/image/resample.ts
produces them, with the rescale, the mean/std normalisation and the NHWC -> NCHW transpose inside the graph.

A quarter of the float32 tensor's bytes crosses from JavaScript to the session (and to a GPU), and the
JavaScript normalisation pass goes away. Variants, all with a uint8 input and a float32 output:
  fp32  the reference graph (image.onnx) behind an exact normalisation table: same embeddings;
  fp16  weights and compute in fp16 for GPU providers, numerically safe parts kept in fp32;
  int8  dynamic int8 of the fp32 variant (exporter --int8), for CPUs.
"""

from pathlib import Path

import numpy as np
import onnx
import torch

from .onnx_export import OPSET, ImageEncoder
from .towers import as_towers

INPUT, OUTPUT, INPUT_FORMAT = "pixels", "image_embeds", "uint8-nhwc"
FILES = {"fp32": "image.u8.onnx", "fp16": "image.u8.fp16.onnx", "int8": "image.u8.int8.onnx"}

# Kept in fp32 in the fp16 graph: the normalisation table and the embedding lookups (Gather: exact,
# cheap), LayerNorm and Softmax (sums of squares and exponentials overflow or lose all precision in
# fp16; ORT's fp16 LayerNorm would accumulate in fp32 anyway, Softmax need not).
FP16_KEEP_FP32 = ["Gather", "LayerNormalization", "Softmax"]


def normalisation_table(rescale: float, mean: list[float], std: list[float]) -> np.ndarray:
    """[3 * 256] float32: channel c's normalised value of byte v at c * 256 + v.

    HF's float steps, as core/model/image/pixels.ts computes them: float32(v * rescale in float64),
    then (x - mean) / std in float32. So the uint8 graph's first tensor is bit for bit the float
    graph's input that clipeval's JavaScript path (and HF's processor) builds.
    """
    v = np.arange(256, dtype=np.float64)
    rows = [((v * rescale).astype(np.float32) - np.float32(m)) / np.float32(s) for m, s in zip(mean, std)]
    return np.concatenate(rows).astype(np.float32)


class Uint8ImageEncoder(torch.nn.Module):
    def __init__(self, model, table: np.ndarray):
        super().__init__()
        self.encoder = ImageEncoder(model)
        self.register_buffer("table", torch.from_numpy(table))
        self.register_buffer("offsets", torch.tensor([0, 256, 512], dtype=torch.int64))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        index = pixels.to(torch.int64) + self.offsets  # NHWC: the channel is the last axis
        normalised = torch.index_select(self.table, 0, index.reshape(-1)).reshape(index.shape)
        return self.encoder(normalised.permute(0, 3, 1, 2))


def export_uint8_image(model, out: Path, preprocessing: dict) -> dict:
    """Writes the fp32 and fp16 uint8 graphs; returns their bundle.json entries (graphs.image.variants).

    An OpenCLIP model's fp16 graph (its attention reads a tensor twice, cast twice; see
    _drop_repeated_nodes) passes ONNX's full check but crashes ONNX Runtime 1.30/1.31 (SIGSEGV in
    the CPU provider's NchwcTransformer) when a session is created with every optimizer on, so
    clipeval opens fp16 graphs without that optimizer (core/model/onnx/encoders.ts), as the check
    here does (pixels_check.run).
    """
    table = normalisation_table(preprocessing["rescale"], preprocessing["mean"], preprocessing["std"])
    size = as_towers(model).image_size
    example = torch.randint(0, 256, (2, size, size, 3), dtype=torch.uint8)
    path = out / FILES["fp32"]
    with torch.no_grad():
        torch.onnx.export(
            Uint8ImageEncoder(model, table).eval(),
            (example,),
            str(path),
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    onnx.checker.check_model(onnx.load(str(path)))
    to_fp16(path, out / FILES["fp16"])
    return {name: variant(name) for name in ("fp32", "fp16")}


def variant(name: str) -> dict:
    return {"file": FILES[name], "input": INPUT, "output": OUTPUT, "inputFormat": INPUT_FORMAT}


def to_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and compute; uint8 in and float32 out (keep_io_types); FP16_KEEP_FP32 ops in fp32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True, op_block_list=FP16_KEEP_FP32)
    _drop_repeated_nodes(half.graph)
    _topological_sort(half.graph)
    onnx.checker.check_model(half)
    onnx.save(half, str(dst))


def quantize_uint8_int8(out: Path, variants: dict) -> None:
    """Dynamic int8 of the fp32 uint8 graph (MatMul/Gemm weights int8), like image.int8.onnx."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(out / FILES["fp32"]), str(out / FILES["int8"]), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    variants["int8"] = variant("int8")


def _drop_repeated_nodes(graph: onnx.GraphProto) -> None:
    """Removes nodes that repeat an earlier node exactly (same op, inputs, attributes, outputs).

    The fp16 converter inserts one Cast per (blocked node, input) pair, named after the input, so
    a tensor read by two blocked nodes (OpenCLIP's attention reads one Squeeze twice) gets the same
    Cast twice, a graph ONNX rejects (one producer per tensor). The copies compute the same value.
    """
    seen: dict[str, bytes] = {}
    keep = []
    for node in graph.node:
        key = node.SerializeToString()
        repeated = [seen.get(o) for o in node.output if o in seen]
        if repeated and all(r == key for r in repeated) and len(repeated) == len(node.output):
            continue
        if repeated:
            raise ValueError(f"fp16 graph: {list(node.output)} produced by two different nodes")
        seen.update((o, key) for o in node.output)
        keep.append(node)
    if len(keep) != len(graph.node):
        nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in keep]
        graph.ClearField("node")
        graph.node.extend(nodes)


def _topological_sort(graph: onnx.GraphProto) -> None:
    """Orders nodes so each comes after its inputs' producers (the fp16 converter appends the Casts it
    inserts after blocked nodes at the end, which ONNX's checker rejects). Kahn's algorithm, in the
    original order where the graph allows."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    waiting: dict[str, list[int]] = {}
    missing = []
    for k, node in enumerate(graph.node):
        need = {i for i in node.input if i not in available}
        missing.append(len(need))
        for name in need:
            waiting.setdefault(name, []).append(k)
    queue = [k for k, m in enumerate(missing) if m == 0]
    ordered = []
    while queue:
        k = queue.pop(0)
        ordered.append(graph.node[k])
        for name in graph.node[k].output:
            for j in waiting.pop(name, []):
                missing[j] -= 1
                if missing[j] == 0:
                    queue.append(j)
    if len(ordered) != len(graph.node):
        raise ValueError("the fp16 graph has a cycle or an input no node produces")
    nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in ordered]
    graph.ClearField("node")
    graph.node.extend(nodes)
