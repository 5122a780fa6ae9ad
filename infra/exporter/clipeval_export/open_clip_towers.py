"""OpenCLIP models (`open_clip_torch`): loaded from a model name and a checkpoint file, exported as they are.

The graphs are OpenCLIP's own modules traced to ONNX, not its weights mapped onto HF's CLIPModel:
a state-dict mapping reaches only the towers HF has an equivalent for (ViT with matching
activations), while tracing OpenCLIP's modules covers ModifiedResNet and any other tower the
library builds, and the parity reference is then OpenCLIP itself, not a re-implementation.

The image graph is `model.encode_image`. The text graph is `encode_text` with one change: the
positional embedding and the causal mask are sliced to the batch's length L (OpenCLIP adds all
77 positions, so it needs inputs padded to 77); under the causal mask the first L positions do not
see the rest, so the features at the end token are the same (checked by the tests).
"""

import json
from pathlib import Path

import torch

from .towers import pool_at

FAMILY = "open-clip"


def _open_clip():
    try:
        import open_clip
    except ImportError as err:  # pragma: no cover - setup.sh installs it
        raise SystemExit(f"open_clip is not importable ({err}): run bash infra/exporter/setup.sh") from err
    return open_clip


def model_name(name_or_config: str) -> str:
    """A built-in model name as is; a path to an OpenCLIP model config (.json) registered under its stem."""
    path = Path(name_or_config)
    if path.suffix == ".json":
        if not path.exists():
            raise SystemExit(f"--open-clip {name_or_config}: no such model config file")
        json.loads(path.read_text())  # a clear error for a file that is not JSON
        _open_clip().add_model_config(path)
        return path.stem
    if name_or_config not in _open_clip().list_models():
        raise SystemExit(f"--open-clip {name_or_config}: not an OpenCLIP model name (see open_clip.list_models()) or a model config .json file")
    return name_or_config


def load_open_clip(name_or_config: str, checkpoint: Path | None, seed: int) -> "OpenClip":
    """The model with the checkpoint's weights, or seeded random weights where checkpoint is None."""
    open_clip = _open_clip()
    name = model_name(name_or_config)
    if checkpoint is not None and not checkpoint.is_file():
        raise SystemExit(f"--checkpoint {checkpoint}: an OpenCLIP checkpoint is a file (.pt, .bin or .safetensors)")
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=str(checkpoint) if checkpoint else None, load_weights=checkpoint is not None)
    return OpenClip(model.eval(), name)


