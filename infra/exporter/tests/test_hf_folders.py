"""Hugging Face CLIP folders of other shapes, saved the way current transformers saves them.

Two seeded random-init models, tiny in width but real in shape: a ViT-B/16-shaped one (patch 16,
224 px) and a ViT-L/14-336-shaped one (patch 14, 336 px). Their folders hold what
`save_pretrained` writes today: config.json, model.safetensors, preprocessor_config.json, and
tokenizer.json + tokenizer_config.json only (no vocab.json / merges.txt). The 336 folder also has
non-CLIP mean/std and a pad token of "!" (id 0, as LAION's HF checkpoints): values that can only
reach bundle.json by being read. Parity is against transformers on inputs not used to build the
graphs. Tolerances: embeddings max abs 1e-4 (ORT vs PyTorch, fp32), CoOp as the exporter's bounds.
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
from transformers import CLIPConfig, CLIPImageProcessor, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

from clipeval_export.coop_graph import INPUTS, OUTPUTS, coop_step, random_inputs, rel_error
from clipeval_export.corpus import corpus
from clipeval_export.golden import PROMPTS
from clipeval_export.images import load_for_reference, write_test_images

FIXTURE = ROOT / "test" / "fixtures" / "tiny-clip"
FIXTURE_GOLDEN = ROOT / "test" / "fixtures" / "tiny-clip-golden"
SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
SHAPES = {
    "b16": dict(image_size=224, patch_size=16, mean=None, std=None, pad=None),
    "l14-336": dict(image_size=336, patch_size=14, mean=IMAGENET_MEAN, std=IMAGENET_STD, pad="!"),
}


def save_folder(folder: Path, shape: dict, seed: int) -> CLIPModel:
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=SMALL, vision_config={**SMALL, "image_size": shape["image_size"], "patch_size": shape["patch_size"]}, projection_dim=16
    )
    model = CLIPModel(config).eval()
    model.save_pretrained(folder)
    extra = {"pad_token": shape["pad"]} if shape["pad"] else {}
    CLIPTokenizer.from_pretrained(str(FIXTURE), model_max_length=77, **extra).save_pretrained(folder)
    size = shape["image_size"]
    kw = {"image_mean": shape["mean"], "image_std": shape["std"]} if shape["mean"] else {}
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}, **kw).save_pretrained(folder)
    return model


@pytest.fixture(scope="module", params=list(SHAPES))
def exported(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    folder, out = root / "checkpoint", root / "bundle"
    model = save_folder(folder, SHAPES[request.param], seed=3)
    r = subprocess.run([sys.executable, str(EXPORT), "--checkpoint", str(folder), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return request.param, folder, out, model, json.loads(r.stdout)


def test_folder_is_what_current_transformers_saves(exported):
    _, folder, _, _, _ = exported
    assert (folder / "tokenizer.json").exists()
    assert not (folder / "vocab.json").exists() and not (folder / "merges.txt").exists()


def test_bundle_records_what_the_folder_says(exported):
    name, folder, out, _, _ = exported
    shape = SHAPES[name]
    bundle = json.loads((out / "bundle.json").read_text())
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert bundle["family"] == "hf-clip"
    assert bundle["preprocessing"] == {
        "imageSize": shape["image_size"],
        "resizeSize": shape["image_size"],
        "resize": "shortest-edge",
        "interpolation": "bicubic",
        "crop": "center",
        "rescale": processor["rescale_factor"],
        "mean": shape["mean"] or [0.48145466, 0.4578275, 0.40821073],
        "std": shape["std"] or [0.26862954, 0.26130258, 0.27577711],
    }
    hf = CLIPTokenizer.from_pretrained(str(folder))
    added = {"addedTokens": [{"content": "!", "id": 0}]} if shape["pad"] else {}
    assert bundle["tokenizer"] == {
        **added,
        "flavour": "hf-clip",
        "vocab": "vocab.json",
        "merges": "merges.txt",
        "contextLength": 77,
        "bosTokenId": hf.bos_token_id,
        "eosTokenId": hf.eos_token_id,
        "padTokenId": hf.pad_token_id,
    }
    assert bundle["tokenizer"]["padTokenId"] == (0 if shape["pad"] == "!" else 49407)
    assert bundle["architecture"]["vision"] == {"imageSize": shape["image_size"], "patchSize": shape["patch_size"], "width": 32, "layers": 2, "heads": 4}


def test_vocabulary_derived_from_tokenizer_json_is_the_original(exported):
    """vocab.json / merges.txt rebuilt from tokenizer.json equal the files the folder was made from."""
    _, _, out, _, _ = exported
    assert json.loads((out / "vocab.json").read_text()) == json.loads((FIXTURE / "vocab.json").read_text())
    assert (out / "merges.txt").read_text().split("\n") == (FIXTURE / "merges.txt").read_text().split("\n")


def bundle_tokenizer(out: Path) -> CLIPTokenizer:
    """HF's tokenizer from the bundle alone: its vocab.json, merges.txt and bundle.json's added tokens."""
    from tokenizers import AddedToken

    tok = CLIPTokenizer.from_pretrained(str(out))
    for t in json.loads((out / "bundle.json").read_text())["tokenizer"].get("addedTokens", []):
        tok.add_tokens([AddedToken(t["content"], special=True, normalized=False)], special_tokens=True)
        assert tok.convert_tokens_to_ids(t["content"]) == t["id"]
    return tok


def test_tokenizer_ids_on_the_golden_corpus(exported):
    """HF's tokenizer from the bundle = HF's from the folder on all corpus strings; for the plain CLIP
    tokenizer also = the committed goldens (which the TypeScript tokenizer is tested against)."""
    name, folder, out, _, _ = exported
    texts = corpus()
    from_bundle = bundle_tokenizer(out)(texts, truncation=True, max_length=77)["input_ids"]
    from_folder = CLIPTokenizer.from_pretrained(str(folder))(texts, truncation=True, max_length=77)["input_ids"]
    golden = [g["ids"] for g in json.loads((FIXTURE_GOLDEN / "tokens.json").read_text())]
    assert from_bundle == from_folder
    if SHAPES[name]["pad"] is None:
        assert from_bundle == golden
    else:  # "!" is a special token there: every "!" is id 0 (the corpus has many)
        assert sum(ids.count(0) for ids in from_bundle) > 100 and from_bundle != golden


def test_image_embeddings_match_transformers(exported):
    """Golden images through HF's processor (read from the folder) -> image.onnx vs get_image_features;
    the same crops as bytes -> image.u8.onnx (normalisation from bundle.json's mean/std)."""
    _, folder, out, model, _ = exported
    processor = CLIPImageProcessorPil.from_pretrained(str(folder))
    images = write_test_images(out.parent / "images")
    pixels = processor(images=[load_for_reference(out.parent / "images" / n).convert("RGB") for n in images], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = model.get_image_features(pixel_values=pixels)
    ref = getattr(ref, "pooler_output", ref).numpy()
    got = ort.InferenceSession(str(out / "image.onnx")).run(None, {"pixel_values": pixels.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)
    bundle = json.loads((out / "bundle.json").read_text())
    mean = np.array(bundle["preprocessing"]["mean"], np.float32)[:, None, None]
    std = np.array(bundle["preprocessing"]["std"], np.float32)[:, None, None]
    crops = np.rint((pixels.numpy() * std + mean) * 255).clip(0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    u8 = ort.InferenceSession(str(out / "image.u8.onnx")).run(None, {"pixels": crops})[0]
    np.testing.assert_allclose(u8, ref, atol=1e-4)


def test_text_embeddings_match_transformers(exported):
    _, folder, out, model, _ = exported
    tok = CLIPTokenizer.from_pretrained(str(folder))
    ids = tok(PROMPTS, truncation=True, max_length=77, padding="longest", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ref = model.get_text_features(input_ids=ids)
    ref = getattr(ref, "pooler_output", ref).numpy()
    got = ort.InferenceSession(str(out / "text.onnx")).run(None, {"input_ids": ids.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_coop_graph_matches_autograd(exported):
    _, _, out, model, report = exported
    bundle = json.loads((out / "bundle.json").read_text())
    specials = (bundle["tokenizer"]["bosTokenId"], bundle["tokenizer"]["eosTokenId"])
    model.requires_grad_(False)
    x = random_inputs(model, 3, 10, 4, seed=77, specials=specials)
    ref = coop_step(model, *(x[k] for k in INPUTS))
    got = ort.InferenceSession(str(out / "coop.onnx")).run(OUTPUTS, {k: v.numpy() for k, v in x.items()})
    assert rel_error(got[4], ref[4].numpy()) < 1e-3 and np.linalg.norm(ref[4].numpy()) > 0
    assert rel_error(got[3], ref[3].numpy()) < 1e-4
    assert report["coop_vs_torch"]["reference_vs_library_max_abs"] < 1e-4


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("resample", 2, "bicubic only"),
        ("crop_size", {"height": 224, "width": 200}, "square crop"),
        ("size", {"shortest_edge": 256}, "resizes the shortest edge to the crop size"),
        ("do_center_crop", False, "center-crops"),
    ],
)
def test_refuses_preprocessing_clipeval_cannot_reproduce(tmp_path, field, value, message):
    from clipeval_export.hf_folder import read_preprocessing

    (tmp_path / "preprocessor_config.json").write_text(json.dumps({field: value}))
    with pytest.raises(SystemExit, match=message):
        read_preprocessing(tmp_path, 224)


def test_merges_as_strings_are_read_too(tmp_path):
    """Older tokenizer.json files hold merges as "left right" strings."""
    from clipeval_export.vocab import write_vocab_from_tokenizer_json

    (tmp_path / "a").mkdir()
    CLIPTokenizer.from_pretrained(str(FIXTURE)).save_pretrained(tmp_path / "a")
    data = json.loads((tmp_path / "a" / "tokenizer.json").read_text())
    assert isinstance(data["model"]["merges"][0], list)
    data["model"]["merges"] = [" ".join(m) for m in data["model"]["merges"]]
    (tmp_path / "old.json").write_text(json.dumps(data))
    write_vocab_from_tokenizer_json(tmp_path / "old.json", tmp_path)
    assert (tmp_path / "merges.txt").read_text().split("\n") == (FIXTURE / "merges.txt").read_text().split("\n")
