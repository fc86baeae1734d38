"""The shared benchmark corpus (../shared/bench/make_corpus.py), generated once and cached.

Several benchmarks may ask at once: a file lock makes one generate while the others wait.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("SITEDEPLOY_BENCH_DIR", "/tmp/sitedeploy-bench"))
GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "make_corpus.py"


def corpus(pages: int, images: int, seed: int = 1) -> Path:
    """A folder with mkdocs.yml and docs/ for these sizes (made on first use)."""
    out = CACHE / f"corpus-p{pages}-i{images}-s{seed}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / ".complete").exists():
            shutil.rmtree(out, ignore_errors=True)
            if not GENERATOR.exists():
                sys.exit(f"corpus generator not found at {GENERATOR}; run from a checkout beside shared/")
            cmd = [
                sys.executable,
                str(GENERATOR),
                str(out),
                "--pages",
                str(pages),
                "--images",
                str(images),
                "--seed",
                str(seed),
            ]
            print(f"generating corpus: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
            subprocess.run(cmd, check=True)
            (out / ".complete").touch()
    return out


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
