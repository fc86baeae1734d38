"""Building, checking and repairing a release folder on one SSH host.

Staging a release on a host, in three round trips plus the transfer:

1. ``PREPARE`` (one remote command): remove ``releases/.*.tmp`` (and another run's
   ``.*.delta``) left by a crashed run, then ``cp -al`` the base release (the live one the
   plan was computed against) to ``releases/.<id>.tmp`` -- every file a hard link, every folder
   new -- and unlink the plan's stale paths from the copy (read NUL-separated from stdin); it
   also says whether the host has GNU tar. Without the base on this host (first deploy, a new
   host) the folder starts empty and every file is sent. Meanwhile a second thread runs the
   hash rounds of :mod:`.delta` for large changed files against the base release and sends
   their changed middles.
2. The new and changed files (all but the deltas) go as one tar stream into one ``tar -x``
   (:mod:`.bulk`), while one command puts the delta files together. A path that exists in the
   copy is a hard link shared with older releases: tar unlinks it and creates the file anew
   (``--unlink-first``), never writing through it. A delta that failed is then sent whole.
   Without GNU tar the files go over SFTP instead (``MKDIRS`` first, several sessions in
   parallel; an existing path is written under a temp name and renamed over, a new one is
   created with ``O_EXCL``).
3. ``FINISH``: ``chmod`` the folders to ``dir_mode``, rename ``.tmp`` to ``<id>``.

A crash or a dropped connection at any point leaves at most a ``.tmp`` folder that nobody
serves and the next stage removes. Host tools, all in a stock Debian/Ubuntu install: ``sh``,
``cp -al``, ``rm``, ``mkdir``, ``mv``, ``find``, ``xargs -0``, ``chmod`` (coreutils/findutils or
BusyBox), GNU ``tar`` for the bulk transfer (else SFTP), ``sha256sum`` for :func:`verify_host`;
deltas also ``split --filter``, ``head``, ``tail``, ``cat``, ``cut``, ``wc`` (GNU coreutils),
else those files go whole.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...release.diff import Plan
from ...release.manifest import Manifest
from ...release.records import ReleaseRecord
from ..base import Drift, TransferStats
from .bulk import PROBE, send_tar
from .delta import SSHTransferStats, candidates, place_deltas, prepare_deltas
from .host import SSHHost

UPLOAD_SESSIONS = 4
"""SFTP sessions per host for uploads without GNU tar: hides the per-file round trips."""

PREPARE = """set -e
mkdir -p -- "$1"
cd -- "$1"
@PROBE@
if [ -d "$2" ]; then cat >/dev/null; echo staged; exit 0; fi
for old in .*.tmp .*.delta; do
  if [ -d "$old" ] && [ "$old" != ".$2.delta" ]; then rm -rf -- "$old"; fi
done
if [ -n "$3" ] && [ -d "$3" ]; then
  cp -al -- "$3" ".$2.tmp"
  cd -- ".$2.tmp"
  xargs -0 rm -f --
  if [ "$4" = prune ]; then find . -mindepth 1 -type d -empty -delete; fi
  echo linked
else
  cat >/dev/null
  mkdir -- ".$2.tmp"
  echo empty
