#!/usr/bin/env python3
"""Writes test/fixtures/open-clip-tokens.json: open_clip.tokenize's ids (up to the end token) on the
tokenizer corpus, the goldens of clipeval's open-clip tokenizer flavour (test/unit/tokenizer-open-clip.test.ts).

  .venv/bin/python infra/exporter/write_open_clip_tokens.py
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import open_clip  # noqa: E402

from clipeval_export.corpus import corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

texts = corpus()
ids = open_clip.tokenize(texts)
eot = open_clip.get_tokenizer("ViT-B-32").eot_token_id
rows = [{"text": t, "ids": row[: int((row == eot).nonzero()[0]) + 1].tolist()} for t, row in zip(texts, ids)]
(ROOT / "test" / "fixtures" / "open-clip-tokens.json").write_text(json.dumps(rows, ensure_ascii=False))
print(f"{len(rows)} rows, open_clip {open_clip.__version__}")
