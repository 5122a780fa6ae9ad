"""The exporter still reproduces the committed tiny bundle's golden outputs.

Graph bytes may differ across torch versions, so this compares what matters: the same seed gives
the same weights (same golden embeddings from PyTorch), the same tokenizer ids, and ONNX Runtime
agrees with PyTorch on the fresh export.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import EXPORT, ROOT

FIXTURE_GOLDEN = ROOT / "test" / "fixtures" / "tiny-clip-golden"


def load(folder: Path, name: str):
    return json.loads((folder / name).read_text())


def test_bundle_lists_every_file_with_its_hash(fresh: Path):
    bundle = load(fresh, "bundle.json")
    assert set(bundle["files"]) == {"image.onnx", "image.u8.onnx", "image.u8.fp16.onnx", "text.onnx", "coop.onnx", "vocab.json", "merges.txt"}
    assert bundle["coop"] == {"file": "coop.onnx", "maxLength": 77}
    assert bundle["architecture"]["embedDim"] == 16
    assert abs(bundle["logitScale"] - 100.0) < 1e-3
    assert (fresh / "vocab.json").read_bytes() == (ROOT / "test/fixtures/tiny-clip/vocab.json").read_bytes()
    assert (fresh / "merges.txt").read_bytes() == (ROOT / "test/fixtures/tiny-clip/merges.txt").read_bytes()


def test_golden_outputs_are_reproduced(fresh: Path):
    golden = fresh.parent / "tiny-clip-golden"
    assert load(golden, "tokens.json") == load(FIXTURE_GOLDEN, "tokens.json")
    for name in ("text-embeddings.json", "image-embeddings.json"):
        new, old = load(golden, name), load(FIXTURE_GOLDEN, name)
        assert len(new) == len(old)
        for a, b in zip(new, old):
            np.testing.assert_allclose(a["embedding"], b["embedding"], rtol=1e-4, atol=1e-5)
    for crop in sorted((FIXTURE_GOLDEN / "crops").iterdir()):
        assert (golden / "crops" / crop.name).read_bytes() == crop.read_bytes(), crop.name


def test_onnx_graphs_match_torch(fresh: Path):
    sys.path.insert(0, str(EXPORT.parent))
    from clipeval_export.models import random_clip
    from clipeval_export.onnx_export import self_check

    check = self_check(random_clip("tiny", 0), fresh, load(fresh, "bundle.json")["tokenizer"], seed=99)
    assert max(check.values()) < 1e-4, check


def test_refuses_a_folder_that_is_not_a_checkpoint(tmp_path: Path):
    r = subprocess.run([sys.executable, str(EXPORT), "--checkpoint", str(tmp_path), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode != 0
    assert "not a Hugging Face checkpoint folder" in r.stderr


def test_converts_a_hugging_face_checkpoint_folder(tmp_path: Path, fresh: Path):
    """The --checkpoint path, on a checkpoint in the older layout (vocab.json + merges.txt, no tokenizer.json)."""
    sys.path.insert(0, str(EXPORT.parent))
    from clipeval_export.models import random_clip
    from transformers import CLIPImageProcessor

    ckpt = tmp_path / "clip-checkpoint"
    random_clip("tiny", 0).save_pretrained(ckpt)
    CLIPImageProcessor().save_pretrained(ckpt)
    for name in ("vocab.json", "merges.txt"):
        (ckpt / name).write_bytes((fresh / name).read_bytes())
    out = tmp_path / "bundle"
    subprocess.run([sys.executable, str(EXPORT), "--checkpoint", str(ckpt), "--revision", "test", "--out", str(out)], check=True)
    bundle = load(out, "bundle.json")
    assert bundle["source"]["checkpoint"] == "clip-checkpoint" and bundle["source"]["revision"] == "test"
    assert (out / "vocab.json").read_bytes() == (fresh / "vocab.json").read_bytes()
    assert bundle["tokenizer"] == load(fresh, "bundle.json")["tokenizer"]
    import onnxruntime as ort

    pixels = np.random.default_rng(5).standard_normal((2, 3, 224, 224), dtype=np.float32)
    a = ort.InferenceSession(str(out / "image.onnx")).run(None, {"pixel_values": pixels})[0]
    b = ort.InferenceSession(str(fresh / "image.onnx")).run(None, {"pixel_values": pixels})[0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_int8_variants_are_listed_and_close_to_fp32(tmp_path: Path):
    out = tmp_path / "tiny-int8"
    r = subprocess.run([sys.executable, str(EXPORT), "--random-init", "tiny", "--out", str(out), "--int8"], check=True, capture_output=True, text=True)
    bundle = load(out, "bundle.json")
    assert bundle["graphs"]["image"]["int8"] == "image.int8.onnx" and "text.int8.onnx" in bundle["files"]
    report = json.loads(r.stdout)
    assert bundle["graphs"]["image"]["variants"]["int8"] == {"file": "image.u8.int8.onnx", "input": "pixels", "output": "image_embeds", "inputFormat": "uint8-nhwc"}
    assert report["uint8_graphs"]["int8_vs_fp32"]["min_cosine"] > 0.99, report
    assert report["int8_vs_fp32"]["image_int8_min_cosine"] > 0.99, report
    assert report["int8_vs_fp32"]["text_int8_min_cosine"] > 0.99, report


def test_uint8_graphs_are_listed_and_match_the_float_graph(fresh: Path):
    """uint8 NHWC in, normalisation inside: the fp32 variant equals the float graph on the golden crops;
    fp16 within its stated bounds (cosine >= 0.999 per image, max abs <= 0.02, normalised embeddings)."""
    import onnx
    from clipeval_export.models import random_clip
    from clipeval_export.pixels_check import FP16_MAX_ABS, FP16_MIN_COSINE, check_crops, check_uint8_graphs, compare, run

    bundle = load(fresh, "bundle.json")
    variants = bundle["graphs"]["image"]["variants"]
    assert set(variants) == {"fp32", "fp16"}
    assert all(v["inputFormat"] == "uint8-nhwc" and v["input"] == "pixels" for v in variants.values())
    half = onnx.load(str(fresh / variants["fp16"]["file"]))
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in half.graph.initializer)

    model = random_clip("tiny", 0)
    report = check_uint8_graphs(model, fresh, bundle["graphs"], bundle["preprocessing"])
    assert report["uint8_fp32_vs_float"]["max_abs"] <= 1e-5, report
    assert report["fp16_ort_cpu_vs_fp32"]["min_cosine"] >= FP16_MIN_COSINE, report
    assert report["fp16_ort_cpu_vs_fp32"]["max_abs"] <= FP16_MAX_ABS, report

    # The crops are the committed goldens' crops (HF's processor), fed as bytes, in NHWC order.
    u8, floats = check_crops(model, bundle["preprocessing"], random_crops=0)
    from PIL import Image

    golden = load(FIXTURE_GOLDEN, "image-embeddings.json")
    for crop, g in zip(u8, golden):
        assert np.array_equal(crop, np.asarray(Image.open(FIXTURE_GOLDEN / g["crop"]).convert("RGB")))
    a = run(fresh / variants["fp32"]["file"], {"pixels": u8})
    assert compare(a, np.array([g["embedding"] for g in golden]))["min_cosine"] > 0.99999
