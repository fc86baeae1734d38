"""Question: how long does publishing a new version of a large site take next to existing
versions (and is anything of the old versions sent again), and how long does moving an alias take?

    python benchmarks/bench_versions.py [--pages 5000] [--runs 3] [--s3-endpoint URL --bucket B]

Setup: the shared corpus (no images) committed as sites/docs, tagged v1.0.0 and v1.1.0, both
published as versions 1.0 and 1.1 on a local target. Then, measured:
  new version 2.0 (one page edited, tag v2.0.0): its build (``sitedeploy build --ref v2.0.0``,
      mkdocs dominates), then the publish (``versions deploy``, the build reused): 1.0 and 1.1
      are checked (one record read each) and left alone, 2.0's line is written and switched,
      a root release links it; files sent for 1.0 and 1.1 (must be 0)
  alias move (``versions alias lts 1.0`` ↔ ``1.1``): whole CLI run, median of --runs
With --s3-endpoint (an S3 API such as moto_server), the same on an S3 target.
"""

from __future__ import annotations

import argparse
import json
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


def sd(ops: Path, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [str(SITEDEPLOY), "--config", str(ops / "deploy.toml"), *args],
        cwd=ops,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    if proc.returncode != 0:
        sys.exit(f"sitedeploy {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.stdout


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


def make_repo(root: Path, pages: int) -> Path:
    repo = root / "content"
    shutil.copytree(corpus(pages, 0), repo / "sites" / "docs", ignore=shutil.ignore_patterns(".complete"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "docs 1.0")
    git(repo, "tag", "v1.0.0")
    git(repo, "tag", "v1.1.0")  # same commit: the build is reused, the line is its own
    return repo


def write_config(ops: Path, repo: Path, target: str) -> None:
    ops.mkdir(parents=True, exist_ok=True)
    (ops / "deploy.toml").write_text(
        f'[source]\nrepo = "{repo}"\n\n[[sites]]\nname = "docs"\npath = "sites/docs"\nmount = "/"\n\n'
        f'[images]\nenabled = false\n\n[targets.docs]\n{target}versions = "tag:v*"\n'
        'aliases = { latest = "newest" }\n'
    )


def measure(ops: Path, repo: Path, runs: int) -> dict[str, float]:
    sd(ops, "versions", "deploy")
    page = next((repo / "sites" / "docs" / "docs").rglob("*.md"))
    page.write_text(page.read_text() + "\nChanged for 2.0.\n")
    git(repo, "commit", "-q", "-am", "docs 2.0")
    git(repo, "tag", "v2.0.0")
    build, _ = sd(ops, "build", "--ref", "v2.0.0")  # mkdocs (and the mirror's fetch), cached
    total, out = sd(ops, "--json", "versions", "deploy")  # the build is reused: publishing only
    results = {r["name"]: r for r in json.loads(out)}
    old_sent = sum(results[v].get("stats", {}).get("files_sent", 0) for v in ("1.0", "1.1"))
    assert results["1.0"]["outcome"] == results["1.1"]["outcome"] == "unchanged", results
    moves = [sd(ops, "versions", "alias", "lts", v)[0] for _ in range(runs) for v in ("1.0", "1.1")]
    return {
        "build_2.0_s (sitedeploy build)": build,
        "publish_2.0_s (versions deploy)": total,
        "files_sent_for_2.0": results["2.0"]["stats"]["files_sent"],
        "files_sent_for_1.0_and_1.1": old_sent,
        "alias_move_median_s": median(moves),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--s3-endpoint", help="an S3 API endpoint (e.g. moto_server) to measure S3 too")
    ap.add_argument("--bucket", default="bench-versions")
    args = ap.parse_args()
    targets = {"local": 'type = "local"\npath = "public"\n'}
    if args.s3_endpoint:
        import boto3  # benchmarks only: make the bucket on the test server

        os.environ.update(
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
        )
        boto3.client("s3", endpoint_url=args.s3_endpoint).create_bucket(Bucket=args.bucket)
        targets["s3"] = (
            f'type = "s3"\nbucket = "{args.bucket}"\nendpoint_url = "{args.s3_endpoint}"\n'
            'region = "us-east-1"\n'
        )
    with tempfile.TemporaryDirectory(prefix="bench-versions-") as tmp:
        for name, target in targets.items():
            root = Path(tmp) / name
            repo = make_repo(root, args.pages)
            write_config(root / "ops", repo, target)
            figures = measure(root / "ops", repo, args.runs)
            print(f"{name} ({args.pages} pages):")
            for key, value in figures.items():
                print(f"  {key:<34} {value:.2f}" if isinstance(value, float) else f"  {key:<34} {value}")


if __name__ == "__main__":
    main()
