"""Summarises bench/gpu/check.sh's results.jsonl and nvidia-smi samples as one markdown table:
images/s (median, min-max) per side, and the GPU's mean busy share (utilization.gpu) per phase.
Rows with an `error` (a provider that could not load, e.g. a missing CUDA library) are listed as
FAILED with their reason, never as figures."""

import json
import os
import sys
from pathlib import Path

out = Path(sys.argv[1])


def busy(phase: str) -> str:
    f = out / f"util-{phase}.csv"
    if not f.exists() or f.stat().st_size == 0:
        return "n/a (no nvidia-smi)"
    vals = [float(line.split(",")[0]) for line in f.read_text().splitlines() if line.strip()]
    return f"{sum(vals) / len(vals):.0f}% mean over the phase ({len(vals)} samples)"


WHAT = {"inference": "image tower, uint8 input, session thread", "bare": "image tower, uint8 input, bare ORT session"}

rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.startswith("{")]
print(f"GPU check, {os.uname().nodename}\n")
print("| side | what | precision | batch | img/s median (min-max) | GPU busy (phase) | notes |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    if "error" in r:
        reason = r["error"].replace("|", "\\|").replace("\n", " ")
        print(f"| clipeval {r['provider']} | {r['phase']} | {r['precision']} | {r['batch']} | **FAILED** | | {reason} |")
        continue
    spread = f"{r['median']:,.0f} ({r['min']:,.0f}-{r['max']:,.0f})"
    if r.get("side") == "pytorch":
        note = f"min cosine vs fp32 {r['min_cosine_vs_fp32']:.5f}" if "min_cosine_vs_fp32" in r else ""
        print(f"| PyTorch {r['device']} | image tower, SDPA | {r['precision']} | {r['batch']} | {spread} | {busy('pytorch')} (both precisions) | {note} |")
        continue
    phase = f"clipeval-{r['provider']}-{r['phase']}-{r['precision']}"
    if r["phase"] in WHAT:
        print(f"| clipeval {r['provider']} | {WHAT[r['phase']]} | {r['precision']} | {r['batch']} | {spread} | {busy(phase)} | |")
    else:
        print(
            f"| clipeval {r['provider']} | decode ({r['mode']}, {r['cores']} cores) + encode | {r['precision']} | {r['batch']} | {spread} "
            f"| {busy(phase)} | longest event-loop stall {r['stallMs']:.0f} ms |"
        )
