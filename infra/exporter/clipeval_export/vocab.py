"""The CLIP byte-level BPE vocabulary: from a checkpoint, or from the file inside open_clip's wheel."""

import gzip
import importlib.util
import json
import shutil
from pathlib import Path


def bytes_to_unicode() -> dict[int, str]:
    """OpenAI's byte -> printable character table (the 256 base symbols)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def open_clip_vocab_file() -> Path:
    """bpe_simple_vocab_16e6.txt.gz from the installed open_clip package (located, not imported)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("open_clip is not installed: run infra/exporter/setup.sh")
    path = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.exists():
        raise SystemExit(f"{path} is missing from the open_clip package")
    return path


def write_vocab_from_open_clip(out: Path) -> None:
    """vocab.json (49408 entries) and merges.txt (48894 merges), as in every HF CLIP checkpoint."""
    lines = gzip.open(open_clip_vocab_file()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    base = list(bytes_to_unicode().values())
    vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408 and len(merges) == 48894, (len(vocab), len(merges))
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")


def copy_vocab_from_checkpoint(checkpoint: Path, out: Path) -> None:
    for name in ("vocab.json", "merges.txt"):
        if not (checkpoint / name).exists():
            raise SystemExit(f"{checkpoint / name} is missing: a CLIP checkpoint folder has vocab.json and merges.txt")
        shutil.copyfile(checkpoint / name, out / name)
