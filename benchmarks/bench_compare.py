"""``sitedeploy compare`` against the two plain builds it stands for, run one after the other.

    python benchmarks/bench_compare.py [--pages 1000] [--engines mkdocs,zensical] [--runs 1]

On the project's corpus (``benchmarks/corpus.py``, no images) with the Material theme (the
switch the comparison is for: MkDocs + Material to Zensical; Zensical cannot render MkDocs'
own theme), committed as ``sites/docs``:

- ``plain``: ``mkdocs build`` then ``zensical build`` (each engine's own command line, in a
  fresh copy of the site, same ``SOURCE_DATE_EPOCH``), timed together;
- ``compare``: ``sitedeploy compare --engines A,B --commit main --json`` (both builds in the
  sandbox, reading both outputs, the diff, the HTML report; interpreter start included).

Prints both, the ratio, and the issue's target (compare <= 1.5x the two plain builds).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _corpus import corpus
from bench_pipeline import SITEDEPLOY, make_repo

TARGET = 1.5
BIN = Path(sys.executable).parent


def plain(site: Path, engines: list[str], work: Path) -> float:
    """Each engine's own build of a fresh copy of the site, one after the other; seconds."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "DISABLE_MKDOCS_2_WARNING": "true"}
    total = 0.0
    for engine in engines:
        copy = work / f"plain-{engine}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(site, copy)
        extra = ["-f", "mkdocs.yml"] if engine == "properdocs" else []
        start = time.perf_counter()
        subprocess.run(
            [str(BIN / engine), "build", *extra], cwd=copy, env=env, check=True, capture_output=True
        )
        total += time.perf_counter() - start
    return total


def material(corpus_dir: Path, site: Path) -> Path:
    shutil.copytree(corpus_dir, site, ignore=shutil.ignore_patterns(".complete"))
    config = site / "mkdocs.yml"
    config.write_text(config.read_text().replace("theme:\n  name: mkdocs\n", "theme:\n  name: material\n"))
    return site


def compare(repo: Path, engines: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [str(SITEDEPLOY), "--json", "compare", "--engines", ",".join(engines), "--commit", "main"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1) or '"sites"' not in done.stdout:
        raise SystemExit(f"compare failed: {done.stderr[-2000:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--engines", default="mkdocs,zensical")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    engines = args.engines.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        work = Path(tmp)
        site = material(corpus(args.pages, 0), work / "site")
        repo = make_repo(site, work)
        compare(repo, engines)  # the first run makes nothing it keeps but warms the caches of git
        plains, compares = [], []
        for _ in range(args.runs):
            plains.append(plain(site, engines, work))
            compares.append(compare(repo, engines))
    p, c = statistics.median(plains), statistics.median(compares)
    print(f"corpus: {args.pages} pages; engines {' + '.join(engines)}; {args.runs} run(s), medians")
    print(f"plain builds, one after the other: {p:8.2f} s")
    print(f"sitedeploy compare:                {c:8.2f} s")
    verdict = "ok" if c / p <= TARGET else "over"
    print(f"ratio: {c / p:.2f}x (target <= {TARGET}x: {verdict})")


if __name__ == "__main__":
    main()
