"""Publishing a docs site over SSH: rsync into release folders against sitedeploy's SSH target.

    .venv/bin/python benchmarks/bench_ssh.py [--pages 200 --images 40 --rounds 5]
    .venv/bin/python benchmarks/bench_ssh.py --pages 5000 --images 300   # the issue's figures

Real OpenSSH servers on 127.0.0.1 (the test fixture's, tests/fixtures/sshd.py) and the
corpus (benchmarks/corpus.py), built with MkDocs twice: as generated, and after a
one-page edit (builds cached under /tmp/sitedeploy-bench/). Then, for one host:

    rsync -a                          full copy into releases/r00 (and to both hosts at once),
                                      then --delete --link-dest=../r1 into releases/r2 + symlink swap
    rsync -a --no-times --checksum    the same, hard-linking files whose content is equal
    sitedeploy                        full deploy, then the one-page change

and sitedeploy on two hosts. The one-page change is published ``--rounds`` times, back and
forth between the two builds, and the medians are printed (other jobs may load the machine).
Each publishing step is timed from connecting to the switched
symlink (sitedeploy: lock, plan, stage, record, switch, history; the manifests are computed
by the build step, so they are precomputed here). Bytes: rsync's "Total bytes sent"; for
sitedeploy the payload (file bytes sent) and the bytes written to the TCP socket (with SSH's
framing and encryption). "linked" counts files of the new release that share the old
release's inode.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _corpus import CACHE, corpus  # noqa: E402

from sitedeploy.release import diff as plan_mod  # noqa: E402
from sitedeploy.release.manifest import Manifest, scan  # noqa: E402
from sitedeploy.release.records import ReleaseRecord  # noqa: E402
from sitedeploy.release.transaction import Rules, Transaction  # noqa: E402
from tests.fixtures.sshd import SSHEnv, SSHServer, keygen, open_ssh_target  # noqa: E402

SENT = [0]
Row = tuple[str, str, float, int, str]
"""publisher, step, seconds, bytes sent, notes"""
_create_connection = socket.create_connection


class CountingSocket:
    """A socket that adds what it sends to SENT (paramiko only calls send/recv/settimeout...)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send(self, data: bytes) -> int:
        n = self._sock.send(data)
        SENT[0] += n
        return n

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        SENT[0] += len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def counting_connection(*args: Any, **kwargs: Any) -> Any:
    return CountingSocket(_create_connection(*args, **kwargs))


def build_twice(src: Path) -> tuple[Path, Path, float]:
    """(build of the corpus, build after a one-page edit, seconds of one mkdocs build)."""
    out = CACHE / f"ssh-builds-{src.name}"
    first, second = out / "a", out / "b"
    took = 0.0
    if not (out / ".complete").exists():
        shutil.rmtree(out, ignore_errors=True)
        edited = out / "src"
        shutil.copytree(src, edited)
        took = mkdocs(edited, first)
        page = sorted((edited / "docs").rglob("*.md"))[len(list((edited / "docs").rglob("*.md"))) // 2]
        page.write_text(page.read_text() + "\n\nOne more paragraph, edited for the benchmark.\n")
        mkdocs(edited, second)
        (out / ".complete").touch()
    return first, second, took


def mkdocs(src: Path, dest: Path) -> float:
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(src / "mkdocs.yml"), "-d", str(dest)]
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def linked(old: Path, new: Path) -> int:
    count = 0
    for path in new.rglob("*"):
        twin = old / path.relative_to(new)
        if path.is_file() and twin.is_file() and twin.stat().st_ino == path.stat().st_ino:
            count += 1
    return count


def rsync(env: SSHEnv, server: SSHServer, build: Path, dest: str, options: list[str]) -> tuple[float, int]:
    """rsync ``build`` into ``dest`` (relative to the host's home), swap ``current``; (s, bytes)."""
    return rsync_many(env, [server], build, dest, options)


def rsync_many(
    env: SSHEnv, servers: list[SSHServer], build: Path, dest: str, options: list[str]
) -> tuple[float, int]:
    """``rsync`` to every server at once (one process each, as a script would); (s, bytes)."""
    root, _, release = dest.rpartition("/releases/")
    swap = f"cd {root} && ln -sfn releases/{release} .current.tmp && mv -T .current.tmp current"
    start = time.perf_counter()
    procs = []
    for server in servers:
        ssh = (
            f"ssh -p {server.port} -i {env.client_key} -o UserKnownHostsFile={env.known_hosts} "
            "-o StrictHostKeyChecking=yes -o BatchMode=yes"
        )
        cmd = ["rsync", *options, "--mkpath", "--stats", "-e", ssh, f"{build}/", f"root@127.0.0.1:{dest}/"]
        procs.append((ssh, subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)))
    sent = 0
    for ssh, proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, "rsync")
        subprocess.run([*ssh.split(), "root@127.0.0.1", swap], check=True)
        found = re.search(r"Total bytes sent: ([\d,]+)", out)
        sent += int(found[1].replace(",", "")) if found else 0
    return time.perf_counter() - start, sent


