"""Incremental MkDocs builds against plain ``mkdocs build`` on the benchmark corpus.

    python benchmarks/bench_incremental.py [--pages 5000] [--runs 3] [--steps new,config] \\
        [--generator benchmarks/corpus.py] [--workdir /tmp/sitedeploy-bench-incremental]

In one run, on a copy of the corpus (no images: they are copied the same way by both):
- ``plain``: ``python -m mkdocs build`` (timed after every edit below, on the same tree and
  ``SOURCE_DATE_EPOCH``, and its output compared byte for byte with the builder's);
- ``full``: the builder with ``--full``;
- ``text edit``: one page's paragraph changed (the common case);
- ``title edit``: one page's H1 changed (not a navigation page);
- ``new page``: a page added (incremental: its own Markdown and that of pages whose links
  looked up its path are rendered; every template, as the file set and navigation changed);
- ``config edit``: ``copyright`` changed in ``mkdocs.yml`` (incremental: no page render reads
  it, every template shows it);
- ``deploy, text edit``: the whole ``sitedeploy deploy`` of a one-page commit to a local target
  (mirror, build, manifest, publish; interpreter start included), on the same corpus committed
  to a git repo and deployed once before, against plain ``mkdocs build`` of that commit.

Each edit is a new "commit": ``SOURCE_DATE_EPOCH`` moves, as sitedeploy's build stage sets it
to the last commit's time, so a page whose template uses the build date (the home page, in the
``mkdocs`` theme) is rendered again besides the edited one.
Every build's line says the path it took (``incremental: …`` or ``full: <reason>``, as the
builder's last line says it) and the cache's size; the table ends with median seconds and the
ratios to plain ``mkdocs build``, with the targets of the issue (text edit: build <= 0.30x,
whole deploy <= 0.40x; a full build, a new page and a ``mkdocs.yml`` edit, which used to fall
back to a full build: <= 1.10x).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench_pipeline import GIT_ENV, SITEDEPLOY, git, make_repo  # the same repo and deploy.toml

DEFAULT_GENERATOR = Path(__file__).resolve().parent / "corpus.py"  # the project's own generator
BUILDER = "sitedeploy.builders.mkdocs_incremental"
TARGETS = {  # step: the target, as a ratio to plain `mkdocs build` (paired)
    "text edit": 0.30,
    "deploy, text edit": 0.40,
    "full": 1.10,
    "new page": 1.10,
    "config edit": 1.10,
}


def main() -> None:
    args = _parse()
    base = _corpus(args.generator, args.workdir, args.pages)
    tree = args.workdir / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(base, tree)
    bench = Bench(tree, args.workdir)
    bench.run("full (no cache)", [], compare=False, full=False)  # fills the cache
    steps = args.steps
    for _ in range(args.runs if "full" in steps else 0):
        bench.run("full", [], compare=True, full=True)
    for i in range(args.runs if "text" in steps else 0):
        bench.run("text edit", [_text_edit(tree, i)], compare=True)
    for i in range(args.runs if "title" in steps else 0):
        bench.run("title edit", [_title_edit(tree, i)], compare=True)
    for i in range(args.runs if "new" in steps else 0):
        bench.run("new page", [_new_page(tree, i)], compare=True)
    for i in range(args.runs if "config" in steps else 0):
        bench.run("config edit", [_config_edit(tree, i)], compare=True)
    if "deploy" in steps:
        bench.deploys(base, args.runs)
    bench.report()


STEPS = ("full", "text", "title", "new", "config", "deploy")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3, help="runs per edit kind (median)")
    parser.add_argument(
        "--steps",
        type=lambda text: [s for s in text.split(",") if s],
        default=list(STEPS),
        help=f"which steps to run, comma-separated (default: all of {','.join(STEPS)})",
    )
    parser.add_argument("--generator", type=Path, default=DEFAULT_GENERATOR)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sitedeploy-bench-incremental"))
    return parser.parse_args()


def _corpus(generator: Path, workdir: Path, pages: int) -> Path:
    out = workdir / f"corpus-p{pages}"
    if not (out / ".complete").exists():
        if not generator.is_file():
            sys.exit(f"corpus generator not found at {generator}; pass --generator PATH/corpus.py")
        shutil.rmtree(out, ignore_errors=True)
        cmd = [
            sys.executable,
            str(generator),
            str(out),
            "--pages",
            str(pages),
            "--images",
            "0",
            "--seed",
            "1",
        ]
        subprocess.run(cmd, check=True)
        (out / ".complete").touch()
    return out


@dataclass(frozen=True)
class Run:
    name: str
    seconds: float
    cpu: float
    paired: bool  # compared with the plain builds around it


class Bench:
    def __init__(self, tree: Path, workdir: Path) -> None:
        self.tree, self.workdir = tree, workdir
        self.cache = workdir / "cache"
        shutil.rmtree(self.cache, ignore_errors=True)
        self.epoch = 1_700_000_000
        self.times: dict[str, list[float]] = {}
        self.runs: list[Run] = []  # every timed build in order, plain ones included
        self.last_cpu = 0.0
        self.paths: dict[str, str] = {}

    def run(self, name: str, edits: list[str], *, compare: bool, full: bool = False) -> None:
        self.epoch += 60  # every edit is a new commit
        out = self.workdir / "out-builder"
        cmd = [sys.executable, "-m", BUILDER, "-f", "mkdocs.yml", "-d", str(out), "--cache", str(self.cache)]
        seconds, stdout = self._timed(cmd + (["--full"] if full else []))
        cpu = self.last_cpu
        line = next(x for x in stdout.splitlines() if x.startswith("sitedeploy-build: "))
        self._record(name, seconds, cpu, compare)
        self.paths[name] = line.removeprefix("sitedeploy-build: ")
        cache = _cache_size(self.cache)
        path = f"path: {self.paths[name]}"
        print(f"{name:<16} {seconds:7.2f} s  {cache}  {path}  {' '.join(edits)}", flush=True)
        if compare:
            self._plain_and_compare(out)

    def _record(self, name: str, seconds: float, cpu: float, paired: bool) -> None:
        self.times.setdefault(name, []).append(seconds)
        self.runs.append(Run(name, seconds, cpu, paired))

    def _plain_and_compare(self, built: Path) -> float:
        out = self.workdir / "out-plain"
        cmd = [sys.executable, "-m", "mkdocs", "build", "-q", "-f", "mkdocs.yml", "-d", str(out)]
        seconds, _ = self._timed(cmd)
        self._record("plain", seconds, self.last_cpu, False)
        differences = _differences(out, built)
        status = "identical" if not differences else f"DIFFERENT: {differences[:5]}"
        print(f"{'plain':<16} {seconds:7.2f} s  output {status}", flush=True)
        if differences:
            sys.exit("incremental output differs from mkdocs build")
        return seconds

    def _timed(self, cmd: list[str], cwd: Path | None = None) -> tuple[float, str]:
        # Each tool empties its own output folder first, as `mkdocs build` does for its users:
        # deleting the last build is part of building (and of what a build may leave to free:
        # the incremental cache holds pages that the output folder shares). The file system
        # work that writing and deleting 5,000 folders leaves behind (journal, discards) is
        # flushed before each timed build, not billed to the next one.
        os.sync()
        env = {"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": str(self.epoch), "PYTHONHASHSEED": "0"}
        start, cpu = time.perf_counter(), _children_cpu()
        proc = subprocess.run(cmd, cwd=cwd or self.tree, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        self.last_cpu = _children_cpu() - cpu
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        return seconds, proc.stdout

    def deploys(self, corpus: Path, runs: int) -> None:
        """The whole ``sitedeploy deploy`` of one-page commits, after a first (cold) deploy."""
        shutil.rmtree(self.workdir / "deploy", ignore_errors=True)
        repo = make_repo(corpus, self.workdir / "deploy", keep_releases=3)
        self._deploy("deploy, cold", repo, "(first deploy of the corpus)", compare=False)
        for i in range(runs):
            edit = _text_edit(repo / "sites" / "docs", 10 + i)
            git(repo, "commit", "-q", "-am", f"edit one page ({i})")
            self._deploy("deploy, text edit", repo, edit, compare=True)

    def _deploy(self, name: str, repo: Path, edit: str, *, compare: bool) -> None:
        cmd = [str(SITEDEPLOY), "deploy"]
        env = {**os.environ, **GIT_ENV, "PYTHONHASHSEED": "0"}
        os.sync()
        start, cpu = time.perf_counter(), _children_cpu()
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=False)
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
        if proc.returncode != 0:
            sys.exit(f"sitedeploy deploy failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        said = proc.stdout + proc.stderr
        built = [line for line in said.splitlines() if "built site 'docs' (" in line]
        self.paths[name] = built[-1].split("(", 1)[1].rstrip(")") if built else "?"
        self._record(name, seconds, cpu, compare)
        print(f"{name:<16} {seconds:7.2f} s  path: {self.paths[name]}  {edit}", flush=True)
        if compare:
            epoch = subprocess.run(
                ["git", "log", "-1", "--format=%ct"], cwd=repo, capture_output=True, text=True, check=True
            ).stdout.strip()
            plain_cmd = [sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(self.workdir / "out-plain")]
            site = repo / "sites" / "docs"
            saved, self.epoch = self.epoch, int(epoch)
            plain, _ = self._timed(plain_cmd, cwd=site)
            self.epoch = saved
            self._record("plain", plain, self.last_cpu, False)
            print(f"{'plain':<16} {plain:7.2f} s", flush=True)

    def paired(self) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        """Each compared run over the mean of the plain builds just before and just after it
        (wall and CPU seconds). This machine's speed drifts by a fifth over minutes: a ratio
        to the plain builds on both sides cancels a steady drift, which a ratio to the one
        after, or of medians taken minutes apart, does not."""
        wall: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        for i, run in enumerate(self.runs):
            if not run.paired:
                continue
            before = [r for r in self.runs[i - 1 : i] if r.name == "plain"]
            around = before + [r for r in self.runs[i + 1 : i + 2] if r.name == "plain"]
            wall.setdefault(run.name, []).append(run.seconds / statistics.mean(r.seconds for r in around))
            cpu.setdefault(run.name, []).append(run.cpu / statistics.mean(r.cpu for r in around))
        return wall, cpu

    def report(self) -> None:
        plain = statistics.median(self.times["plain"])
        ratios, cpu_ratios = self.paired()
        head = f"{'step':<18} {'median s':>9} {'x plain':>8} {'x paired':>9} {'x cpu':>6}  runs  target"
        print(f"\n{head}   path")
        for name, values in self.times.items():
            median = statistics.median(values)
            paired = statistics.median(ratios[name]) if name in ratios else float("nan")
            cpu = statistics.median(cpu_ratios[name]) if name in cpu_ratios else float("nan")
            print(
                f"{name:<18} {median:9.2f} {median / plain:8.2f} {paired:9.2f} {cpu:6.2f}  {len(values):4}"
                f"  {_verdict(name, paired)}  {self.paths.get(name, '')}"
            )
        print("x plain: median / median of all plain builds; x paired: median of each run / the mean")
        print("of the plain builds of the same tree just before and after it; x cpu: the same with")
        print("user+system CPU seconds")


def _verdict(step: str, paired: float) -> str:
    target = TARGETS.get(step)
    if target is None:
        return f"{'':<14}"
    return f"<= {target:.2f}x {'met ' if paired <= target else 'MISS'}"


def _cache_size(folder: Path) -> str:
    """The cache's size on disk; its stored pages are hard links that the output shares."""
    own = shared = 0
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            if st.st_nlink > 1:
                shared += st.st_size
            else:
                own += st.st_size
    return f"cache {own / 1e6:.0f} MB + {shared / 1e6:.0f} MB shared with the output"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _differences(a: Path, b: Path) -> list[str]:
    found: list[str] = []
    _walk(filecmp.dircmp(a, b), "", found)
    return found


