"""Publishing a docs site to S3: ``aws s3 sync`` against sitedeploy's S3 target.

    .venv/bin/python benchmarks/bench_s3.py [--pages 5000 --images 300] [--repeat 3] [--aws PATH]

One moto server (a separate process, so neither client shares its CPU with it) and the
corpus (benchmarks/corpus.py), built with MkDocs twice: as generated, and after a
one-page edit. The builds are timed apart. Then, each into its own bucket:

    aws s3 sync     full upload, then the rebuilt site (it compares size and mtime)
    sitedeploy      full deploy, then the one-page change, on an unversioned bucket (replaced
                    bodies are copied to .sitedeploy/objects/ for rollback)
    sitedeploy+ver  the same on a bucket with versioning enabled (replaced bodies stay as
                    noncurrent versions: a deploy writes the changed bodies + 3 objects)

The one-page step runs ``--repeat`` times, back and forth between the two builds (every file
touched first, as a rebuild would), and medians are reported. For each step: objects written
(PUT/COPY of site files, from the server's request log), every request, and wall time. For
sitedeploy the time is its *publishing step* (``commands.publish``: lock, plan, keep bodies,
upload, commit the state, history, prune, unlock); hashing the build into a manifest belongs
to its build stage and is timed apart. Each sitedeploy one-page step is then checked against
its budget: objects written <= changed bodies + 3 (lock, release object, state object).
``--versioning off`` or ``on`` runs only one of the two sitedeploy buckets. awscli and moto come
with the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).parent))
from _corpus import corpus  # generated once under a lock

from sitedeploy import commands
from sitedeploy.build import Built
from sitedeploy.config import S3TargetConfig
from sitedeploy.progress import SILENT
from sitedeploy.release.manifest import scan
from sitedeploy.source import Commit
from sitedeploy.source.signatures import Signature
from sitedeploy.targets.base import TransferStats
from sitedeploy.targets.s3.target import S3Target

HERE = Path(__file__).resolve().parent
_LINE = re.compile(r'"(?:\x1b\[[0-9;]*m)*(GET|PUT|POST|DELETE|HEAD) /([^/ ?]+)/?([^ ?]*)(\?[^ ]*)? HTTP')
"""One request in moto's log (answers other than 200 are wrapped in terminal colour codes)."""


def run(cmd: list[str], **kw: object) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start


def build(src: Path, dest: Path, reuse: bool = False) -> float:
    if reuse and (dest / "index.html").exists():
        return 0.0
    if dest.exists():
        shutil.rmtree(dest)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    return run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(src / "mkdocs.yml"), "-d", str(dest)],
        env=env,
    )


