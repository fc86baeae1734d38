"""Many files to one SSH host as a tar stream over an exec channel (two for a large send).

Sending a file over SFTP costs several requests (open, write, chmod, close, maybe rename) that
wait on one another; a full deploy of 5,000 pages is thousands of such exchanges. Instead the
files go as one uncompressed tar stream into one remote ``tar -x`` reading its stdin, unpacked
into the staging folder ``releases/.<id>.tmp``. The stream is written here, member by member,
straight from the build folder (never whole in memory) by a thread that reads one step ahead,
and handed to the channel in pieces of about a megabyte (paramiko slices what it is given into
SSH packets; a ``memoryview`` keeps that slicing free of copies). Unpacking -- a folder and a
file created per page -- is the slow end of the pipe, so a large send is cut into ``STREAMS``
runs of neighbouring paths with about equal bytes, each its own channel and ``tar -x``.

What the host runs (``UNPACK``), GNU tar as shipped by Debian and Ubuntu (``tar`` is an
Essential package there)::

    tar -x -f - -p -m --no-same-owner --unlink-first

* the members are built here, from manifest paths only: regular files, relative names that
  never hold ``..`` nor start with ``/`` (checked again here; GNU tar also refuses both), no
  links, devices or folder entries (tar makes missing parent folders; FINISH sets their mode);
* ``--unlink-first``: a path that exists in the staging folder is a hard link shared with
  older releases; it is unlinked and created anew, never opened for writing (the releases it
  belongs to keep their content);
* ``-p`` with every member's mode set to ``file_mode``: the files get exactly that mode,
  whatever the remote umask; ``--no-same-owner``: files belong to the login user, even root;
  ``-m``: modification time is the time of unpacking, as with SFTP.

A host without GNU tar (BusyBox) gets the files over SFTP as before; the staging step asks
(``tar --version``) in the command that prepares the folder. A cut stream fails the command
(tar sees a short archive), and the folder it was writing is a ``.tmp`` nobody serves.
"""

from __future__ import annotations

import os
import queue
import shlex
import tarfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko

from ...errors import TargetError
from ..base import TransferStats
from .host import SSHHost, _command_failed, _read_all, translate

UNPACK = """cd -- "$1" || exit 1
exec tar -x -f - -p -m --no-same-owner --unlink-first
"""
PROBE = 'if tar --version 2>/dev/null | head -n 1 | grep -q "GNU tar"; then echo tar; fi'
"""Appended to the staging command: prints ``tar`` when the host has GNU tar."""

BLOCK = 512
FLUSH = 1024 * 1024
"""Bytes gathered before a hand-over to the channel: large enough that the per-call cost
vanishes, small enough to keep memory flat and the host busy."""
READ = 256 * 1024
STREAMS = 2
"""Parallel ``tar -x`` per host for a large send: unpacking (a folder and a file created per
page) is the slow end of the pipe, and one tar process is one core's worth of it."""
SPLIT_FILES = 64
SPLIT_BYTES = 8 * 1024 * 1024
"""Below either, one stream: a second channel and process are not worth it."""

Advance = Callable[[int], None]


def member_name(path: str) -> str:
    """``path`` as a tar member name; refuses anything that could land outside the folder."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in path:
        raise TargetError(f"refusing to send {path!r}: not a plain relative path inside the release")
    return path


def header(path: str, size: int, mode: int, mtime: int) -> bytes:
    """The GNU tar header of one regular file (long names get a ``././@LongLink`` entry).

    GNU format keeps a name as its bytes: a pax header would carry UTF-8 that tar converts to
    the remote locale's charset, which in a non-interactive session is often ASCII.
    """
    info = tarfile.TarInfo(member_name(path))
    info.size, info.mode, info.mtime, info.type = size, mode, mtime, tarfile.REGTYPE
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


class Archive:
    """The tar stream of some files of a build folder, in pieces of about ``FLUSH`` bytes."""

    def __init__(self, build_dir: Path, paths: list[str], mode: int, advance: Advance) -> None:
        self.build_dir, self.paths, self.mode, self.advance = build_dir, sorted(paths), mode, advance
        self.payload = 0
        """File bytes in the pieces made so far."""

    def pieces(self) -> Iterator[bytes]:
        parts: list[bytes] = []
        size = 0
        for member in self._members():
            parts.append(member)
            size += len(member)
            if size >= FLUSH:
                yield b"".join(parts)
                parts, size = [], 0
        yield b"".join([*parts, b"\0" * (2 * BLOCK)])  # two empty blocks end the archive

    def _members(self) -> Iterator[bytes]:
        """Each file's header, its data in reads of ``READ`` bytes, and its padding."""
        for path in self.paths:
            source = self.build_dir / path
            with source.open("rb") as f:
                stat = os.fstat(f.fileno())
                yield header(path, stat.st_size, self.mode, int(stat.st_mtime))
                left = stat.st_size
                while left > 0 and (chunk := f.read(min(READ, left))):
                    yield chunk
                    left -= len(chunk)
            if left:  # the file shrank while being read: the archive would be misaligned
                raise TargetError(f"{source} changed while it was being sent; build again")
            yield b"\0" * (-stat.st_size % BLOCK)
            self.payload += stat.st_size
            self.advance(1)


