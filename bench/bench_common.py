"""Shared by the Python sides of the benches: the same repeat protocol as bench/stats.ts (one
untimed warm-up, then `repeats` timed calls) and the one JSON line a child prints last."""

import json
import sys
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def args() -> dict:
    """The child's one argument: the JSON the TypeScript orchestrator passed."""
    return json.loads(sys.argv[1])


def timed(fn: Callable[[], T], repeats: int) -> list[tuple[float, T]]:
    """Warm-up call, then `repeats` timed calls: (seconds, what fn returned) per timed call."""
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        r = fn()
        out.append((time.perf_counter() - t, r))
    return out


def repeat(fn: Callable[[], int], repeats: int) -> list[float]:
    """`timed`, where `fn` returns how many items it processed: items/s per timed call."""
    return [n / seconds for seconds, n in timed(fn, repeats)]


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)
