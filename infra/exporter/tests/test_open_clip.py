"""OpenCLIP checkpoints (`--open-clip MODEL --checkpoint FILE`): parity with open_clip itself.

Two seeded random-init models in OpenCLIP's own config format, tiny in width: a ViT-B-32-shaped
one (ViT, patch 32, 224 px) and a ModifiedResNet (RN50's tower: stem, four stages, attention
pooling; one block per stage). Their weights are saved as a checkpoint file and exported from
it, as a downloaded checkpoint would be. Tolerances: embeddings max abs 1e-4 (ORT vs PyTorch,
fp32); CoOp's gradient relative L2 1e-3, loss 1e-4 (as for HF models).
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import EXPORT, ROOT
from PIL import Image

from clipeval_export.coop_graph import INPUTS, OUTPUTS, coop_step, random_inputs, rel_error
from clipeval_export.golden import PROMPTS
from clipeval_export.images import load_for_reference, write_test_images
from clipeval_export.open_clip_towers import OpenClip, load_open_clip
from clipeval_export.pixels_check import hf_processor

import open_clip

TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2}
CONFIGS = {
    "vit-b-32": {"embed_dim": 16, "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "head_width": 8, "patch_size": 32}, "text_cfg": TEXT},
    "rn50": {"embed_dim": 16, "vision_cfg": {"image_size": 224, "layers": [1, 1, 1, 1], "width": 8, "patch_size": None}, "text_cfg": TEXT},
}
OPEN_CLIP_TOKENS = ROOT / "test" / "fixtures" / "open-clip-tokens.json"


@pytest.fixture(scope="module", params=list(CONFIGS))
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    config = root / f"tiny-oc-{request.param}.json"
    config.write_text(json.dumps(CONFIGS[request.param]))
    towers = load_open_clip(str(config), None, seed=5)
    checkpoint = root / "open_clip_model.pt"
    torch.save(towers.model.state_dict(), checkpoint)
    out = root / "bundle"
    r = subprocess.run(
        [sys.executable, str(EXPORT), "--open-clip", str(config), "--checkpoint", str(checkpoint), "--out", str(out)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return request.param, towers, out, json.loads(r.stdout)


def test_bundle_records_family_tokenizer_and_preprocessing(exported):
    name, towers, out, _ = exported
    bundle = json.loads((out / "bundle.json").read_text())
    assert bundle["family"] == "open-clip"
    assert bundle["source"]["checkpoint"] == "open_clip_model.pt" and bundle["source"]["open_clip"] == open_clip.__version__
    assert bundle["tokenizer"] == {
        "flavour": "open-clip",
        "vocab": "vocab.json",
        "merges": "merges.txt",
        "contextLength": 77,
        "bosTokenId": 49406,
        "eosTokenId": 49407,
        "padTokenId": 0,
    }
    cfg = open_clip.get_model_preprocess_cfg(towers.model)
    assert bundle["preprocessing"]["mean"] == list(cfg["mean"]) and bundle["preprocessing"]["std"] == list(cfg["std"])
    assert (bundle["preprocessing"]["interpolation"], cfg["interpolation"]) == ("bicubic", "bicubic")
    assert (bundle["preprocessing"]["resize"], cfg["resize_mode"]) == ("shortest-edge", "shortest")
    assert bundle["preprocessing"]["cropRounding"] == "half-even"  # torchvision's CenterCrop
    tower = {"vit-b-32": "VisionTransformer", "rn50": "ModifiedResNet"}[name]
    assert bundle["architecture"]["vision"]["tower"] == tower
    assert set(bundle["graphs"]["image"]["variants"]) == {"fp32", "fp16"}


def test_fp16_graph_opens_and_agrees_with_fp32(exported):
    """The fp16 image graph (for GPU providers) opens in ONNX Runtime without the NCHWc transformer
    that crashes on it, and stays within the exporter's fp16 bounds (cosine >= 0.999, max abs <= 0.02)."""
    _, _, _, report = exported
    fp16 = report["uint8_graphs"]["fp16_ort_cpu_vs_fp32"]
    assert fp16["min_cosine"] >= 0.999 and fp16["max_abs"] <= 0.02, fp16


