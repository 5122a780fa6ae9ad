"""HF transformers reference for clipeval's zero-shot prototypes (tests only).

Reads {names, templates, images, dim} as JSON on stdin; rebuilds the tiny fixture model from its
seed, tokenises with HF CLIPTokenizer on the bundle's vocab and merges, and prints the prototypes
(normalised mean of normalised get_text_features over templates) and logit_scale x cosine logits.
"""

import json
import sys
from pathlib import Path

import torch
from transformers import CLIPTokenizer

root = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(root / "infra" / "exporter"))
from clipeval_export.models import random_clip  # noqa: E402

bundle = root / "test" / "fixtures" / "tiny-clip"


def main() -> None:
    req = json.load(sys.stdin)
    model = random_clip("tiny", 0).eval()
    tok = CLIPTokenizer(str(bundle / "vocab.json"), str(bundle / "merges.txt"))
    protos = []
    with torch.no_grad():
        for name in req["names"]:
            texts = [t.replace("{c}", name) for t in req["templates"]]
            batch = tok(texts, padding=True, return_tensors="pt")
            out = model.get_text_features(**batch)
            feats = out if isinstance(out, torch.Tensor) else out.pooler_output
            feats = feats / feats.norm(dim=-1, keepdim=True)
            mean = feats.mean(dim=0)
            protos.append(mean / mean.norm())
        p = torch.stack(protos)
        images = torch.tensor(req["images"], dtype=torch.float32).reshape(-1, req["dim"])
        logits = model.logit_scale.exp() * images @ p.T
    json.dump({"prototypes": p.flatten().tolist(), "logits": logits.flatten().tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
