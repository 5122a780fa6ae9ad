"""CoOp's training step as one ONNX graph of standard ops: prompts in, loss and d loss / d ctx out.

onnxruntime-node has no training API, so the backward pass is traced in PyTorch (make_fx over
torch.autograd.grad, core aten decompositions, symbolic shapes) and exported like any forward
graph. Only the context vectors get a gradient; the text tower stays frozen.

Inputs (C classes, L <= 77 positions, B images; W text width, P projection dim):
  input_ids int64 [C, L], ctx float32 [C, L, W], ctx_mask float32 [C, L], eot_index int64 [C],
  image_features float32 [B, P] (L2-normalised), targets float32 [B, C].
Outputs: prompt_embeds [C, L, W], text_features [C, P] (L2-normalised), logits [B, C],
  loss [] (mean cross-entropy against targets), grad_ctx [C, L, W].
"""

import hashlib
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch._decomp import core_aten_decompositions
from torch.export import Dim
from torch.fx.experimental.proxy_tensor import make_fx
from torch.nn.attention import SDPBackend, sdpa_kernel

from .towers import as_towers

INPUTS = ["input_ids", "ctx", "ctx_mask", "eot_index", "image_features", "targets"]
OUTPUTS = ["prompt_embeds", "text_features", "logits", "loss", "grad_ctx"]
# Trace sizes: distinct from each other and from every model dimension, so symbolic tracing
# gives C, L and B their own symbols (equal sizes would be merged into one).
TRACE_SHAPE = dict(classes=5, length=13, batch=7)
# Check shapes (C, L, B): none is the trace's; C = 1 is the degenerate case (constant loss, zero gradient).
CHECK_SHAPES = [(3, 9, 5), (7, 20, 2), (1, 6, 1)]
COOP_OPSET = 18  # the dynamo exporter's own opset; LayerNormalization needs 17