def edited_copy(src: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, symlinks=True)
    page = sorted((dest / "docs").rglob("*.md"))[len(list((dest / "docs").rglob("*.md"))) // 2]
    page.write_text(page.read_text() + "\n\nOne more sentence, edited for the benchmark.\n")
    return dest


def aws_cli(path: str | None) -> str:
    """The ``aws`` command: --aws, else the one the ``bench`` extra installed beside this Python."""
    found = path or shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if not found:
        sys.exit("aws not found: pip install -e '.[bench]' (or pass --aws PATH)")
    return found


class Server:
    def __init__(self, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def mark(self) -> int:
        time.sleep(0.2)  # let the server flush its log
        return len(self.log.read_text().splitlines())

    def requests_since(self, mark: int, bucket: str) -> tuple[int, int, int, int]:
        """For ``bucket`` since ``mark``: (site objects written, bodies kept for rollback,
        state files written, all requests). A server-side copy is a PUT too."""
        lines = self.log.read_text().splitlines()[mark:]
        hits = [m for m in (_LINE.search(line) for line in lines) if m and m.group(2) == bucket]
        puts = [m.group(3) for m in hits if m.group(1) == "PUT" and "uploadId" not in (m.group(4) or "")]
        kept = sum(1 for key in puts if ".sitedeploy/objects/" in key)
        meta = sum(1 for key in puts if ".sitedeploy/" in key) - kept
        return len(puts) - kept - meta, kept, meta, len(hits)

    def cpu(self) -> float:
        """CPU seconds the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


class _Lazy:
    def __init__(self, root: Path, n: int) -> None:
        self.commit = Commit(f"{n:040x}", f"bench {n}", "bench", 1_700_000_000 + n)
        self.progress = SILENT
        self.signature = Signature()  # no signature rule: a folder, not a commit
        self.key = self.commit.sha
        start = time.perf_counter()
        self.manifest = scan(root)
        self.scan_seconds = time.perf_counter() - start
        self.root = root

    def key_for(self, cfg: S3TargetConfig) -> str:
        return self.key

    def get(self) -> Built:
        return Built(self.commit, self.root, self.manifest, self.key, ())


@dataclass
class Row:
    tool: str
    step: str
    seconds: float
    """aws s3 sync: the whole command. sitedeploy: the publishing step (lock, plan, keep,
    upload, commit, history, prune, unlock), without hashing the build."""
    writes: int
    kept: int
    meta: int
    requests: int
    hashing: float = 0.0
    """sitedeploy only: hashing the build into a manifest (its build stage, timed apart)."""
    stats: TransferStats | None = None
    client_cpu: float = 0.0
    """CPU seconds of the client: the aws process, or this process during the publishing step."""
    server_cpu: float = 0.0
    """CPU seconds of the S3 server (moto) during the step: the same work for both tools."""


def sitedeploy_publish(
    cfg: S3TargetConfig, root: Path, n: int
) -> tuple[float, float, TransferStats | None, float]:
    """(seconds of the publishing step, seconds hashing the build before it, transfer stats,
    CPU seconds of the publishing step)."""
    lazy = _Lazy(root, n)  # hashes the build: sitedeploy's build stage, not the publishing step
    start, cpu = time.perf_counter(), time.process_time()
    target = S3Target("bench", cfg)
    try:
        result = commands.publish(target, commands.rules_for(cfg), lazy, lazy.key_for(cfg))  # type: ignore[arg-type]
    finally:
        target.close()
    return time.perf_counter() - start, lazy.scan_seconds, result.stats, time.process_time() - cpu


def touch_all(site: Path) -> None:
    """Every file newer, as after a rebuild (MkDocs rewrites them all): what aws s3 sync sees."""
    now = time.time()
    for path in site.rglob("*"):
        if path.is_file():
            os.utime(path, (now, now))


def sync(aws: str, server: Server, site: Path, label: str) -> Row:
    mark = server.mark()
    cmd = [
        aws,
        "--endpoint-url",
        server.url,
        "s3",
        "sync",
        "--only-show-errors",
        str(site),
        "s3://bench-sync/",
    ]
    before, server_before = resource.getrusage(resource.RUSAGE_CHILDREN), server.cpu()
    seconds = run(cmd)
    after, server_after = resource.getrusage(resource.RUSAGE_CHILDREN), server.cpu()
    row = Row("aws s3 sync", label, seconds, *server.requests_since(mark, "bench-sync"))
    row.client_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    row.server_cpu = server_after - server_before
    return row


def deploy(cfg: S3TargetConfig, server: Server, site: Path, label: str, n: int) -> Row:
    mark = server.mark()
    server_before = server.cpu()
    seconds, hashing, stats, cpu = sitedeploy_publish(cfg, site, n)
    tool = TOOLS[cfg.bucket]
    row = Row(tool, label, seconds, *server.requests_since(mark, cfg.bucket), hashing, stats)
    row.client_cpu, row.server_cpu = cpu, server.cpu() - server_before
    return row


def print_budget(rows: list[Row]) -> None:
    """Objects written by each one-page deploy against changed bodies + 3."""
    print("\none-page deploys: objects written vs changed bodies + 3 (lock, release object, state object)")
    for r in rows:
        if r.tool.startswith("sitedeploy") and r.step.startswith("one page"):
            changed = r.stats.files_sent if r.stats else r.writes
            total = r.writes + r.kept + r.meta
            verdict = "ok" if total <= changed + 3 else f"{total - changed - 3} over"
            print(
                f"  {r.tool:<15} {r.step:<11} wrote {total:>3} = {r.writes} site + {r.kept} kept copies"
                f" + {r.meta} state; changed bodies {changed} + 3 = {changed + 3}: {verdict}"
            )


def print_rows(rows: list[Row]) -> None:
    head = ("tool", "step", "site objects", "kept", "state", "requests", "wall s", "client", "server")
    print("\n{:<15} {:<11} {:>12} {:>5} {:>6} {:>9} {:>8} {:>7} {:>7}".format(*head))
    for r in rows:
        note = ""
        if r.stats is not None:
            sent = r.stats.files_sent
            note = f"   publishing step ({sent} bodies sent); hashing the build before it: {r.hashing:.2f}s"
        cpu = (f"{r.client_cpu:.2f}", f"{r.server_cpu:.2f}")
        cells = (r.tool, r.step, r.writes, r.kept, r.meta, r.requests, f"{r.seconds:.2f}", *cpu)
        print("{:<15} {:<11} {:>12} {:>5} {:>6} {:>9} {:>8} {:>7} {:>7}".format(*cells) + note)
    print("site objects: PUT/COPY of live keys; kept: bodies copied server-side for rollback;")
    print("state: .sitedeploy/ objects written (lock, release record + manifest, state object + history);")
    print("requests: every request to the bucket (conditional GETs, 404s, LIST and DELETE included)")
    print("client, server: CPU seconds of the tool and of the S3 server (moto) during the step")


TARGETS = {"full": ">= 2x", "one page": ">= 50x"}
TOOLS = {"bench-sitedeploy": "sitedeploy", "bench-versioned": "sitedeploy+ver"}
"""Bucket -> the tool's name in the table."""


def summary(rows: list[Row]) -> None:
    for tool in sorted({r.tool for r in rows if r.tool != "aws s3 sync"}, key=len):
        print()
        for label in ("full", "one page"):
            summarize(rows, tool, label)


def summarize(rows: list[Row], tool: str, label: str) -> None:
    sync_s = statistics.median(
        r.seconds for r in rows if r.tool == "aws s3 sync" and r.step.startswith(label)
    )
    mine = [r for r in rows if r.tool == tool and r.step.startswith(label)]
    step = statistics.median(r.seconds for r in mine)
    hashing = statistics.median(r.hashing for r in mine)
    n = f"median of {len(mine)}" if len(mine) > 1 else "one run"
    print(
        f"{tool} {label} ({n}): publishing step {sync_s / step:.1f}x as fast as aws s3 sync "
        f"({step:.2f}s vs {sync_s:.2f}s); with hashing the build too {sync_s / (step + hashing):.1f}x "
        f"({step + hashing:.2f}s); target {TARGETS[label]}"
    )
    aws_cpu = statistics.median(
        r.client_cpu for r in rows if r.tool == "aws s3 sync" and r.step.startswith(label)
    )
    my_cpu = statistics.median(r.client_cpu for r in mine)
    server = statistics.median(r.server_cpu for r in mine)
    print(
        f"  client CPU {my_cpu:.2f}s vs aws {aws_cpu:.2f}s ({aws_cpu / max(my_cpu, 0.01):.1f}x less); "
        f"the server's CPU for sitedeploy's requests: {server:.2f}s (a floor for any client)"
    )


BUCKETS = (("bench-sitedeploy", "off"), ("bench-versioned", "on"))


def bucket(client: object, server: Server, name: str) -> S3TargetConfig:
    """A new bucket for sitedeploy (``bench-versioned`` with versioning enabled), and its config."""
    client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    if name == "bench-versioned":
        client.put_bucket_versioning(  # type: ignore[attr-defined]
            Bucket=name, VersioningConfiguration={"Status": "Enabled"}
        )
    return S3TargetConfig(type="s3", bucket=name, endpoint_url=server.url, region="us-east-1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="one-page steps to run (medians are reported)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/sitedeploy-bench"))
    ap.add_argument("--reuse-build", action="store_true", help="reuse the first build from an earlier run")
    ap.add_argument("--aws", help="the aws executable (default: the one installed by the bench extra)")
    ap.add_argument(
        "--versioning",
        choices=("both", "on", "off"),
        default="both",
        help="sitedeploy's bucket(s): versioned, unversioned or both (default)",
    )
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    aws = aws_cli(args.aws)

    src = corpus(args.pages, args.images, args.seed)
    work = args.cache / f"work-{args.pages}-{args.images}"
    t1 = build(src, work / "site1", args.reuse_build)
    files = sum(1 for p in (work / "site1").rglob("*") if p.is_file())
    print(f"corpus: {args.pages} pages, {args.images} images -> {files} files; mkdocs build {t1:.1f}s")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    server = Server(args.cache / "moto.log")
    rows: list[Row] = []
    try:
        client = boto3.client("s3", endpoint_url=server.url)
        client.create_bucket(Bucket="bench-sync")
        cfgs = [bucket(client, server, b) for b, on in BUCKETS if args.versioning in ("both", on)]
        rows += [sync(aws, server, work / "site1", "full")]
        rows += [deploy(cfg, server, work / "site1", "full", 1) for cfg in cfgs]
        # rebuilt after the first publish, as in real life: every mtime is new
        t2 = build(edited_copy(src, work / "src2"), work / "site2")
        print(f"one-page edit rebuilt in {t2:.1f}s")
        for i in range(args.repeat):  # back and forth between the two builds: one page each time
            site = work / ("site2" if i % 2 == 0 else "site1")
            if i:
                touch_all(site)
            label = f"one page {i + 1}"
            rows += [sync(aws, server, site, label)]
            rows += [deploy(cfg, server, site, label, i + 2) for cfg in cfgs]
    finally:
        server.stop()
    print_rows(rows)
    print_budget(rows)
    summary(rows)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
