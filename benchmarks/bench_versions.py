"""Question: how long does publishing a new version of a large site take next to existing
versions (and is anything of the old versions sent again), and how long does moving an alias take?

    python benchmarks/bench_versions.py [--pages 5000] [--runs 3] [--targets local,ssh,s3]

Setup: the shared corpus (no images) committed as sites/docs, tagged v1.0.0 and v1.1.0, both
published as versions 1.0 and 1.1, on each target type: a local folder, one real OpenSSH
server on 127.0.0.1 (the test fixture's, tests/fixtures/sshd.py) and an S3 bucket on a moto
server (a separate process). Then, measured:
  new version 2.0 (one page edited, tag v2.0.0): its build (``sitedeploy build --ref v2.0.0``,
      mkdocs dominates), then the publish (``versions deploy``, the build reused): 1.0 and 1.1
      are checked (one record read each) and left alone, 2.0's line is written and switched,
      a root release links it; files sent for 1.0 and 1.1 (must be 0)
  alias move (``versions alias lts 1.0`` ↔ ``1.1``): whole CLI run, median of --runs
The peer is mike, on the same repository: ``mike deploy 2.0`` (it builds with mkdocs and
commits the version to the gh-pages branch; publishing that branch is a further step) and
``mike alias -u 1.0 lts`` ↔ ``1.1``; the ratio is sitedeploy (build + publish) / mike.
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
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _corpus import corpus, median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SITEDEPLOY = Path(sys.executable).with_name("sitedeploy")
BIN_PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
"""mike runs ``mkdocs`` from PATH: the one installed beside this Python."""
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


def mike(repo: Path, *args: str) -> float:
    config = str(repo / "sites" / "docs" / "mkdocs.yml")
    start = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("mike")), *args[:1], "--config-file", config, *args[1:]],
        cwd=repo, capture_output=True, text=True, env={**os.environ, **GIT_ENV, "PATH": BIN_PATH},
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"mike {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - start


def measure_mike(root: Path, pages: int, runs: int) -> dict[str, float]:
    """The same steps with mike: two versions deployed, then 2.0 and the alias moves."""
    repo = make_repo(root, pages)
    mike(repo, "deploy", "1.0")
    mike(repo, "deploy", "1.1")
    page = next((repo / "sites" / "docs" / "docs").rglob("*.md"))
    page.write_text(page.read_text() + "\nChanged for 2.0.\n")
    git(repo, "commit", "-q", "-am", "docs 2.0")
    new = mike(repo, "deploy", "2.0")
    moves = [mike(repo, "alias", "-u", v, "lts") for _ in range(runs) for v in ("1.0", "1.1")]
    return {"deploy_2.0_s (mike deploy)": new, "alias_move_median_s": median(moves)}


def target_tables(names: list[str], root: Path, stack: ExitStack) -> dict[str, str]:
    """``[targets.docs]`` bodies for the target types asked for (their servers started)."""
    tables: dict[str, str] = {}
    if "local" in names:
        tables["local"] = 'type = "local"\npath = "public"\n'
    if "ssh" in names:
        from tests.fixtures.sshd import SSHEnv, keygen

        env = SSHEnv(root / "sshd", keygen(root / "id_ed25519"))
        env.root.mkdir()
        env.ssh_config.write_text("")
        server = env.server()
        stack.callback(server.stop)
        table = env.target_table(Path("docs"), [server])
        tables["ssh"] = "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
    if "s3" in names:
        import boto3  # benchmarks only: make the bucket on the test server
        from bench_s3 import Server

        server_s3 = Server(root / "moto.log")
        stack.callback(server_s3.stop)
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
        )
        boto3.client("s3", endpoint_url=server_s3.url).create_bucket(Bucket="bench-versions")
        tables["s3"] = (
            f'type = "s3"\nbucket = "bench-versions"\nendpoint_url = "{server_s3.url}"\n'
            'region = "us-east-1"\n'
        )
    return tables


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--targets", default="local,ssh,s3", help="comma-separated: local, ssh, s3")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-versions-") as tmp, ExitStack() as stack:
        peer = measure_mike(Path(tmp) / "mike", args.pages, args.runs)
        print(f"mike ({args.pages} pages):")
        for key, value in peer.items():
            print(f"  {key:<34} {value:.2f}")
        tables = target_tables(args.targets.split(","), Path(tmp), stack)
        for name, target in tables.items():
            root = Path(tmp) / name
            repo = make_repo(root, args.pages)
            write_config(root / "ops", repo, target)
            figures = measure(root / "ops", repo, args.runs)
            print(f"{name} ({args.pages} pages):")
            for key, value in figures.items():
                print(f"  {key:<34} {value:.2f}" if isinstance(value, float) else f"  {key:<34} {value}")
            mine = figures["build_2.0_s (sitedeploy build)"] + figures["publish_2.0_s (versions deploy)"]
            theirs = peer["deploy_2.0_s (mike deploy)"]
            ratio = f"{mine / theirs:.2f}x ({mine:.2f} s / {theirs:.2f} s)"
            print(f"  {'new version: sitedeploy / mike':<34} {ratio}")
            move, peer_move = figures["alias_move_median_s"], peer["alias_move_median_s"]
            ratio = f"{move / peer_move:.3f}x ({move:.2f} s / {peer_move:.2f} s)"
            print(f"  {'alias move: sitedeploy / mike':<34} {ratio}")


if __name__ == "__main__":
    main()
