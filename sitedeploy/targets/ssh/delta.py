"""Delta uploads over SSH: for a large changed file send only the bytes that changed.

A rebuilt site often rewrites one large file whole for a small edit (MkDocs'
``search/search_index.json`` is ~30 MB for 5,000 pages and changes by a few bytes per edited
page). The old copy is already on the host, hard-linked into the staged release, so only the
part between the longest common prefix ``P`` and the longest common suffix ``S`` is sent.
The host needs POSIX tools and GNU ``split --filter`` (coreutils), no Python:

1. ``HASH`` rounds (:func:`prepare_deltas`), one remote command per round for every file still
   open, reading the old file in the *base* release, so they run while PREPARE copies it: the
   host prints truncated ``sha256sum`` digests of the old file's blocks aligned from the start
   of the unmatched region and again aligned from its end (an insertion or removal shifts the
   tail; end-aligned blocks still find it). ``split --filter`` runs one ``sha256sum`` process
   per block, so a round hashes at most ``BLOCKS_PER_ROUND`` blocks per end and the next round
   looks only inside the first and last unequal block, with blocks that many times smaller,
   down to ``MIN_BLOCK`` (30 MB: 2 MiB, 128 KiB, 8 KiB blocks; ~100 processes, not 7,000).
2. Here, the new file's blocks are hashed the same way, stopping at the first mismatch from
   each end; ``P`` and ``S`` grow by the equal blocks, clamped so ``P + S`` fits both files.
   A middle over half the file is not worth it: that file goes whole.
3. The middle ``new[P:len-S]`` goes over SFTP into the work folder ``releases/.<id>.delta``.
4. ``ASSEMBLE`` (:func:`place_deltas`, while the other files upload), one command for all
   files: ``head -c P OLD; cat MIDDLE; tail -c S OLD`` into a temp file, check its
   ``sha256sum`` against the manifest, ``chmod``, then ``mv`` (a rename) over the path in the
   staged release. That path is a hard link shared with older releases: the rename replaces
   the link, the old releases keep their inode and content.

Anything else -- no base release on the host, ``split`` without ``--filter``, a damaged old
file, a hash mismatch, an error -- leaves the file to the normal whole-file upload. The work
folder is removed by ASSEMBLE, or after a crash by the next stage's PREPARE (which spares
only its own run's ``.<id>.delta``); never inside the release folder, which is renamed live.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ...errors import TargetError
from ...release.diff import Plan
from ...release.manifest import Manifest
from ..base import TransferStats
from .host import CHUNK, SSHHost

THRESHOLD = 256 * 1024
"""Smaller changed files are sent whole: a delta costs a few round trips."""
MIN_BLOCK = 8 * 1024
"""The finest block: up to about two of these are re-sent around each edit."""
BLOCKS_PER_ROUND = 16
"""Blocks per round and direction, one ``sha256sum`` process each on the host; a round
narrows each end to one block, so the next round's blocks are this many times smaller."""
DIGEST_CHARS = 16
"""Truncated digests (64 bits): a false match only costs the fallback, the result is verified."""

# $1 release folder, $2 work folder (relative to $1); stdin: NUL-separated groups (index, path,
# lo, hi, window, block). Hashes the old file's blocks over [lo, lo+window) and, aligned to
# its end, over [hi-window, hi), both kept inside [lo, hi); hi and window "-" mean the file's
# end and the whole region. Per file: "= index size", forward digests, "-", backward
# digests, "."; an unreadable file prints "! index" or stops short of ".".
HASH = """cd -- "$1" || exit 1
mkdir -p -- "$2" || exit 1
SHELL=/bin/sh; export SHELL
xargs -0 -n 6 sh -c '
i=$1 f=$2 lo=$3 hi=$4 w=$5 b=$6
if [ ! -f "$f" ] || ! n=$(wc -c < "$f"); then echo "! $i"; exit 0; fi
n=$((n + 0))
if [ "$hi" = - ]; then hi=$n; fi
if [ "$lo" -gt "$hi" ] || [ "$hi" -gt "$n" ]; then echo "! $i"; exit 0; fi
if [ "$w" = - ] || [ "$w" -gt $((hi - lo)) ]; then w=$((hi - lo)); fi
back=$((w - w % b))
echo "= $i $n"
{
  tail -c +$((lo + 1)) -- "$f" | head -c "$w" | split -b "$b" --filter=sha256sum &&
  echo - &&
  tail -c +$((hi - back + 1)) -- "$f" | head -c "$back" | split -b "$b" --filter=sha256sum &&
  echo .
} | cut -c1-@DIGEST@
' sh
""".replace("@DIGEST@", str(DIGEST_CHARS))

