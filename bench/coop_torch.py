#!/usr/bin/env python3
"""PyTorch eager baseline for one CoOp training step on the random-init ViT-B/32 text tower.

One step = prompt assembly, text forward over all classes, cross-entropy on a batch of random
normalised image features, backward to the shared context, SGD momentum update (CoOp's optimiser).
Two variants: "full" (77 positions, as the official CoOp code runs) and "cut" (positions after the
last EOT dropped: the causal mask makes them irrelevant, and clipeval's coop.onnx runs that way).
--onnx PATH also times the same step with Python onnxruntime on a bundle's coop.onnx.

  .venv/bin/python bench/coop_torch.py --classes 10 --threads 2 [--onnx .clipeval/bundles/random-vit-b-32/coop.onnx]

Prints one JSON object.
"""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra" / "exporter"))
from clipeval_export.coop_graph import text_features  # noqa: E402
from clipeval_export.corpus import CLASS_NAMES  # noqa: E402
from clipeval_export.models import random_clip  # noqa: E402
from clipeval_export.vocab import write_vocab_from_open_clip  # noqa: E402

SEQ_FULL = 77


def class_names(n: int, seed: int) -> list[str]:
    """n distinct names of 1-3 words drawn from ImageNet-like class names: realistic token counts."""
    rng = random.Random(seed)
    words = sorted({w for name in CLASS_NAMES for w in name.replace("_", " ").replace("-", " ").split()})
    names: set[str] = set()
    while len(names) < n:
        names.add(" ".join(rng.sample(words, rng.randint(1, 3))))
    return sorted(names)


def tokenise(names: list[str], n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CoOp's prompts "X X ... X name." padded to 77 with the real CLIP vocabulary; ids and EOT positions."""
    with tempfile.TemporaryDirectory() as vocab:
        write_vocab_from_open_clip(Path(vocab))
        tokenizer = CLIPTokenizer.from_pretrained(vocab)
    prompts = [" ".join(["X"] * n_ctx) + f" {name}." for name in names]
    ids = tokenizer(prompts, padding="max_length", max_length=SEQ_FULL, truncation=True, return_tensors="pt")["input_ids"]
    return ids, (ids == tokenizer.eos_token_id).int().argmax(dim=1)


def median_ms(step, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    return times


def torch_step(model, ids: torch.Tensor, eot: torch.Tensor, n_ctx: int, images: torch.Tensor, labels: torch.Tensor):
    """A step closure over a fresh unified context [n_ctx, W], as in CoOp's PromptLearner."""
    embed = model.text_model.embeddings.token_embedding
    with torch.no_grad():  # frozen: CoOp precomputes the prefix (start token) and suffix (name, ".", EOT, pad)
        prefix, suffix = embed(ids[:, :1]), embed(ids[:, 1 + n_ctx :])
    ctx = torch.nn.Parameter(torch.randn(n_ctx, prefix.shape[-1]) * 0.02)
    opt = torch.optim.SGD([ctx], lr=0.002, momentum=0.9, weight_decay=5e-4)
    scale = model.logit_scale.exp()

    def step():
        prompts = torch.cat([prefix, ctx.expand(ids.shape[0], -1, -1), suffix], dim=1)
        logits = scale * images @ text_features(model, prompts, eot).T
        loss = torch.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def onnx_step(path: str, threads: int, model, ids: torch.Tensor, eot: torch.Tensor, n_ctx: int, images, labels):
    """The same step on coop.onnx: ctx broadcast to every class, gradient summed back, SGD in numpy."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    classes, length = ids.shape
    width = model.config.text_config.hidden_size
    mask = np.zeros((classes, length), np.float32)
    mask[:, 1 : 1 + n_ctx] = 1
    feeds = {
        "input_ids": ids.numpy(),
        "ctx_mask": mask,
        "eot_index": eot.long().numpy(),
        "image_features": images.numpy(),
        "targets": np.eye(classes, dtype=np.float32)[labels.numpy()],
    }
    ctx = np.random.default_rng(0).standard_normal((n_ctx, width), dtype=np.float32) * 0.02
    velocity = np.zeros_like(ctx)

    def step():
        nonlocal ctx
        full = np.zeros((classes, length, width), np.float32)
        full[:, 1 : 1 + n_ctx] = ctx
        (grad,) = session.run(["grad_ctx"], {**feeds, "ctx": full})
        g = grad[:, 1 : 1 + n_ctx].sum(axis=0) + 5e-4 * ctx  # torch SGD: weight decay, then momentum
        velocity[:] = 0.9 * velocity + g
        ctx = ctx - 0.002 * velocity

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--n-ctx", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--onnx", help="also time the step with onnxruntime on this coop.onnx")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model = random_clip("vit-b-32", args.seed).requires_grad_(False)
    names = class_names(args.classes, args.seed)
    ids, eot = tokenise(names, args.n_ctx)
    cut = int(eot.max()) + 1
    g = torch.Generator().manual_seed(args.seed)
    images = torch.nn.functional.normalize(torch.randn(args.batch, model.config.projection_dim, generator=g), dim=-1)
    labels = torch.randint(0, args.classes, (args.batch,), generator=g)

    out = {"torch": torch.__version__.split("+")[0], "threads": torch.get_num_threads(), "classes": args.classes}
    out.update(seq_full=SEQ_FULL, seq_cut=cut, names=names)
    for name, length in (("full", SEQ_FULL), ("cut", cut)):
        step = torch_step(model, ids[:, :length], eot, args.n_ctx, images, labels)
        out[f"ms_{name}_all"] = median_ms(step, args.repeats, args.warmup)
        out[f"ms_{name}"] = statistics.median(out[f"ms_{name}_all"])
    if args.onnx:
        step = onnx_step(args.onnx, args.threads, model, ids[:, :cut], eot, args.n_ctx, images, labels)
        out["onnx_ms_cut_all"] = median_ms(step, args.repeats, args.warmup)
        out["onnx_ms_cut"] = statistics.median(out["onnx_ms_cut_all"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
