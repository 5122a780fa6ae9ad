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
    assert set(bundle["files"]) == {"image.onnx", "text.onnx", "coop.onnx", "vocab.json", "merges.txt"}
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

    check = self_check(random_clip("tiny", 0), fresh, seed=99)
    assert max(check.values()) < 1e-4, check


def test_refuses_a_folder_that_is_not_a_checkpoint(tmp_path: Path):
    r = subprocess.run([sys.executable, str(EXPORT), "--checkpoint", str(tmp_path), "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode != 0
    assert "not a Hugging Face checkpoint folder" in r.stderr


def test_converts_a_hugging_face_checkpoint_folder(tmp_path: Path, fresh: Path):
    """The --checkpoint path, on a checkpoint saved by transformers (what a real download holds)."""
    sys.path.insert(0, str(EXPORT.parent))
    from clipeval_export.models import random_clip

    ckpt = tmp_path / "clip-checkpoint"
    random_clip("tiny", 0).save_pretrained(ckpt)
    for name in ("vocab.json", "merges.txt"):
        (ckpt / name).write_bytes((fresh / name).read_bytes())
    out = tmp_path / "bundle"
    subprocess.run([sys.executable, str(EXPORT), "--checkpoint", str(ckpt), "--revision", "test", "--out", str(out)], check=True)
    bundle = load(out, "bundle.json")
    assert bundle["source"]["checkpoint"] == "clip-checkpoint" and bundle["source"]["revision"] == "test"
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
    assert report["int8_vs_fp32"]["image_int8_min_cosine"] > 0.99, report
    assert report["int8_vs_fp32"]["text_int8_min_cosine"] > 0.99, report
