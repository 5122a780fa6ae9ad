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


def write_vocab_from_open_clip(out: Path, context_length: int) -> dict:
    """vocab.json (49408 entries) and merges.txt (48894 merges), as in every HF CLIP checkpoint;
    returns bundle.json's tokenizer entry (HF's flavour, the special ids as this vocabulary has them)."""
    lines = gzip.open(open_clip_vocab_file()).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    base = list(bytes_to_unicode().values())
    vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408 and len(merges) == 48894, (len(vocab), len(merges))
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    bos, eos = vocab.index("<|startoftext|>"), vocab.index("<|endoftext|>")
    # HF's CLIPTokenizer pads with its pad token, <|endoftext|>.
    return {"flavour": "hf-clip", "vocab": "vocab.json", "merges": "merges.txt", "contextLength": context_length, "bosTokenId": bos, "eosTokenId": eos, "padTokenId": eos}


def write_vocab_from_tokenizer_json(path: Path, out: Path) -> None:
    """vocab.json and merges.txt from a tokenizer.json's BPE model (folders saved by current
    transformers carry only tokenizer.json). Merges are lists of two strings (tokenizers >= 0.20)
    or "left right" strings (older files); either way merges.txt gets one "left right" per line,
    in rank order, as HF's own slow-tokenizer files hold them. Added tokens absent from
    model.vocab (e.g. the special tokens of some files) are added with their ids."""
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise SystemExit(f"{path}: model.type is {model.get('type')!r}; a CLIP tokenizer is a BPE model")
    if model.get("end_of_word_suffix") not in ("</w>", None) or model.get("continuing_subword_prefix") not in ("", None):
        raise SystemExit(f"{path}: end_of_word_suffix {model.get('end_of_word_suffix')!r} / continuing_subword_prefix {model.get('continuing_subword_prefix')!r}: not CLIP's BPE")
    vocab = dict(model["vocab"])
    for token in data.get("added_tokens", []):
        if vocab.setdefault(token["content"], token["id"]) != token["id"]:
            raise SystemExit(f"{path}: added token {token['content']!r} has id {token['id']} but {vocab[token['content']]} in model.vocab")
    merges = []
    for i, m in enumerate(model["merges"]):
        pair = m.split(" ") if isinstance(m, str) else list(m)
        if len(pair) != 2 or any(" " in p or p == "" for p in pair):
            raise SystemExit(f"{path}: model.merges[{i}] is {m!r}, not a pair of symbols")
        merges.append(pair)
    (out / "vocab.json").write_text(json.dumps(dict(sorted(vocab.items(), key=lambda kv: kv[1])), ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
