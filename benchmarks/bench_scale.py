"""Question: how does sitedeploy scale to a monorepo of many sites, and what do parallel
jobs and the shared build cache (issue 27) buy?

    python benchmarks/bench_scale.py [--sites 300] [--pages 20] [--jobs 2]

A generated monorepo: ``--sites`` copies of the benchmark corpus (benchmarks/corpus.py,
``--pages`` pages, no images), each under sites/<name>/ with its own site_name. In one run:

  1. cold deploy, jobs=1 vs jobs=N        peer: `mkdocs build` of every site, one after another
  2. one commit touching 3 sites          peer: `mkdocs build` of those 3 + rsync of the tree
  3. a second agent, empty state, shared  peer: sitedeploy's own publish-only run (a deploy
     cache filled by `build --push`          of the same commit by CI's machine, whose builds
                                             are all in its local cache, to an empty target);
                                             and, for scale, rsync of the built tree
  4. cold deploy writing the shared cache vs the cold deploy without one (its overhead)

Every sitedeploy figure is a whole CLI run (interpreter start included); the peer figures
are measured in the same run on the same files.
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
from _corpus import corpus

SITEDEPLOY = Path(sys.executable).with_name("sitedeploy")
GIT_ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x"}
GIT_ENV |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}


def run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    return time.perf_counter() - start


def git(repo: Path, *args: str) -> None:
    run(["git", *args], repo)


def monorepo(src: Path, work: Path, sites: int) -> tuple[Path, list[str]]:
    repo, names = work / "content", [f"site{n:03d}" for n in range(sites)]
    for name in names:
        shutil.copytree(src / "docs", repo / "sites" / name / "docs")
        yml = (src / "mkdocs.yml").read_text().replace("site_name:", f"site_name: {name} -", 1)
        (repo / "sites" / name / "mkdocs.yml").write_text(yml)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "monorepo")
    return repo, names


def machine(work: Path, name: str, repo: Path, build: str) -> Path:
    folder = work / name
    folder.mkdir()
    (folder / "deploy.toml").write_text(
        f'[source]\nrepo = "{repo}"\n\n[images]\nenabled = false\n\n'
        f'[targets.local]\ntype = "local"\npath = "public"\nmax_delete = 1000000\n\n[build]\n{build}'
    )
    return folder


def deploy(folder: Path) -> float:
    return run([str(SITEDEPLOY), "-q", "--config", str(folder / "deploy.toml"), "deploy"], folder)


def peer_build(repo: Path, names: list[str], out: Path) -> float:
    return sum(
        run([sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(out / name)], repo / "sites" / name)
        for name in names
    )


def keys(work: Path) -> tuple[Path, Path]:
    key = work / "ci-key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], work)
    allowed = work / "allowed_signers"
    allowed.write_text(f"ci {key.with_suffix('.pub').read_text().strip()}\n")
    return key, allowed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=300)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    repo, names = monorepo(corpus(args.pages, 0), work, args.sites)
    key, allowed = keys(work)
    shared = f'cache = "{work / "shared"}"\ncache_allowed_signers = "{allowed}"\n'
    rows: list[tuple[str, float, float]] = []

    peer_all = peer_build(repo, names, work / "peer")
    one = deploy(machine(work, "jobs1", repo, "jobs = 1\n"))
    many_dir = machine(work, "jobsN", repo, f"jobs = {args.jobs}\n")
    many = deploy(many_dir)
    rows += [
        ("1. cold deploy, jobs=1", peer_all, one),
        (f"1. cold deploy, jobs={args.jobs}", peer_all, many),
    ]

    touched = names[:3]
    for name in touched:
        page = next((repo / "sites" / name / "docs").rglob("*.md"))
        page.write_text(page.read_text() + "\n\nEdited.\n")
    git(repo, "commit", "-q", "-am", "touch 3 sites")
    peer_three = peer_build(repo, touched, work / "peer")
    peer_three += run(["rsync", "-a", "--delete", f"{work / 'peer'}/", f"{work / 'peer-live'}/"], work)
    rows.append(("2. commit touching 3 sites", peer_three, deploy(many_dir)))

    writer = machine(work, "ci", repo, f'jobs = {args.jobs}\n{shared}cache_signing_key = "{key}"\n')
    pushed = run([str(SITEDEPLOY), "-q", "--config", str(writer / "deploy.toml"), "build", "--push"], writer)
    rsync = run(["rsync", "-a", f"{work / 'peer'}/", f"{work / 'peer-publish'}/"], work)
    publish_only = deploy(writer)  # every site in its local cache: nothing built or fetched
    second = deploy(machine(work, "agent2", repo, f'{shared}mode = "cache-only"\n'))
    rows.append(("3. second agent, empty state + cache", publish_only, second))
    rows.append(("3. the same, against rsync", rsync, second))

    fresh = machine(work, "writer2", repo, f"jobs = {args.jobs}\n{shared.replace('shared', 'shared2')}")
    with_key = (fresh / "deploy.toml").read_text() + f'cache_signing_key = "{key}"\n'
    (fresh / "deploy.toml").write_text(with_key)
    cold_shared = deploy(fresh)
    rows.append(("4. cold deploy writing the cache", many, cold_shared))

    print(f"monorepo: {args.sites} sites x {args.pages} pages, no images; {os.cpu_count()} CPUs")
    print(f"(CI's cold `build --push` of the whole commit, every entry signed: {pushed:.2f} s)")
    print(f"{'step':<40}{'peer s':>9}{'sitedeploy s':>14}{'ratio':>8}{'per site s':>12}")
    for name, peer, ours in rows:
        print(f"{name:<40}{peer:>9.2f}{ours:>14.2f}{ours / peer:>7.2f}x{ours / args.sites:>12.3f}")
    print("peers: 1. `mkdocs build` of every site in turn; 2. of the 3 touched + rsync; 3. a publish-")
    print("only deploy (every build in the local cache, empty target), then rsync of a built tree;")
    print("4. the cold deploy without a shared cache (jobs as in 1.)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
