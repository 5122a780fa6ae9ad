"""What a Hugging Face CLIP folder says about its preprocessing and tokenizer, read rather than assumed.

preprocessor_config.json gives mean/std, the resize (shortest edge), the crop, the interpolation and
the rescale factor; the tokenizer files (tokenizer.json, or vocab.json + merges.txt, plus
tokenizer_config.json) give the vocabulary, the merges, the special token ids and the maximum
length. clipeval's TypeScript pipeline implements one preprocessing (Pillow-bicubic resize of the
shortest edge to S, center crop S x S) and one tokenizer pipeline (CLIP's): a folder asking for
anything else is refused with the field that differs, never exported to give silently other
embeddings than transformers would.
"""

import json
from pathlib import Path

from .bundle import OPENAI_MEAN, OPENAI_STD
from .vocab import write_vocab_from_tokenizer_json

# PIL's resampling filters, as transformers stores them in preprocessor_config.json ("resample").
PIL_FILTERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
# CLIPImageProcessor's defaults: what a preprocessor_config.json without the field means.
HF_DEFAULTS = {
    "do_resize": True,
    "size": {"shortest_edge": 224},
    "resample": 3,
    "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": OPENAI_MEAN,
    "image_std": OPENAI_STD,
}
SOT, EOT = "<|startoftext|>", "<|endoftext|>"


class FolderError(SystemExit):
    """The folder cannot be exported as it is (the message names the file, the field and the fix)."""


def read_preprocessing(folder: Path, image_size: int) -> dict:
    """bundle.json's preprocessing from preprocessor_config.json (CLIPImageProcessor's defaults where absent)."""
    path = folder / "preprocessor_config.json"
    if not path.exists():
        raise FolderError(f"{path} is missing: a CLIP checkpoint folder has preprocessor_config.json (save the processor with the model)")
    cfg = {**HF_DEFAULTS, **json.loads(path.read_text())}
    where = lambda field: f"{path}: {field} = {json.dumps(cfg[field])}"  # noqa: E731
    if not cfg["do_resize"] or not cfg["do_center_crop"]:
        raise FolderError(f"{where('do_resize' if not cfg['do_resize'] else 'do_center_crop')}: clipeval always resizes and center-crops, as CLIP was trained")
    resize = cfg["size"] if isinstance(cfg["size"], dict) else {"shortest_edge": cfg["size"]}
    if set(resize) != {"shortest_edge"}:
        raise FolderError(f"{where('size')}: only a shortest-edge resize ({{\"shortest_edge\": N}}) is supported")
    crop = cfg["crop_size"] if isinstance(cfg["crop_size"], dict) else {"height": cfg["crop_size"], "width": cfg["crop_size"]}
    if crop.get("height") != crop.get("width"):
        raise FolderError(f"{where('crop_size')}: only a square crop is supported")
    if crop["height"] != image_size:
        raise FolderError(f"{where('crop_size')}, but config.json's vision_config.image_size is {image_size}: the crop must be the model's input")
    if resize["shortest_edge"] != crop["height"]:
        raise FolderError(f"{where('size')} with crop_size {crop['height']}: clipeval resizes the shortest edge to the crop size (as every CLIP checkpoint does)")
    interpolation = cfg["resample"] if isinstance(cfg["resample"], str) else PIL_FILTERS.get(cfg["resample"], str(cfg["resample"]))
    if interpolation.lower() != "bicubic":
        raise FolderError(f"{where('resample')} ({interpolation}): clipeval's resize is Pillow's bicubic only")
    mean = [float(m) for m in cfg["image_mean"]] if cfg["do_normalize"] else [0.0, 0.0, 0.0]
    std = [float(s) for s in cfg["image_std"]] if cfg["do_normalize"] else [1.0, 1.0, 1.0]
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise FolderError(f"{path}: image_mean and image_std must be three numbers each, std > 0")
    return {
        "imageSize": image_size,
        "resizeSize": resize["shortest_edge"],
        "resize": "shortest-edge",
        "interpolation": "bicubic",
        "crop": "center",
        "rescale": float(cfg["rescale_factor"]) if cfg["do_rescale"] else 1.0,
        "mean": mean,
        "std": std,
    }