def test_exported_weights_are_the_checkpoints(exported):
    """The export loaded the checkpoint file (not fresh random weights): same image embeddings."""
    _, towers, out, _ = exported
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = towers.model.encode_image(pixels).numpy()
    got = ort.InferenceSession(str(out / "image.onnx")).run(None, {"pixel_values": pixels.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_image_embeddings_match_open_clip(exported, tmp_path):
    """Golden images through OpenCLIP's own eval transform -> image.onnx vs encode_image."""
    _, towers, out, _ = exported
    preprocess = open_clip.image_transform(224, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN, std=open_clip.OPENAI_DATASET_STD)
    names = write_test_images(tmp_path)
    pixels = torch.stack([preprocess(load_for_reference(tmp_path / n)) for n in names])
    with torch.no_grad():
        ref = towers.model.encode_image(pixels).numpy()
    got = ort.InferenceSession(str(out / "image.onnx")).run(None, {"pixel_values": pixels.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)
    # Random-init towers (the ResNet's above all) vary little between images: the error must also be
    # small next to that variation, or the comparison above would say nothing.
    spread = np.abs(ref - ref.mean(axis=0)).max()
    assert spread > 0 and np.abs(got - ref).max() < 0.01 * spread, (np.abs(got - ref).max(), spread)


def test_clipeval_crop_and_open_clip_transform_agree_on_plain_rgb(exported, tmp_path):
    """HF's processor with bundle.json's preprocessing (the steps the uint8 graphs build in) equals
    OpenCLIP's transform on an RGB image whose crop start both round alike (photo.jpg: 298x224 ->
    offset 37), up to ToTensor's float division. Where they round differently, clipeval follows
    cropRounding: test/unit/open-clip-bundle.test.ts checks clipeval's crop against OpenCLIP's."""
    _, _, out, _ = exported
    bundle = json.loads((out / "bundle.json").read_text())
    preprocess = open_clip.image_transform(224, is_train=False, mean=bundle["preprocessing"]["mean"], std=bundle["preprocessing"]["std"])
    write_test_images(tmp_path)
    img = load_for_reference(tmp_path / "photo.jpg").convert("RGB")
    ours = hf_processor(bundle["preprocessing"])(images=img, return_tensors="np")["pixel_values"][0]
    theirs = preprocess(img).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_text_embeddings_match_open_clip(exported):
    """open_clip's tokenizer ids (padded to 77 with 0) -> text.onnx vs encode_text; and the same ids cut
    to the batch's longest row (what clipeval feeds) give the same embeddings."""
    _, towers, out, _ = exported
    ids = open_clip.get_tokenizer(towers.name)(PROMPTS)
    with torch.no_grad():
        ref = towers.model.encode_text(ids).numpy()
    session = ort.InferenceSession(str(out / "text.onnx"))
    np.testing.assert_allclose(session.run(None, {"input_ids": ids.numpy()})[0], ref, atol=1e-4)
    short = ids[:-1]  # the last prompt fills all 77 positions
    longest = int(short.argmax(dim=-1).max()) + 1
    assert longest < 77
    np.testing.assert_allclose(session.run(None, {"input_ids": short[:, :longest].numpy()})[0], ref[:-1], atol=1e-4)


def test_coop_graph_matches_autograd(exported):
    _, towers, out, report = exported
    towers.model.requires_grad_(False)
    x = random_inputs(towers, 3, 10, 4, seed=77, specials=(49406, 49407))
    ref = coop_step(towers, *(x[k] for k in INPUTS))
    got = ort.InferenceSession(str(out / "coop.onnx")).run(OUTPUTS, {k: v.numpy() for k, v in x.items()})
    assert np.linalg.norm(ref[4].numpy()) > 0
    assert rel_error(got[4], ref[4].numpy()) < 1e-3
    assert rel_error(got[3], ref[3].numpy()) < 1e-4
    assert report["coop_vs_torch"]["non_weight_initializers"] == []
    assert report["coop_vs_torch"]["reference_vs_library_max_abs"] < 1e-4


def test_text_features_from_embeddings_equal_encode_text(exported):
    """CoOp's tower (sliced positions and mask) vs OpenCLIP's encode_text at the full length."""
    _, towers, _, _ = exported
    ids = open_clip.get_tokenizer(towers.name)(PROMPTS)
    eot = ids.argmax(dim=-1)
    longest = int(eot.max()) + 1
    with torch.no_grad():
        ours = towers.text_features(towers.token_embedding(ids[:, :longest]), eot)
        ref = towers.model.encode_text(ids, normalize=True)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5)
    assert float((ref[0] - ref[1]).abs().max()) > 1e-3


def test_committed_open_clip_token_goldens_are_open_clips():
    """test/fixtures/open-clip-tokens.json (the TypeScript open-clip tokenizer's goldens) is what
    open_clip.tokenize gives today, on the same corpus as HF's goldens."""
    from clipeval_export.corpus import corpus

    golden = json.loads(OPEN_CLIP_TOKENS.read_text())
    texts = corpus()
    assert [g["text"] for g in golden] == texts
    ids = open_clip.tokenize(texts)
    assert 0 < sum(g["mojibake"] for g in golden) < 40
    assert [g["ids"] for g in golden] == [row[: int((row == 49407).nonzero()[0]) + 1].tolist() for row in ids]


def test_refuses_what_it_cannot_export(tmp_path):
    r = subprocess.run([sys.executable, str(EXPORT), "--open-clip", "no-such-model", "--random-init", "open-clip", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode != 0 and "not an OpenCLIP model name" in r.stderr
    r = subprocess.run([sys.executable, str(EXPORT), "--open-clip", "ViT-B-32", "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode != 0 and "--checkpoint --random-init is required" in r.stderr
    with pytest.raises(SystemExit, match="CustomTextCLIP"):
        OpenClip(open_clip.CustomTextCLIP(embed_dim=16, vision_cfg=CONFIGS["vit-b-32"]["vision_cfg"], text_cfg=TEXT), "custom")
