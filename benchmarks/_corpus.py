"""The benchmark corpus (``benchmarks/corpus.py``), generated once per size and cached.

The cache folder is ``$SITEDEPLOY_BENCH_DIR`` or ``/tmp/sitedeploy-bench``. Several benchmarks
may ask at once: a file lock makes one generate while the others wait.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus as generator

CACHE = Path(os.environ.get("SITEDEPLOY_BENCH_DIR", "/tmp/sitedeploy-bench"))
SIZES = generator.SIZES


def corpus(pages: int, images: int, seed: int = 1) -> Path:
    """A folder with mkdocs.yml and docs/ for these sizes (made on first use)."""
    out = CACHE / f"corpus-p{pages}-i{images}-s{seed}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / ".complete").exists():
            shutil.rmtree(out, ignore_errors=True)
            print(f"generating the corpus: {pages} pages, {images} images, seed {seed}", file=sys.stderr)
            print(generator.generate(out, pages, images, seed), file=sys.stderr, flush=True)
            (out / ".complete").touch()
    return out


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