def read_tokenizer(folder: Path, out: Path, *, max_positions: int, vocab_size: int, pooling_eos_id: int | None) -> dict:
    """Writes vocab.json and merges.txt into `out` and returns bundle.json's tokenizer entry.

    tokenizer.json wins where both forms exist: it is what transformers loads. The special ids and
    the maximum length come from transformers' own reading of the folder (tokenizer_config.json,
    special_tokens_map.json, added tokens), so they are whatever HF's tokenizer would use.
    `pooling_eos_id`: the id the text tower pools at (config.json's text eos_token_id), or None
    where it pools at the highest id (legacy configs with eos_token_id 2).
    """
    from transformers import CLIPTokenizer

    if (folder / "tokenizer.json").exists():
        write_vocab_from_tokenizer_json(folder / "tokenizer.json", out)
    elif (folder / "vocab.json").exists() and (folder / "merges.txt").exists():
        for name in ("vocab.json", "merges.txt"):
            (out / name).write_bytes((folder / name).read_bytes())
    else:
        raise FolderError(f"{folder} has no tokenizer: expected tokenizer.json, or vocab.json and merges.txt (save the tokenizer with the model)")
    hf = CLIPTokenizer.from_pretrained(str(folder))
    if hf.bos_token != SOT or hf.eos_token != EOT:
        raise FolderError(f"{folder}: special tokens are {hf.bos_token!r} / {hf.eos_token!r}; clipeval's tokenizer knows CLIP's {SOT} / {EOT} only")
    bos, eos = hf.bos_token_id, hf.eos_token_id
    pad = hf.pad_token_id if hf.pad_token_id is not None else eos
    vocab = json.loads((out / "vocab.json").read_text())
    if vocab.get(SOT) != bos or vocab.get(EOT) != eos:
        raise FolderError(f"{folder}: {SOT} / {EOT} are ids {vocab.get(SOT)} / {vocab.get(EOT)} in the vocabulary but {bos} / {eos} to transformers")
    if len(vocab) > vocab_size:
        raise FolderError(f"{folder}: the vocabulary has {len(vocab)} tokens, config.json's text vocab_size is {vocab_size}")
    if pooling_eos_id is None and eos != max(vocab.values()):
        raise FolderError(f"{folder}: config.json's text eos_token_id is 2 (pool at the highest id), but {EOT} ({eos}) is not the highest id")
    if pooling_eos_id is not None and pooling_eos_id != eos:
        raise FolderError(f"{folder}: config.json's text eos_token_id is {pooling_eos_id}, the tokenizer's end token is {eos}: the text tower would pool at the wrong token")
    # transformers stores "no limit" as a huge model_max_length; the positions bound it anyway.
    context = min(int(hf.model_max_length), max_positions)
    entry = {
        "flavour": "hf-clip",
        "vocab": "vocab.json",
        "merges": "merges.txt",
        "contextLength": context,
        "bosTokenId": bos,
        "eosTokenId": eos,
        "padTokenId": pad,
    }
    added = added_tokens(folder, hf)
    if added:
        entry["addedTokens"] = added
    return entry


def added_tokens(folder: Path, hf) -> list[dict]:
    """Added tokens other than the start and end tokens, which HF cuts out of the raw text before
    normalising, as it does the start and end tokens (e.g. a pad token "!" saved as special: then
    every "!" in a text is id 0, not the BPE "!</w>"). Only the raw-text kind is supported."""
    out = []
    for token_id, token in sorted(hf.added_tokens_decoder.items()):
        if token.content in (SOT, EOT):
            continue
        if token.normalized or token.lstrip or token.rstrip or token.single_word:
            raise FolderError(
                f"{folder}: added token {token.content!r} (id {token_id}) is matched with normalized/lstrip/rstrip/single_word; "
                "clipeval's tokenizer matches added tokens on the raw text only"
            )
        out.append({"content": token.content, "id": token_id})
    return out
