"""Question: what does sitedeploy add on top of a plain `mkdocs build`, and how fast are the
no-op deploy and the rollback?

    python benchmarks/bench_pipeline.py [--pages 5000] [--images 300] [--runs 3]

In one run, on the benchmark corpus (benchmarks/corpus.py) committed to a fresh git repo as sites/docs:
  plain `mkdocs build`                      (the peer: what users run today)
  sitedeploy cold deploy                    (mirror, build, images, manifest, publish)
                                            target: <= 2.5x plain mkdocs build
  sitedeploy deploy after a one-page edit   target: <= 1.2x plain mkdocs build
  sitedeploy deploy of the same commit      target: < 1 s
  sitedeploy rollback of a retained release target: < 1 s
Every sitedeploy figure is a whole CLI run (interpreter start included). Medians of --runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _corpus import corpus, median

SITEDEPLOY = Path(sys.executable).with_name("sitedeploy")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "b@x",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "b@x",
}


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd,
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **GIT_ENV},
    )
    return time.perf_counter() - start


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def make_repo(src: Path, work: Path, keep_releases: int = 5) -> Path:
    """The corpus committed as ``sites/docs`` of a fresh repo deploying to ``../public``."""
    repo = work / "content"
    shutil.copytree(src, repo / "sites" / "docs", ignore=shutil.ignore_patterns(".complete"))
    (repo / "deploy.toml").write_text(
        '[source]\nrepo = "."\n\n[[sites]]\nname = "docs"\npath = "sites/docs"\nmount = "/"\n\n'
        f'[targets.local]\ntype = "local"\npath = "../public"\nkeep_releases = {keep_releases}\n'
        "max_delete = 100000\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "corpus")
    return repo


def edit_one_page(repo: Path, n: int) -> None:
    page = next((repo / "sites/docs/docs").rglob("*.md"))
    page.write_text(page.read_text() + f"\n\nEdited for benchmark run {n}.\n")
    git(repo, "commit", "-q", "-am", f"edit one page ({n})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    src = corpus(args.pages, args.images)
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    repo = make_repo(src, work)
    deploy = [str(SITEDEPLOY), "-q", "deploy"]

    plain = [
        timed(
            [sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(work / f"plain{i}")],
            repo / "sites/docs",
        )
        for i in range(args.runs)
    ]
    cold = timed(deploy, repo)
    one_page = []
    for i in range(args.runs):
        edit_one_page(repo, i)
        one_page.append(timed(deploy, repo))
    same = [timed(deploy, repo) for _ in range(max(5, args.runs))]
    rollback = []
    for _ in range(max(5, args.runs)):
        rollback.append(timed([str(SITEDEPLOY), "-q", "rollback"], repo))
        subprocess.run([str(SITEDEPLOY), "-q", "resume"], cwd=repo, check=True)
        # back to the tip for the next round: the rollback marked it bad, so it needs --force
        subprocess.run([*deploy, "--force"], cwd=repo, check=True)

    base = median(plain)
    rows = [
        ("plain mkdocs build (peer)", base, ""),
        ("sitedeploy cold deploy", cold, "target <= 2.50x (default image settings)"),
        ("deploy after one-page edit", median(one_page), "target <= 1.20x"),
        ("deploy of the same commit", median(same), "target < 1 s"),
        ("rollback (retained release)", median(rollback), "target < 1 s"),
    ]
    print(f"corpus: {args.pages} pages, {args.images} images; medians of {args.runs} (5 for fast steps)")
    print(f"{'step':<32}{'seconds':>10}{'x mkdocs build':>16}  note")
    for name, secs, note in rows:
        print(f"{name:<32}{secs:>10.2f}{secs / base:>15.2f}x  {note}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
