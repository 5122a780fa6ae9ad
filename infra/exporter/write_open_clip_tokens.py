#!/usr/bin/env python3
"""Writes test/fixtures/open-clip-tokens.json: open_clip.tokenize's ids (up to the end token) on the
tokenizer corpus, the goldens of clipeval's open-clip tokenizer flavour (test/unit/tokenizer-open-clip.test.ts).

  .venv/bin/python infra/exporter/write_open_clip_tokens.py
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import html  # noqa: E402

import ftfy  # noqa: E402
import open_clip  # noqa: E402
from open_clip.tokenizer import _clean_lower, whitespace_clean  # noqa: E402

from clipeval_export.corpus import corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

texts = corpus()
ids = open_clip.tokenize(texts)
eot = open_clip.get_tokenizer("ViT-B-32").eot_token_id


def without_encoding_fix(text: str) -> str:
    """_clean_lower with ftfy's fix_encoding (mojibake repair) off: the one step clipeval does not port."""
    return whitespace_clean(html.unescape(html.unescape(ftfy.fix_text(text, fix_encoding=False))).strip()).lower()


# "mojibake": ftfy's fix_encoding changes this text, so clipeval's open-clip flavour may differ on it.
rows = [
    {"text": t, "ids": row[: int((row == eot).nonzero()[0]) + 1].tolist(), "mojibake": _clean_lower(t) != without_encoding_fix(t)}
    for t, row in zip(texts, ids)
]
(ROOT / "test" / "fixtures" / "open-clip-tokens.json").write_text(json.dumps(rows, ensure_ascii=False))
print(f"{len(rows)} rows, open_clip {open_clip.__version__}")