def sitedeploy(target: Any, build: Path, manifest: Manifest, rid: str) -> tuple[float, Any]:
    """The deploy's publishing step against an already-built release."""
    start = time.perf_counter()
    with Transaction(target, Rules(keep_releases=1000), "deploy") as tx:
        record = ReleaseRecord(
            id=rid, commit=rid[-8:] * 5, subject="bench", author="b", committed_at="", created_at="",
            created_by="", build_key=rid, files=len(manifest), bytes=manifest.total_bytes,
        )  # fmt: skip
        tx.publish(record, manifest, build)
    return time.perf_counter() - start, tx.stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5, help="one-page changes per publisher (medians)")
    args = parser.parse_args()
    src = corpus(args.pages, args.images)
    first, second, took = build_twice(src)
    files = sum(1 for p in first.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in first.rglob("*") if p.is_file())
    print(f"corpus: {args.pages} pages, {args.images} images -> {files} files, {size / 1e6:.1f} MB"
          + (f"; mkdocs build {took:.1f}s" if took else " (builds cached)"))  # fmt: skip
    manifests = scan(first), scan(second)
    changed = plan_mod.diff(manifests[1], manifests[0])
    print(f"one-page edit changes {len(changed.uploads)} files: {', '.join(u.path for u in changed.uploads)}")

    work = Path(tempfile.mkdtemp(prefix="bench-ssh-", dir=CACHE))
    env = SSHEnv(work / "ssh", keygen(work / "id_ed25519"))
    env.root.mkdir()
    env.ssh_config.write_text("")
    hosts = [env.server(), env.server()]
    rows: list[Row] = []
    try:
        variants = (
            ("rsync -a", ["-a"]),
            ("rsync -a --no-times --checksum", ["-a", "--no-times", "--checksum"]),
        )
        for name, options in variants:
            tag = name.split()[-1].strip("-")
            base = f"{tag}/releases"
            full = rsync(env, hosts[0], first, f"{base}/r00", ["-a", "--delete"])
            rows.append((name, "full", full[0], full[1], ""))
            if name == "rsync -a":  # the machine's own cost of two hosts, for scale
                pair = rsync_many(env, hosts, first, "pair/releases/r00", ["-a", "--delete"])
                rows.append(("rsync -a (2 hosts at once)", "full", pair[0], pair[1], ""))
            home = hosts[0].home / base
            for k in range(1, args.rounds + 1):  # one-page changes back and forth
                old, new = f"r{k - 1:02d}", f"r{k:02d}"
                build = (first, second)[k % 2]
                flags = [*options, "--delete", f"--link-dest=../{old}"]
                one = rsync(env, hosts[0], build, f"{base}/{new}", flags)
                rows.append((name, "one-page", one[0], one[1], f"{linked(home / old, home / new)}"))

        socket.create_connection = counting_connection  # type: ignore[assignment]
        for count in (1, 2):
            table = env.target_table(Path(f"sitedeploy{count}"), hosts[:count])
            home = hosts[0].home / f"sitedeploy{count}/releases"
            for k in range(args.rounds + 1):
                SENT[0] = 0
                step = "one-page" if k else "full"
                target = open_ssh_target("bench", table)  # a new connection per step, like rsync's
                took, stats = sitedeploy(target, (first, second)[k % 2], manifests[k % 2], release(k))
                target.close()
                links = f"{linked(home / release(k - 1), home / release(k))}" if k else ""
                label = f"sitedeploy ({count} host{'s' * (count > 1)})"
                rows.append((label, step, took, SENT[0], f"{links} payload {stats.bytes_sent} B".strip()))
    finally:
        socket.create_connection = _create_connection
        for server in hosts:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(medians(rows), files, args.rounds)


def release(k: int) -> str:
    return f"20260101T000000Z-r{k:02d}"


def medians(rows: list[Row]) -> list[Row]:
    """One row per (publisher, step): median seconds and bytes, the last row's notes."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault(row[:2], []).append(row)
    return [(name, step, statistics.median(r[2] for r in group), int(statistics.median(r[3] for r in group)),
             group[-1][4]) for (name, step), group in groups.items()]  # fmt: skip


def report(rows: list[Row], files: int, rounds: int) -> None:
    print(
        f"\n{'publisher':<32} {'step':<9} {'wall s':>7} {'bytes sent':>12}  linked / notes"
        f"  (one-page: median of {rounds}, alternating between the two builds)"
    )
    for name, step, took, sent, note in rows:
        print(f"{name:<32} {step:<9} {took:>7.2f} {sent:>12,}  {note}")
    best = min((r for r in rows if r[0].startswith("rsync") and r[1] == "one-page"), key=lambda r: r[2])
    one = {r[0]: r for r in rows if r[1] == "one-page"}
    sd1, sd2 = one["sitedeploy (1 host)"], one["sitedeploy (2 hosts)"]
    full = {r[0]: r for r in rows if r[1] == "full"}
    print(f"\none-page change: sitedeploy {sd1[2]:.2f}s vs best rsync ({best[0]}) {best[2]:.2f}s "
          f"= {sd1[2] / best[2]:.2f}x time, {sd1[3] / best[3]:.2f}x bytes (target <= 1.0x, <= 1.5x); "
          f"linked {sd1[4].split()[0]} of {files} files")  # fmt: skip
    print(
        f"two hosts vs one: one-page {sd2[2] / sd1[2]:.2f}x, full "
        f"{full['sitedeploy (2 hosts)'][2] / full['sitedeploy (1 host)'][2]:.2f}x (target <= 1.3x)"
    )
    rs2 = full["rsync -a (2 hosts at once)"][2] / full["rsync -a"][2]
    print(f"  for scale, rsync -a to two hosts at once: {rs2:.2f}x one host (the machine's own cost)")
    sd, rs = full["sitedeploy (1 host)"][2], full["rsync -a"][2]
    print(
        f"full deploy: sitedeploy {sd:.2f}s vs rsync -a --delete {rs:.2f}s = {sd / rs:.2f}x (target <= 1.0x)"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