def _walk(cmp: filecmp.dircmp[str], prefix: str, found: list[str]) -> None:
    found += [f"{prefix}{n} (only one side)" for n in cmp.left_only + cmp.right_only]
    _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
    found += [prefix + n for n in mismatch + errors]
    for name, sub in cmp.subdirs.items():
        _walk(sub, f"{prefix}{name}/", found)


def _pages(tree: Path) -> list[Path]:
    return sorted(p for p in (tree / "docs").rglob("*.md") if p.name != "index.md")


def _text_edit(tree: Path, i: int) -> str:
    pages = _pages(tree)
    page = pages[(100 + i) % len(pages)]
    page.write_text(page.read_text() + f"\nAn edited paragraph, revision {i}.\n")
    return f"(+1 paragraph in {page.relative_to(tree)})"


def _title_edit(tree: Path, i: int) -> str:
    pages = _pages(tree)
    page = pages[(200 + i) % len(pages)]
    lines = page.read_text().split("\n")
    lines[0] = f"# Retitled page {i}"
    page.write_text("\n".join(lines))
    return f"(H1 of {page.relative_to(tree)})"


def _new_page(tree: Path, i: int) -> str:
    page = tree / "docs" / "section-00" / f"brand-new-page-{i}.md"
    page.write_text("# A new page\n\nSome text.\n")
    return f"({page.relative_to(tree)})"


def _config_edit(tree: Path, i: int) -> str:
    config = tree / "mkdocs.yml"
    lines = [x for x in config.read_text().splitlines() if not x.startswith("copyright:")]
    config.write_text("\n".join([*lines, f"copyright: Revision {i}", ""]))
    return f"(copyright: Revision {i} in mkdocs.yml)"


if __name__ == "__main__":
    main()