class OpenClip:
    family = FAMILY

    def __init__(self, model, name: str):
        open_clip = _open_clip()
        if type(model) is not open_clip.CLIP:
            raise SystemExit(
                f"OpenCLIP model {name} is a {type(model).__name__}: clipeval exports open_clip.CLIP models "
                "(OpenCLIP's own text transformer); models with HF text towers, CoCa and the like are not supported"
            )
        if getattr(model, "text_pool_type", "argmax") != "argmax":
            raise SystemExit(f"OpenCLIP model {name} pools text with {model.text_pool_type!r}; clipeval pools at the end token (argmax)")
        if getattr(model, "logit_bias", None) is not None:
            raise SystemExit(f"OpenCLIP model {name} has a logit bias (sigmoid loss): not supported")
        self.model, self.name = model, name
        # nn.MultiheadAttention's inference fast path is one fused op (_native_multi_head_attention)
        # that ONNX has no export for; the standard path computes the same attention in plain ops.
        torch.backends.mha.set_fastpath_enabled(False)
        size = model.visual.image_size
        size = size if isinstance(size, (tuple, list)) else (size, size)
        if size[0] != size[1]:
            raise SystemExit(f"OpenCLIP model {name} takes {size[0]}x{size[1]} images; clipeval's crop is square")
        self.image_size = int(size[0])
        self.max_positions = int(model.context_length)
        self.text_width = int(model.transformer.width)
        self.vocab_size = int(model.vocab_size)
        self.embed_dim = int(self._project(torch.zeros(1, self.text_width)).shape[-1])

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale

    def _project(self, pooled: torch.Tensor) -> torch.Tensor:
        proj = self.model.text_projection
        if proj is None:
            return pooled
        return proj(pooled) if isinstance(proj, torch.nn.Linear) else pooled @ proj

    def _tower(self, embeds: torch.Tensor) -> torch.Tensor:
        """encode_text's steps between the token embeddings and the pooling, at any length L <= 77."""
        m = self.model
        length = embeds.shape[1]
        x = embeds + m.positional_embedding[:length]
        x = m.transformer(x, attn_mask=m.attn_mask[:length, :length])
        return m.ln_final(x)

    def image_encoder(self) -> torch.nn.Module:
        return _Image(self.model)

    def text_encoder(self) -> torch.nn.Module:
        return _Text(self)

    def token_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.token_embedding(ids)

    def text_features(self, embeds: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
        features = self._project(pool_at(self._tower(embeds), eot_index))
        return features / features.norm(dim=-1, keepdim=True)

    def text_weights(self) -> list[torch.Tensor]:
        m = self.model
        out = [m.token_embedding.weight, m.positional_embedding, m.attn_mask, m.logit_scale, *m.transformer.parameters(), *m.ln_final.parameters()]
        proj = m.text_projection
        if proj is not None:
            out += list(proj.parameters()) if isinstance(proj, torch.nn.Module) else [proj]
        return out

    def reference_text_features(self, ids: torch.Tensor) -> torch.Tensor:
        """OpenCLIP's encode_text, which needs the full context length: ids are padded with 0 to it."""
        padded = torch.zeros(ids.shape[0], self.max_positions, dtype=ids.dtype)
        padded[:, : ids.shape[1]] = ids
        return self.model.encode_text(padded, normalize=True)

    def reference_image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def architecture(self) -> dict:
        visual = self.model.visual
        vision = {"imageSize": self.image_size, "tower": type(visual).__name__}
        # ViT: patch size, width, layers and heads; ModifiedResNet: its stage depths and width.
        patch = getattr(visual, "patch_size", None)
        vision["patchSize"] = int(patch[0] if isinstance(patch, (tuple, list)) else patch or 0)
        transformer = getattr(visual, "transformer", None)
        if transformer is not None:
            vision.update(width=int(transformer.width), layers=int(transformer.layers), heads=int(transformer.resblocks[0].attn.num_heads))
        else:
            stages = [len(getattr(visual, f"layer{i}")) for i in range(1, 5)]
            vision.update(width=int(visual.layer1[0].conv1.in_channels), layers=sum(stages), heads=int(visual.attnpool.num_heads), stages=stages)
        t = self.model.transformer
        return {
            "embedDim": self.embed_dim,
            "vision": vision,
            "text": {"width": int(t.width), "layers": int(t.layers), "heads": int(t.resblocks[0].attn.num_heads), "vocabSize": self.vocab_size},
        }

    def preprocessing(self) -> dict:
        """bundle.json's preprocessing from the model's preprocess config (OpenCLIP's image_transform)."""
        cfg = _open_clip().get_model_preprocess_cfg(self.model)
        size = cfg.get("size", self.image_size)
        size = size if isinstance(size, (tuple, list)) else (size, size)
        checks = [
            (cfg.get("resize_mode", "shortest") == "shortest", f"resize_mode {cfg.get('resize_mode')!r}: clipeval resizes the shortest edge"),
            (cfg.get("interpolation", "bicubic") == "bicubic", f"interpolation {cfg.get('interpolation')!r}: clipeval's resize is bicubic only"),
            (tuple(size) == (self.image_size, self.image_size), f"size {size} is not the model's {self.image_size}"),
        ]
        for ok, why in checks:
            if not ok:
                raise SystemExit(f"OpenCLIP model {self.name}: preprocess config {why}")
        return {
            "imageSize": self.image_size,
            "resizeSize": self.image_size,
            "resize": "shortest-edge",
            "interpolation": "bicubic",
            "crop": "center",
            # torchvision's CenterCrop rounds the crop's start half to even (Python's round); HF floors.
            "cropRounding": "half-even",
            "rescale": 1 / 255,  # torchvision's ToTensor
            "mean": [float(m) for m in cfg.get("mean")],
            "std": [float(s) for s in cfg.get("std")],
        }

    def tokenizer_entry(self) -> dict:
        """bundle.json's tokenizer, from the model's own OpenCLIP tokenizer (checked to be SimpleTokenizer)."""
        open_clip = _open_clip()
        tok = open_clip.get_tokenizer(self.name)
        if not isinstance(tok, open_clip.SimpleTokenizer):
            raise SystemExit(f"OpenCLIP model {self.name} uses {type(tok).__name__}; clipeval's open-clip flavour is SimpleTokenizer's")
        if getattr(tok, "reduction_fn", None) is not None or tok.clean_fn is not open_clip.tokenizer._clean_lower:
            raise SystemExit(f"OpenCLIP model {self.name}: its tokenizer cleans or reduces text other than SimpleTokenizer's default (ftfy + whitespace + lowercase, truncation)")
        if len(tok.encoder) != self.vocab_size:
            raise SystemExit(f"OpenCLIP model {self.name}: tokenizer has {len(tok.encoder)} tokens, the model {self.vocab_size}")
        return {
            "flavour": FAMILY,
            "vocab": "vocab.json",
            "merges": "merges.txt",
            "contextLength": int(tok.context_length or self.max_positions),
            "bosTokenId": int(tok.sot_token_id),
            "eosTokenId": int(tok.eot_token_id),
            "padTokenId": 0,  # open_clip.tokenize pads with zeros
        }


class _Image(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixel_values)


class _Text(torch.nn.Module):
    """ids [N, L] -> projected features at the end token, found as OpenCLIP does (the highest id)."""

    def __init__(self, towers: OpenClip):
        super().__init__()
        self.model = towers.model  # registered, so the exporter sees the weights as parameters
        self.towers = towers

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.towers._tower(self.model.token_embedding(input_ids))
        pooled = hidden[torch.arange(hidden.shape[0]), input_ids.argmax(dim=-1)]
        return self.towers._project(pooled)