# $1 release folder, $2 work folder (relative to $1), $3 file mode (octal); stdin:
# NUL-separated groups (index, path, prefix, suffix, sha256). "ok index" for each file placed.
ASSEMBLE = """cd -- "$1" || exit 1
w=$2 m=$3; export w m
xargs -0 -n 5 sh -c '
i=$1 f=$2 p=$3 s=$4 want=$5 t="$w/$i.new"
if {
  head -c "$p" -- "$f" && cat -- "$w/$i" && if [ "$s" -gt 0 ]; then tail -c "$s" -- "$f"; fi
} > "$t" && got=$(sha256sum < "$t") && [ "${got%% *}" = "$want" ] &&
  chmod "$m" "$t" && mv -f -- "$t" "$f"
then echo "ok $i"; else rm -f -- "$t"; fi
' sh
rm -rf -- "$w"
"""


@dataclass
class SSHTransferStats(TransferStats):
    files_delta: int = 0
    """Of ``files_sent``, those sent as a delta (only their changed middle is in bytes_sent)."""

    def add(self, other: TransferStats) -> None:
        self.files_sent += other.files_sent
        self.bytes_sent += other.bytes_sent
        self.files_linked += other.files_linked
        self.requests += other.requests
        self.files_delta += getattr(other, "files_delta", 0)

    def summary(self) -> str:
        deltas = f", {self.files_delta} of them as deltas" if self.files_delta else ""
        return f"sent {self.files_sent} files{deltas} ({self.bytes_sent} bytes), reused {self.files_linked}"


