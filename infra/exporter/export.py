#!/usr/bin/env python3
"""Export a CLIP model to a clipeval bundle (ONNX graphs, tokenizer files, bundle.json).

  python infra/exporter/export.py --checkpoint path/to/clip-vit-base-patch32 --out bundles/vit-b-32
  python infra/exporter/export.py --random-init tiny --seed 0 --out test/fixtures/tiny-clip --golden
  python infra/exporter/export.py --open-clip ViT-B-32 --checkpoint open_clip_model.safetensors --out bundles/oc-vit-b-32
  python infra/exporter/export.py --open-clip my-config.json --random-init open-clip --seed 0 --out bundles/oc-random
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clipeval_export.bundle import clip_preprocessing, write_bundle_json  # noqa: E402
from clipeval_export.coop_graph import check_coop, coop_failures, export_coop  # noqa: E402
from clipeval_export.golden import write_golden  # noqa: E402
from clipeval_export.models import load_checkpoint, random_clip  # noqa: E402
from clipeval_export.open_clip_towers import load_open_clip  # noqa: E402
from clipeval_export.onnx_export import export_encoders, int8_check, quantize_int8, self_check  # noqa: E402
from clipeval_export.pixels_check import check_uint8_graphs, uint8_failures  # noqa: E402
from clipeval_export.pixels_graphs import export_uint8_image, quantize_uint8_int8  # noqa: E402
from clipeval_export.hf_folder import read_preprocessing, read_tokenizer  # noqa: E402
from clipeval_export.towers import HfClip  # noqa: E402
from clipeval_export.vocab import write_vocab_from_open_clip  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--checkpoint",
        type=Path,
        help="Hugging Face CLIP checkpoint folder (config.json, weights, preprocessor_config.json, tokenizer.json or vocab.json + merges.txt); "
        "with --open-clip, the OpenCLIP checkpoint file",
    )
    src.add_argument("--random-init", choices=["tiny", "vit-b-32", "open-clip"], help="seeded random weights (no download); open-clip: the --open-clip model's")
    ap.add_argument("--open-clip", metavar="MODEL", help="an OpenCLIP model: a name from open_clip.list_models(), or a model config .json file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--revision", default="", help="checkpoint revision to record in bundle.json")
    ap.add_argument("--out", type=Path, required=True, help="bundle folder to (re)create")
    ap.add_argument("--golden", action="store_true", help="also write golden reference outputs to OUT-golden/")
    ap.add_argument("--int8", action="store_true", help="also write dynamic int8 variants of both graphs (opt-in speed, measured accuracy cost)")
    args = ap.parse_args(argv)

    if args.open_clip and not (args.checkpoint or args.random_init == "open-clip"):
        ap.error("--open-clip MODEL takes --checkpoint FILE (OpenCLIP weights) or --random-init open-clip")
    if args.random_init == "open-clip" and not args.open_clip:
        ap.error("--random-init open-clip needs --open-clip MODEL")
    if args.open_clip and args.golden:
        ap.error("--golden writes HF transformers' reference outputs: not for --open-clip models")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    if args.open_clip:
        model = load_open_clip(args.open_clip, args.checkpoint, args.seed)
        preprocessing = model.preprocessing()
        tokenizer = model.tokenizer_entry()
        write_vocab_from_open_clip(args.out, context_length=tokenizer["contextLength"])
        ref = args.checkpoint.name if args.checkpoint else f"random-init:{model.name}"
        name, source = f"open-clip-{model.name}", {"checkpoint": ref, "model": model.name, "revision": args.revision or ("" if args.checkpoint else f"seed={args.seed}")}
    elif args.checkpoint:
        model = HfClip(load_checkpoint(args.checkpoint))
        preprocessing = read_preprocessing(args.checkpoint, model.image_size)
        eos = model.model.config.text_config.eos_token_id
        tokenizer = read_tokenizer(
            args.checkpoint, args.out, max_positions=model.max_positions, vocab_size=model.vocab_size, pooling_eos_id=None if eos == 2 else eos
        )
        name, source = args.checkpoint.name, {"checkpoint": str(args.checkpoint.name), "revision": args.revision}
    else:
        model = HfClip(random_clip(args.random_init, args.seed))
        preprocessing = clip_preprocessing(model.image_size)
        tokenizer = write_vocab_from_open_clip(args.out, context_length=model.max_positions)
        name, source = f"random-{args.random_init}", {"checkpoint": f"random-init:{args.random_init}", "revision": f"seed={args.seed}"}

    graphs = export_encoders(model, args.out, tokenizer["contextLength"])
    graphs["image"]["variants"] = export_uint8_image(model, args.out, preprocessing)
    if args.int8:
        quantize_int8(args.out, graphs)
        quantize_uint8_int8(args.out, graphs["image"]["variants"])
    coop = export_coop(model, args.out, tokenizer["contextLength"])
    bundle = write_bundle_json(model, args.out, name=name, source=source, graphs=graphs, coop=coop, tokenizer=tokenizer, preprocessing=preprocessing)
    check = self_check(model, args.out, tokenizer)
    coop_check = check_coop(model, args.out, specials=(tokenizer["bosTokenId"], tokenizer["eosTokenId"]))
    uint8_check = check_uint8_graphs(model, args.out, graphs, preprocessing)
    report = {"bundle": str(args.out), "files": bundle["files"], "onnxruntime_vs_torch": check, "coop_vs_torch": coop_check, "uint8_graphs": uint8_check}
    if args.int8:
        report["int8_vs_fp32"] = int8_check(args.out, graphs, model, tokenizer)
    print(json.dumps(report, indent=2))
    if max(check.values()) > 1e-4:
        print(f"error: ONNX Runtime disagrees with PyTorch: {check}", file=sys.stderr)
        return 1
    if coop_failures(coop_check):
        print(f"error: coop.onnx disagrees with PyTorch autograd: {'; '.join(coop_failures(coop_check))}", file=sys.stderr)
        return 1
    if uint8_failures(uint8_check):
        print(f"error: uint8 image graphs out of bounds: {'; '.join(uint8_failures(uint8_check))}", file=sys.stderr)
        return 1
    if args.golden:
        # Golden outputs live beside the bundle, not in it: they are test data, not model files.
        write_golden(model.model, args.out, args.out.parent / f"{args.out.name}-golden")
    return 0


if __name__ == "__main__":
    sys.exit(main())
