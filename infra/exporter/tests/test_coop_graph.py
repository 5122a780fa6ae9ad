"""coop.onnx, CoOp's traced training step: its gradient is autograd's, at shapes it was not traced at.

The trap this guards against: tracing autograd can bake values the backward saved from the
forward (softmax, sigmoid, LayerNorm statistics) into the graph as constants, right on the trace
inputs and silently wrong on any other. So every check runs on fresh inputs at untraced shapes.
"""

import copy
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import ROOT
from onnx import numpy_helper
from transformers import CLIPTextModelWithProjection

from clipeval_export.coop_graph import (
    INPUTS,
    OUTPUTS,
    TRACE_SHAPE,
    coop_forward,
    coop_step,
    non_weight_initializers,
    random_inputs,
    rel_error,
)
from clipeval_export.models import random_clip

FIXTURE = ROOT / "test" / "fixtures" / "tiny-clip"


@pytest.fixture(scope="module")
def model():
    return random_clip("tiny", 0).requires_grad_(False)


@pytest.fixture(scope="module")
def session(fresh):
    return ort.InferenceSession(str(fresh / "coop.onnx"), providers=["CPUExecutionProvider"])


def run(session, x: dict) -> dict:
    return dict(zip(OUTPUTS, session.run(OUTPUTS, {k: v.numpy() for k, v in x.items()})))


def test_bundle_lists_coop_with_its_hash(fresh):
    bundle = json.loads((fresh / "bundle.json").read_text())
    assert bundle["coop"] == {"file": "coop.onnx", "maxLength": 77}
    assert len(bundle["files"]["coop.onnx"]) == 64


def test_io_contract_with_dynamic_classes_length_and_batch(fresh):
    graph = onnx.load(str(fresh / "coop.onnx")).graph
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    f32, i64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    assert [(v.name, v.type.tensor_type.elem_type, dims(v)) for v in graph.input] == [
        ("input_ids", i64, ["classes", "sequence"]),
        ("ctx", f32, ["classes", "sequence", 32]),
        ("ctx_mask", f32, ["classes", "sequence"]),
        ("eot_index", i64, ["classes"]),
        ("image_features", f32, ["batch", 16]),
        ("targets", f32, ["batch", "classes"]),
    ]
    assert [(v.name, dims(v)) for v in graph.output] == [
        ("prompt_embeds", ["classes", "sequence", 32]),
        ("text_features", ["classes", 16]),
        ("logits", ["batch", "classes"]),
        ("loss", []),
        ("grad_ctx", ["classes", "sequence", 32]),
    ]
    assert {n.domain for n in graph.node} == {""}, "standard ONNX ops only"


def test_initializers_are_only_weights(fresh, model, tmp_path):
    assert non_weight_initializers(model, fresh / "coop.onnx") == []
    # The check does catch a baked activation: add a softmax-like constant and it is reported.
    proto = onnx.load(str(fresh / "coop.onnx"))
    proto.graph.initializer.append(numpy_helper.from_array(np.full((4, 8), 1 / 8, np.float32), "baked_softmax"))
    onnx.save(proto, str(tmp_path / "baked.onnx"))
    assert non_weight_initializers(model, tmp_path / "baked.onnx") == ["baked_softmax"]


@pytest.mark.parametrize("classes,length,batch", [(3, 9, 5), (7, 20, 2), (2, 77, 3), (1, 6, 1)])
def test_matches_eager_autograd_at_untraced_shapes(session, model, classes, length, batch):
    assert (classes, length, batch) != tuple(TRACE_SHAPE.values())
    x = random_inputs(model, classes, length, batch, seed=1000 * classes + length)
    ref = dict(zip(OUTPUTS, (t.numpy() for t in coop_step(model, *(x[k] for k in INPUTS)))))
    got = run(session, x)
    errors = {name: rel_error(got[name], ref[name]) for name in OUTPUTS}
    print((classes, length, batch), errors)
    assert errors["grad_ctx"] < 1e-3, errors
    assert max(errors.values()) < 1e-4, errors
    assert np.all(got["grad_ctx"][x["ctx_mask"].numpy() == 0] == 0), "gradient only at context positions"
    if classes > 1:
        assert np.linalg.norm(ref["grad_ctx"]) > 0, "a zero gradient would make the comparison vacuous"


def test_reference_forward_matches_hf_text_model(model):
    """Mask all zero: coop_forward's text features are HF's own, from token ids."""
    x = random_inputs(model, 6, 17, 2, seed=5)
    x["ctx_mask"].zero_()
    with torch.no_grad():
        _, ours, _, _ = coop_forward(model, *(x[k] for k in INPUTS))
        via_clip = model.get_text_features(input_ids=x["input_ids"])
        config = copy.deepcopy(model.config.text_config)
        config.projection_dim = model.config.projection_dim  # the text config alone defaults to 512
        tower = CLIPTextModelWithProjection(config)
        tower.text_model.load_state_dict(model.text_model.state_dict())
        tower.text_projection.load_state_dict(model.text_projection.state_dict())
        via_tower = tower.eval()(input_ids=x["input_ids"]).text_embeds
    for hf in (getattr(via_clip, "pooler_output", via_clip), via_tower):
        np.testing.assert_allclose(ours.numpy(), (hf / hf.norm(dim=-1, keepdim=True)).numpy(), atol=1e-5)


def test_context_equal_to_word_embeddings_gives_the_plain_prompt(session, model):
    """ctx set to the ids' own token embeddings at context positions changes nothing (eager and ORT)."""
    x = random_inputs(model, 4, 12, 3, seed=8)
    x["ctx"] = model.text_model.embeddings.token_embedding(x["input_ids"]).detach()
    plain = {**x, "ctx_mask": torch.zeros_like(x["ctx_mask"])}
    with torch.no_grad():
        a = coop_forward(model, *(x[k] for k in INPUTS))[1]
        b = coop_forward(model, *(plain[k] for k in INPUTS))[1]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(run(session, x)["text_features"], b.numpy(), atol=1e-5)
    np.testing.assert_allclose(run(session, x)["prompt_embeds"], run(session, plain)["prompt_embeds"])


def test_committed_fixture_graph_matches_eager_autograd(model):
    """The coop.onnx the TypeScript tests use is this exporter's, for the fixture's weights."""
    session = ort.InferenceSession(str(FIXTURE / "coop.onnx"), providers=["CPUExecutionProvider"])
    x = random_inputs(model, 4, 11, 6, seed=21)
    ref = coop_step(model, *(x[k] for k in INPUTS))
    got = run(session, x)
    assert rel_error(got["grad_ctx"], ref[4].numpy()) < 1e-3
    assert rel_error(got["loss"], ref[3].numpy()) < 1e-4