@dataclass
class Delta:
    """One file: ``prefix``/``suffix`` bytes known equal in the old and the new file."""

    index: int
    path: str
    source: Path
    new_size: int
    old_size: int = -1
    """Unknown (-1) until the host's first answer."""
    prefix: int = 0
    suffix: int = 0
    block: int = 0
    """This round's block; the next round looks inside one block of this size at each end."""

    def old_len(self) -> int:
        return self.old_size - self.prefix - self.suffix

    def new_len(self) -> int:
        return self.new_size - self.prefix - self.suffix

    def request(self) -> list[str]:
        """The next round's HASH group, and ``block`` set to its block size."""
        window = self.block
        if window == 0:  # first round: the whole file, blocks sized so there are few of them
            block = MIN_BLOCK
            while block * BLOCKS_PER_ROUND < self.new_size:
                block *= 2
        else:
            block = max(MIN_BLOCK, window // BLOCKS_PER_ROUND)
        self.block = block
        hi = "-" if self.old_size < 0 else str(self.old_size - self.suffix)
        return [str(self.index), self.path, str(self.prefix), hi, str(window or "-"), str(block)]

    def finished(self) -> bool:
        return self.block == MIN_BLOCK or min(self.old_len(), self.new_len()) == 0


def candidates(plan: Plan, manifest: Manifest) -> list[str]:
    """Changed (not new) files big enough for a delta to pay off."""
    return [u.path for u in plan.uploads if u.reason in ("size", "hash") and
            manifest[u.path].size >= THRESHOLD]  # fmt: skip


@dataclass
class Prepared:
    """Files whose middle is on the host, ready for :func:`place_deltas`."""

    deltas: list[Delta]
    stats: SSHTransferStats


def prepare_deltas(
    host: SSHHost, build_dir: Path, releases: str, base: str | None, release_id: str, paths: list[str]
) -> Prepared:
    """Hash rounds against ``releases/<base>`` and the middles sent to ``releases/.<id>.delta``.

    Reads only the base release, so it runs while PREPARE copies that release; a host without
    it answers ``!`` and the files go whole.
    """
    stats = SSHTransferStats()
    if not paths or base is None:
        return Prepared([], stats)
    folder, work = f"{releases}/{base}", f"{releases}/.{release_id}.delta"
    deltas = [Delta(i, p, build_dir / p, (build_dir / p).stat().st_size) for i, p in enumerate(paths)]
    try:
        matched = _match(host, folder, f"../.{release_id}.delta", deltas, stats)
        if not matched:
            host.sh("remove the delta folder", 'rm -rf -- "$1"', work)
        _send_middles(host, work, matched, stats)
    except (TargetError, OSError):  # these files go the normal way (a real outage fails there)
        return Prepared([], stats)
    return Prepared(matched, stats)


def place_deltas(
    host: SSHHost, releases: str, release_id: str, prepared: Prepared, manifest: Manifest
) -> tuple[SSHTransferStats, set[str]]:
    """Put the prepared files together in ``releases/.<id>.tmp``; (stats, the paths placed)."""
    stats = prepared.stats
    if not prepared.deltas:
        return stats, set()
    folder, work = f"{releases}/.{release_id}.tmp", f"../.{release_id}.delta"
    try:
        placed = _assemble(host, folder, work, prepared.deltas, manifest, stats)
    except TargetError:
        return stats, set()
    stats.files_sent = stats.files_delta = len(placed)
    return stats, placed


def _match(host: SSHHost, folder: str, work: str, deltas: list[Delta], stats: TransferStats) -> list[Delta]:
    """Hash rounds until each end is known to MIN_BLOCK; the files that can go as deltas."""
    failed: set[int] = set()
    pending = list(deltas)
    while pending:
        stdin = _nul_groups([d.request() for d in pending])
        out = host.sh("hash blocks of changed files", HASH, folder, work, stdin=stdin)
        stats.bytes_sent += _command_bytes(HASH, folder, work, stdin)
        stats.requests += 1
        found = parse_hashes(out)
        for d in pending:
            answer = found.get(d.index)
            if answer is None or (d.old_size >= 0 and answer[0] != d.old_size):
                failed.add(d.index)
                continue
            d.old_size = answer[0]
            _narrow(d, answer[1], answer[2])
        pending = [d for d in pending if d.index not in failed and not d.finished()]
    # A middle over half the file gains little for the extra work on the host: send it whole.
    return [d for d in deltas if d.index not in failed and 2 * d.new_len() <= d.new_size]


def parse_hashes(out: str) -> dict[int, tuple[int, list[str], list[str]]]:
    """HASH's output -> {index: (old size, forward digests, backward digests)}; failures left out."""
    found: dict[int, tuple[int, list[str], list[str]]] = {}
    lines = out.split("\n")
    at = 0
    while at < len(lines):
        head = lines[at].split()
        at += 1
        if len(head) != 3 or head[0] != "=" or not (head[1].isdigit() and head[2].isdigit()):
            continue
        forward: list[str] = []
        backward: list[str] = []
        into, complete = forward, False
        while at < len(lines) and not complete:
            line = lines[at]
            if line == "-" and into is forward:
                into = backward
            elif line == "." and into is backward:
                complete = True
            elif _is_digest(line):
                into.append(line)
            else:  # the next file's header, or a failure: leave it to the outer loop
                break
            at += 1
        if complete:
            found[int(head[1])] = (int(head[2]), forward, backward)
    return found


def _is_digest(line: str) -> bool:
    return len(line) == DIGEST_CHARS and all(c in "0123456789abcdef" for c in line)


def _narrow(d: Delta, forward: list[str], backward: list[str]) -> None:
    """Grow ``prefix``/``suffix`` by the new file's blocks equal to the old file's."""
    old_len, new_len, block = d.old_len(), d.new_len(), d.block
    with d.source.open("rb") as f:
        start = 0
        for digest in forward:
            if start >= new_len or _digest(f, d.prefix + start, min(block, new_len - start)) != digest:
                break
            start += block
        end = 0
        for digest in reversed(backward):
            if end + block > new_len or _digest(f, d.prefix + new_len - end - block, block) != digest:
                break
            end += block
    head = min(start, old_len, new_len)
    d.prefix += head
    d.suffix += min(end, min(old_len, new_len) - head)


def _digest(f: BinaryIO, offset: int, length: int) -> str:
    f.seek(offset)
    return hashlib.sha256(f.read(length)).hexdigest()[:DIGEST_CHARS]


def _send_middles(host: SSHHost, work: str, deltas: list[Delta], stats: TransferStats) -> None:
    sftp = host.sftp
    for d in deltas:
        with host.step(f"send the changed part of {d.path}", d.path), d.source.open("rb") as src:
            src.seek(d.prefix)
            left = d.new_len()
            with sftp.open(f"{work}/{d.index}", "wb") as f:
                f.set_pipelined(True)
                while left and (chunk := src.read(min(CHUNK, left))):  # a middle may be large
                    f.write(chunk)
                    left -= len(chunk)
        stats.bytes_sent += d.new_len()
        stats.requests += 1


def _assemble(
    host: SSHHost, folder: str, work: str, deltas: list[Delta], manifest: Manifest, stats: TransferStats
) -> set[str]:
    """Rebuild, check and rename every file in one command; the paths put in place."""
    groups = [[str(d.index), d.path, str(d.prefix), str(d.suffix), manifest[d.path].sha256] for d in deltas]
    stdin = _nul_groups(groups)
    mode = format(host.cfg.file_mode, "o")
    out = host.sh("put the changed files together", ASSEMBLE, folder, work, mode, stdin=stdin)
    stats.bytes_sent += _command_bytes(ASSEMBLE, folder, work, mode, stdin)
    stats.requests += 1
    placed = {int(line[3:]) for line in out.split("\n") if line.startswith("ok ") and line[3:].isdigit()}
    return {d.path for d in deltas if d.index in placed}


def _nul_groups(groups: list[list[str]]) -> bytes:
    return b"".join(item.encode() + b"\0" for group in groups for item in group)


def _command_bytes(script: str, *args: str | bytes) -> int:
    """What a command costs on the wire: the quoted command line plus its stdin."""
    words = [a for a in args if isinstance(a, str)]
    data = sum(len(a) for a in args if isinstance(a, bytes))
    return len(shlex.join(["sh", "-c", script, "sitedeploy", *words]).encode()) + data