def text_features(model, embeds: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
    """The text tower from token embeddings [C, L, W] on, L2-normalised (see towers.py, per family)."""
    return as_towers(model).text_features(embeds, eot_index)


def coop_forward(model, input_ids, ctx, ctx_mask, eot_index, image_features, targets):
    """prompt_embeds, text_features, logits, loss: CoOp's forward with the context spliced in by mask."""
    towers = as_towers(model)
    mask = ctx_mask[..., None]
    prompt = towers.token_embedding(input_ids) * (1 - mask) + ctx * mask
    features = towers.text_features(prompt, eot_index)
    logits = towers.logit_scale.exp() * image_features @ features.T
    loss = -(targets * logits.log_softmax(dim=-1)).sum(dim=-1).mean()
    return prompt, features, logits, loss


def coop_step(model, input_ids, ctx, ctx_mask, eot_index, image_features, targets):
    """coop_forward's outputs plus d loss / d ctx (zero where ctx_mask is 0)."""
    with torch.enable_grad():
        ctx = ctx.detach().requires_grad_(True)
        prompt, features, logits, loss = coop_forward(model, input_ids, ctx, ctx_mask, eot_index, image_features, targets)
        (grad,) = torch.autograd.grad(loss, ctx)
    return prompt.detach(), features.detach(), logits.detach(), loss.detach(), grad


def random_inputs(model, classes: int, length: int, batch: int, seed: int, n_ctx: int = 4, specials: tuple[int, int] | None = None) -> dict:
    """CoOp-shaped inputs: start token, context placeholders, class tokens, EOT, padding; one-hot targets.

    `specials`: the (start, end) token ids; by default the two highest ids, where every CLIP
    vocabulary (HF's and OpenCLIP's) keeps them. Ordinary tokens are drawn below both.
    """
    towers = as_towers(model)
    g = torch.Generator().manual_seed(seed)
    width, dim = towers.text_width, towers.embed_dim
    bos, eos = specials or (towers.vocab_size - 2, towers.vocab_size - 1)
    n_ctx = max(0, min(n_ctx, length - 3))
    ids = torch.randint(1, min(bos, eos), (classes, length), generator=g)
    eot = torch.randint(n_ctx + 1, length, (classes,), generator=g)
    eot[0] = length - 1  # at least one prompt fills the sequence, as after cutting at max EOT + 1
    after = torch.arange(length)[None, :] >= eot[:, None]
    ids = torch.where(after, eos, ids)
    ids[:, 0] = bos
    mask = torch.zeros(classes, length)
    mask[:, 1 : 1 + n_ctx] = 1.0
    images = torch.randn(batch, dim, generator=g)
    labels = torch.randint(0, classes, (batch,), generator=g)
    return {
        "input_ids": ids,
        "ctx": torch.randn(classes, length, width, generator=g) * 0.02,
        "ctx_mask": mask,
        "eot_index": eot,
        "image_features": images / images.norm(dim=-1, keepdim=True),
        "targets": torch.nn.functional.one_hot(labels, classes).float(),
    }


def export_coop(model, out: Path, max_length: int) -> dict:
    """Writes coop.onnx with C, L and B dynamic; returns its bundle.json entry."""
    example = random_inputs(model, TRACE_SHAPE["classes"], TRACE_SHAPE["length"], TRACE_SHAPE["batch"], seed=0)
    args = tuple(example[k] for k in INPUTS)
    towers = as_towers(model)
    towers.model.requires_grad_(False)  # frozen tower: no weight gradients in the traced backward
    # Symbolic tracing keeps sizes as symbols, so no [C, L, W] zeros or [L, L] mask is baked in.
    # SDPA's math backend: the fused CPU kernels' backward (OpenCLIP's attention calls
    # scaled_dot_product_attention) has no ONNX function; the math one decomposes into MatMul/Softmax.
    with sdpa_kernel(SDPBackend.MATH):
        traced = make_fx(
            lambda *a: coop_step(towers, *a), decomposition_table=core_aten_decompositions(), tracing_mode="symbolic",
            _allow_non_fake_inputs=True,
        )(*args).eval()  # eval(): no effect on the traced ops, silences the exporter's training-mode warning
    C, L, B = Dim("classes"), Dim("sequence", max=max_length), Dim("batch")
    dynamic = ({0: C, 1: L}, {0: C, 1: L}, {0: C, 1: L}, {0: C}, {0: B}, {0: B, 1: C})
    path = out / "coop.onnx"
    with warnings.catch_warnings():
        # Each named axis appears in several inputs; the exporter warns once per repeat.
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints")
        torch.onnx.export(
            traced, args, str(path), input_names=INPUTS, output_names=OUTPUTS, dynamic_shapes=dynamic,
            dynamo=True, opset_version=COOP_OPSET, external_data=False, verbose=False,  # stdout is the JSON report
        )
    onnx.checker.check_model(onnx.load(str(path)))
    return {"file": path.name, "maxLength": max_length}


def check_coop(model, out: Path, shapes=CHECK_SHAPES, seed: int = 1234, specials: tuple[int, int] | None = None) -> dict:
    """coop.onnx vs eager PyTorch autograd on fresh inputs at untraced shapes, plus the two anchors."""
    errors = ort_vs_eager(model, out / "coop.onnx", shapes, seed, specials)
    return {
        "shapes": [f"C={c} L={l} B={b}" for c, l, b in shapes],
        **{f"{name}_max_rel": err for name, err in errors.items()},
        "reference_vs_library_max_abs": reference_vs_library(model, specials=specials),
        "non_weight_initializers": non_weight_initializers(model, out / "coop.onnx"),
    }


def coop_failures(check: dict) -> list[str]:
    """Why a check_coop result should fail the export (empty when it passes)."""
    failures = [f"{k} = {v:.2e}" for k, v in check.items() if k.endswith("_max_rel") and v > 1e-3]
    if check["reference_vs_library_max_abs"] > 1e-4:
        failures.append(f"reference forward disagrees with the library's own text features: {check['reference_vs_library_max_abs']:.2e}")
    if check["non_weight_initializers"]:
        failures.append(f"initializers that are not model weights (baked activations?): {check['non_weight_initializers']}")
    return failures


def rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """Relative L2 error; an all-zero reference (C = 1) is compared in absolute terms."""
    return float(np.linalg.norm(got - ref) / max(float(np.linalg.norm(ref)), 1e-6))


def ort_vs_eager(model, path: Path, shapes, seed: int, specials: tuple[int, int] | None = None) -> dict:
    """Worst relative error of each output, ONNX Runtime (CPU) vs coop_step in eager mode."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = dict.fromkeys(OUTPUTS, 0.0)
    for i, (classes, length, batch) in enumerate(shapes):
        x = random_inputs(model, classes, length, batch, seed=seed + i, specials=specials)
        ref = coop_step(model, *(x[k] for k in INPUTS))
        got = session.run(OUTPUTS, {k: v.numpy() for k, v in x.items()})
        for name, a, r in zip(OUTPUTS, got, ref):
            worst[name] = max(worst[name], rel_error(a, r.numpy()))
    return worst


def reference_vs_library(model, seed: int = 4321, specials: tuple[int, int] | None = None) -> float:
    """text_features from token embeddings vs the library's own text features from the ids (normalised)."""
    towers = as_towers(model)
    x = random_inputs(towers, 4, 16, 1, seed, specials=specials)
    with torch.no_grad():
        ours = towers.text_features(towers.token_embedding(x["input_ids"]), x["eot_index"])
        theirs = towers.reference_text_features(x["input_ids"])
    return float((ours - theirs).abs().max())


def non_weight_initializers(model, path: Path) -> list[str]:
    """Initializers over 16 elements whose values are no weight of the model, as stored or transposed.

    Anything else was computed at trace time: a baked activation (the backward's saved softmax,
    sigmoid or LayerNorm statistics), or a baked shape. Values are compared, not shapes, so a
    reshaped weight still matches.
    """
    known = set()
    for w in as_towers(model).text_weights():
        w = w.detach()
        known.add(_digest(w.numpy()))
        if w.dim() == 2:
            known.add(_digest(w.T.numpy()))
    graph = onnx.load(str(path)).graph
    return [i.name for i in graph.initializer if np.prod(i.dims) > 16 and _digest(numpy_helper.to_array(i)) not in known]


def _digest(values: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float32).tobytes()).digest()