class ReadAhead:
    """Runs a generator in a thread, up to ``depth`` items ahead of the consumer.

    Reading the build folder (the disk, on a cold cache) then overlaps with encrypting and
    sending, which happen in the consumer's thread; both release the GIL while they wait.
    """

    _END = object()

    def __init__(self, items: Iterator[bytes], depth: int = 8) -> None:
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name="tar-read-ahead", daemon=True)
        self._thread.start()

    def _run(self, items: Iterator[bytes]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, raised in its thread
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[bytes]:
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def send_tar(host: SSHHost, build_dir: Path, dest: str, paths: list[str], advance: Advance) -> TransferStats:
    """Unpack ``paths`` of ``build_dir`` into the host folder ``dest``: one ``tar -x`` per share."""
    shares = split(build_dir, sorted(paths), STREAMS)
    if len(shares) <= 1:
        return _send_share(host, build_dir, dest, paths, advance)
    stats = TransferStats()
    with ThreadPoolExecutor(len(shares), thread_name_prefix="tar-stream") as pool:
        futures = [pool.submit(_send_share, host, build_dir, dest, share, advance) for share in shares]
    for future in futures:
        share_stats = future.result()  # the first share's error first
        stats.files_sent += share_stats.files_sent
        stats.bytes_sent += share_stats.bytes_sent
        stats.requests += share_stats.requests
    return stats


def split(build_dir: Path, paths: list[str], parts: int) -> list[list[str]]:
    """``paths`` (sorted) cut into up to ``parts`` runs of about equal bytes; small sends stay whole.

    Runs of neighbouring paths share few folders, so the unpacking processes seldom race to
    create the same one (GNU tar takes a folder made meanwhile by another as it is).
    """
    sizes = [(build_dir / p).stat().st_size for p in paths]
    total = sum(sizes)
    if len(paths) < SPLIT_FILES or total < SPLIT_BYTES:
        return [paths] if paths else []
    shares: list[list[str]] = [[]]
    done = 0
    for path, size in zip(paths, sizes, strict=True):
        if done >= total * len(shares) / parts and len(shares) < parts:
            shares.append([])
        shares[-1].append(path)
        done += size
    return [share for share in shares if share]


def _send_share(
    host: SSHHost, build_dir: Path, dest: str, paths: list[str], advance: Advance
) -> TransferStats:
    stats = TransferStats()
    if not paths:
        return stats
    step = f"upload {len(paths)} files (one tar stream)"
    with host.step(step):
        channel = host.transport().open_session(timeout=host.cfg.connect_timeout)
        channel.settimeout(host.io_timeout)
        try:
            channel.exec_command(_command(dest))  # nosec B601: constant script, path shlex-quoted
            archive = Archive(build_dir, paths, host.cfg.file_mode, advance)
            cut = _stream(channel, archive)
            err = _read_all(channel.recv_stderr)
            status = channel.recv_exit_status()
        finally:
            channel.close()
    if status != 0:
        raise _command_failed(host.where, step, status, err.decode(errors="replace"))
    if cut is not None:  # tar exited 0 but did not read everything: treat as a dropped stream
        raise translate(host.where, host.endpoint, step, None, cut)
    stats.files_sent, stats.bytes_sent, stats.requests = len(paths), archive.payload, 1
    return stats


def _command(dest: str) -> str:
    return shlex.join(["sh", "-c", UNPACK, "sitedeploy", dest])


def _stream(channel: paramiko.Channel, archive: Archive) -> BaseException | None:
    """Send the archive into ``channel``; the send error if the host hung up.

    A send that fails because the remote tar stopped reading (disk full, say) is not the
    error to report: tar's exit status and stderr say why, so they are read first.
    """
    pieces = ReadAhead(archive.pieces())
    try:
        for piece in pieces:
            channel.sendall(memoryview(piece))  # type: ignore[arg-type]  # sliced without copies
    except (OSError, EOFError, paramiko.SSHException) as exc:
        if isinstance(exc, FileNotFoundError | PermissionError) and exc.filename:
            raise  # a local file: translated by the caller's step
        return exc
    finally:
        pieces.close()
        if not channel.closed:
            channel.shutdown_write()
    return None
