"""One interface over the CLIP families the exporter reads, so every graph is built the same way.

A `Towers` gives the image encoder (pixels -> projected embedding), the text encoder (ids ->
projected embedding), the text tower from token embeddings on (what CoOp's gradient graph needs),
and the sizes bundle.json records. `HfClip` wraps a transformers `CLIPModel`; `OpenClip` (in
./open_clip_towers.py) wraps an `open_clip` `CLIP`. Both leave embeddings unnormalised except
`text_features`, which is CoOp's (L2-normalised, as the loss uses it).
"""

import torch
from transformers import CLIPModel


class HfClip:
    family = "hf-clip"

    def __init__(self, model: CLIPModel):
        self.model = model
        t, v = model.config.text_config, model.config.vision_config
        self.image_size = v.image_size
        self.max_positions = t.max_position_embeddings
        self.text_width = t.hidden_size
        self.embed_dim = model.config.projection_dim
        self.vocab_size = t.vocab_size

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale

    def image_encoder(self) -> torch.nn.Module:
        return _HfImage(self.model)

    def text_encoder(self) -> torch.nn.Module:
        return _HfText(self.model)

    def token_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.text_model.embeddings.token_embedding(ids)

    def text_features(self, embeds: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
        """HF CLIP's text tower from token embeddings [C, L, W] on: positions, causal layers, pooling, projection.

        The encoder layers and norms are HF's own modules, called as they are; only the steps around
        them (position add, mask, pooling) are written here, so that ids can be replaced by embeddings.
        """
        text = self.model.text_model
        length = embeds.shape[1]
        hidden = embeds + text.embeddings.position_embedding.weight[:length]
        # Additive causal mask built from L, as HF's eager path does (finfo.min above the diagonal).
        pos = torch.arange(length, device=embeds.device)
        causal = torch.where(pos[None, :] > pos[:, None], torch.finfo(embeds.dtype).min, 0.0)[None, None]
        for layer in text.encoder.layers:
            hidden = layer(hidden, causal)
        hidden = text.final_layer_norm(hidden)
        features = self.model.text_projection(pool_at(hidden, eot_index))
        return features / features.norm(dim=-1, keepdim=True)

    def text_weights(self) -> list[torch.Tensor]:
        """Every tensor the text side may hold as an ONNX initializer (CoOp's baked-value check)."""
        m = self.model
        return [*m.text_model.parameters(), *m.text_model.buffers(), *m.text_projection.parameters(), m.logit_scale]

    def reference_text_features(self, ids: torch.Tensor) -> torch.Tensor:
        """The library's own text features from ids, L2-normalised (the anchor for `text_features`)."""
        out = self.model.get_text_features(input_ids=ids)
        out = getattr(out, "pooler_output", out)
        return out / out.norm(dim=-1, keepdim=True)

    def reference_image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.model.get_image_features(pixel_values=pixels)
        return getattr(out, "pooler_output", out)

    def architecture(self) -> dict:
        v, t = self.model.config.vision_config, self.model.config.text_config
        return {
            "embedDim": self.embed_dim,
            "vision": {"imageSize": v.image_size, "patchSize": v.patch_size, "width": v.hidden_size, "layers": v.num_hidden_layers, "heads": v.num_attention_heads},
            "text": {"width": t.hidden_size, "layers": t.num_hidden_layers, "heads": t.num_attention_heads, "vocabSize": t.vocab_size},
        }


def pool_at(hidden: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
    """hidden [C, L, W] at each row's eot_index, as a one-hot sum rather than an index: its backward is
    a plain Mul, where an index's is a ScatterND with reduction=add (less widely supported by GPU
    execution providers)."""
    pos = torch.arange(hidden.shape[1], device=hidden.device)
    at_eot = (pos[None, :] == eot_index[:, None]).to(hidden.dtype)
    return (hidden * at_eot[..., None]).sum(dim=1)


class _HfImage(torch.nn.Module):
    def __init__(self, model: CLIPModel):
        super().__init__()
        self.vision, self.projection = model.vision_model, model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projection(self.vision(pixel_values=pixel_values).pooler_output)


class _HfText(torch.nn.Module):
    """Pools at the end-of-text token; padding after it (any id) cannot change the result (causal mask)."""

    def __init__(self, model: CLIPModel):
        super().__init__()
        self.text, self.projection = model.text_model, model.text_projection

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.text(input_ids=input_ids).pooler_output)


def as_towers(model):
    """A Towers for a model of either family (a Towers passes through)."""
    if isinstance(model, CLIPModel):
        return HfClip(model)
    if hasattr(model, "family"):
        return model
    raise TypeError(f"not a CLIP model this exporter knows: {type(model).__name__}")