fi
""".replace("@PROBE@", PROBE)

MKDIRS = 'cd -- "$1" && xargs -0 mkdir -p --'

FINISH = """set -e
cd -- "$1"
find ".$2.tmp" -type d -exec chmod "$3" {} +
if [ -e "$2" ]; then echo "release $2 appeared while staging" >&2; exit 3; fi
mv -- ".$2.tmp" "$2"
"""

REMOVE = 'cd -- "$1" && xargs -0 rm -f --'

HASH = 'cd -- "$1" && find . -type f -exec sha256sum -- {} +'

Advance = Callable[[int], None]


def nul_list(paths: Iterable[str]) -> bytes:
    return b"".join(p.encode() + b"\0" for p in paths)


def parents(paths: Iterable[str]) -> set[str]:
    """Every folder above each path (``a/b/c.html`` -> ``a``, ``a/b``)."""
    out: set[str] = set()
    for path in paths:
        parts = path.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def stage_host(
    host: SSHHost,
    root: str,
    record: ReleaseRecord,
    build_dir: Path,
    manifest: Manifest,
    plan: Plan,
    base: str | None,
    advance: Advance,
) -> SSHTransferStats:
    releases = f"{root}/releases"
    large = candidates(plan, manifest)
    with ThreadPoolExecutor(1) as pool:  # the hash rounds read the base release while it is copied
        hashing = pool.submit(prepare_deltas, host, build_dir, releases, base, record.id, large)
        answer = host.sh(
            "prepare the release folder",
            PREPARE,
            releases,
            record.id,
            base or "",
            "prune" if plan.deletes else "",
            stdin=nul_list(plan.deletes),
        ).split()
        prepared = hashing.result()
    if "staged" in answer:
        return SSHTransferStats()  # staged by an earlier run that stopped before the switch
    linked = "linked" in answer
    sends = [u.path for u in plan.uploads] if linked else list(manifest)
    tmp = f"{releases}/.{record.id}.tmp"
    send = _sender(host, build_dir, tmp, plan if linked else None, use_tar="tar" in answer)
    stats = SSHTransferStats(files_linked=len(manifest) - len(sends), requests=2)
    if not linked:
        prepared.deltas.clear()
    held = {d.path for d in prepared.deltas}
    with ThreadPoolExecutor(1) as pool:  # the deltas are put together while the rest is sent
        placing = pool.submit(place_deltas, host, releases, record.id, prepared, manifest)
        stats.add(send([p for p in sends if p not in held], advance))
        delta_stats, placed = placing.result()
    advance(len(placed))
    stats.add(delta_stats)
    if held - placed:  # a delta failed its check: send the whole file
        stats.add(send(sorted(held - placed), advance))
    host.sh("finish the release", FINISH, releases, record.id, format(host.cfg.dir_mode, "o"))
    return stats


Send = Callable[[list[str], Advance], TransferStats]


def _sender(host: SSHHost, build_dir: Path, tmp: str, plan: Plan | None, *, use_tar: bool) -> Send:
    """How files reach the staging folder ``tmp``: one tar stream, or SFTP without GNU tar.

    ``plan`` is None when the folder started empty (no base release on the host).
    """
    if use_tar:
        return lambda paths, advance: send_tar(host, build_dir, tmp, paths, advance)
    replace = {u.path for u in plan.uploads if u.reason != "new"} if plan else set()
    present = set(plan.unchanged) | replace if plan else set()

    def over_sftp(paths: list[str], advance: Advance) -> TransferStats:
        new_dirs = sorted(parents(paths) - parents(present))
        if new_dirs:
            host.sh("create folders", MKDIRS, tmp, stdin=nul_list(new_dirs))
        stats = upload_files(host, build_dir, tmp, paths, replace, advance)
        stats.requests += bool(new_dirs)
        return stats

    return over_sftp


def upload_files(
    host: SSHHost, build_dir: Path, dest: str, paths: list[str], replace: set[str], advance: Advance
) -> TransferStats:
    """Send ``paths`` from ``build_dir`` to ``dest`` over a few parallel SFTP sessions."""
    stats = TransferStats()
    queue = iter(sorted(paths, key=lambda p: -(build_dir / p).stat().st_size))  # big files first
    lock = threading.Lock()
    failed = threading.Event()

    def work(first: bool) -> None:
        sftp = host.sftp if first else host.open_sftp()
        try:
            while not failed.is_set():
                with lock:
                    path = next(queue, None)
                if path is None:
                    return
                source = build_dir / path
                host.upload(sftp, source, f"{dest}/{path}", host.cfg.file_mode, path in replace)
                with lock:
                    stats.files_sent += 1
                    stats.bytes_sent += source.stat().st_size
                    stats.requests += 1
                    advance(1)
        except BaseException:
            failed.set()
            raise
        finally:
            if not first:
                sftp.close()

    sessions = max(1, min(UPLOAD_SESSIONS, len(paths) // 8))
    with ThreadPoolExecutor(sessions) as pool:
        futures = [pool.submit(work, i == 0) for i in range(sessions)]
    for future in futures:
        future.result()  # the first worker's error, already translated to a TargetError
    return stats


def verify_host(host: SSHHost, root: str, release_id: str, manifest: Manifest) -> Drift:
    """Hash the release's files on the host (``sha256sum``) and compare with ``manifest``."""
    folder = f"{root}/releases/{release_id}"
    drift = Drift(where=f"{host.label}:{folder}", host=host.label)
    if not host.is_dir(folder):
        drift.missing = list(manifest)
        return drift
    found = parse_sha256sum(host.sh("hash the live files", HASH, folder))
    for path, digest in found.items():
        entry = manifest.get(path)
        if entry is None:
            drift.extra.append(path)
        elif entry.sha256 != digest:
            drift.changed.append(path)
    drift.missing = [p for p in manifest if p not in found]
    return drift


def parse_sha256sum(output: str) -> dict[str, str]:
    """``sha256sum`` lines -> {path: hex}; names with ``\\`` or a newline come escaped."""
    found: dict[str, str] = {}
    for line in output.split("\n"):
        if not line:
            continue
        escaped = line.startswith("\\")
        body = line[1:] if escaped else line
        digest, name = body[:64], body[66:]
        if escaped:
            name = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), name)
        found[name.removeprefix("./")] = digest
    return found


def repair_host(host: SSHHost, root: str, release_id: str, build_dir: Path, drift: Drift) -> None:
    """Put back missing and changed files (temp name + rename), remove extra ones."""
    folder = f"{root}/releases/{release_id}"
    sends = drift.missing + drift.changed
    if parents(sends):
        host.sh("create folders", MKDIRS, folder, stdin=nul_list(sorted(parents(sends))))
    if sends:
        upload_files(host, build_dir, folder, sends, set(sends), lambda n: None)
    if drift.extra:
        host.sh("remove extra files", REMOVE, folder, stdin=nul_list(drift.extra))
