"""One server of an SSH target: a reused connection, remote commands, SFTP file operations.

Every paramiko, SFTP and socket error is translated here, in :meth:`SSHHost.step`, by two
tables (exception type, then errno) into a one-line :class:`TargetError` of its kind
(``Unreachable``, ``AuthenticationFailed``, ``PermissionDenied``, ``NoSpace``, ...) naming the
target, the host and the step, so nothing above this module sees a third-party exception.
Any other exception raised in a step is a bug and propagates as one.

Remote commands are POSIX ``sh -c SCRIPT sitedeploy ARG...``: the scripts are constants of
this package and every argument is passed through ``shlex.quote``; paths from a build reach a
remote shell only on stdin, NUL-separated, read by ``xargs -0``. No string built from input is
ever parsed by a shell.
"""

from __future__ import annotations

import errno
import gzip
import os
import secrets
import shlex
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko

from ...config import SSHTargetConfig
from ...errors import (
    AuthenticationFailed,
    NoSpace,
    NotFound,
    PermissionDenied,
    ServerError,
    SitedeployError,
    TargetError,
    TimedOut,
    Unreachable,
)
from .connect import Endpoint, connect, resolve

CHUNK = 256 * 1024
COMPRESS_FROM = 16 * 1024
"""State files this big go gzipped through a remote command (they are JSON: 3x smaller)."""

# $1 path, $2 temp name beside it, $3 mode; stdin: gzip data. gzip checks its CRC, so a cut
# stream fails before the rename and ``path`` keeps its old content.
WRITE_GZIP = """mkdir -p -- "$(dirname -- "$1")" && gzip -dc > "$2" && chmod "$3" -- "$2" &&
mv -f -- "$2" "$1" || { rm -f -- "$2"; exit 1; }"""
_NOT_FOUND = (errno.ENOENT,)
_DENIED = (errno.EACCES, errno.EPERM)


def temp_name(path: str) -> str:
    """A name beside ``path`` that no other writer uses (the pid alone can repeat per host)."""
    head, _, tail = path.rpartition("/")
    return f"{head}/.{tail}.{os.getpid()}.{secrets.token_hex(4)}.tmp" if head else f".{tail}.tmp"


class RemoteCommandError(TargetError):
    """A remote command exited non-zero; the message ends with what it said."""


class RemoteNoSpace(RemoteCommandError, NoSpace):
    """A remote command ran out of disk."""


class RemotePermissionDenied(RemoteCommandError, PermissionDenied):
    """A remote command was not allowed to touch a path."""


class RemoteDropped(RemoteCommandError, Unreachable):
    """The connection went away while a remote command ran."""


class SSHHost:
    """One host; opened on first use, reused for every later step, reopened if it dropped."""

    def __init__(self, target: str, entry: str, cfg: SSHTargetConfig) -> None:
        self.target = target
        self.cfg = cfg
        self.endpoint: Endpoint = resolve(entry, cfg)
        self.label = entry
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.Lock()
        self.io_timeout = max(60.0, 6 * cfg.connect_timeout)

    @property
    def where(self) -> str:
        return f"target '{self.target}': host {self.label}"

    # --- connection -----------------------------------------------------------------------

    def transport(self) -> paramiko.Transport:
        with self._lock:
            transport = self._client.get_transport() if self._client else None
            if transport is None or not transport.is_active():
                self._close_unlocked()
                with self.step("connect"):
                    self._client = connect(self.where, self.endpoint, self.cfg)
                transport = self._client.get_transport()
                assert transport is not None
            return transport

    @property
    def sftp(self) -> paramiko.SFTPClient:
        """The host's main SFTP session (used by one thread at a time)."""
        transport = self.transport()
        if self._sftp is None:  # reset whenever the connection is reopened
            self._sftp = self.open_sftp(transport)
        return self._sftp

    def open_sftp(self, transport: paramiko.Transport | None = None) -> paramiko.SFTPClient:
        """An extra SFTP session on the same connection, for a parallel upload worker."""
        with self.step("open an SFTP session"):
            sftp = paramiko.SFTPClient.from_transport(transport or self.transport())
            if sftp is None:
                raise EOFError("no SFTP session")
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(self.io_timeout)
            return sftp

    def close(self) -> None:
        with self._lock:
            self._close_unlocked()

    def _close_unlocked(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        if self._client is not None:
            self._client.close()
        self._sftp = None
        self._client = None

    # --- remote commands ------------------------------------------------------------------

    def sh(self, step: str, script: str, *args: str, stdin: bytes = b"") -> str:
        """Run a constant POSIX sh ``script`` with quoted ``args``; its stdout, or raise."""
        command = shlex.join(["sh", "-c", script, "sitedeploy", *args])
        with self.step(step):
            channel = self.transport().open_session(timeout=self.cfg.connect_timeout)
            channel.settimeout(self.io_timeout)
            try:
                channel.exec_command(command)  # nosec B601: constant script, args shlex-quoted
                if stdin:
                    channel.sendall(stdin)
                channel.shutdown_write()
                out = _read_all(channel.recv)
                err = _read_all(channel.recv_stderr)
                status = channel.recv_exit_status()
            finally:
                channel.close()
        if status != 0:
            raise _command_failed(self.where, step, status, err.decode(errors="replace"))
        return out.decode(errors="surrogateescape")

    # --- SFTP file operations -------------------------------------------------------------

    def read_file(self, path: str) -> bytes | None:
        with self.step(f"read {path}", path):
            try:
                with self.sftp.open(path, "rb") as f:
                    f.prefetch()
                    return f.read()
            except OSError as exc:
                if exc.errno in _NOT_FOUND:
                    return None
                raise

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Replace ``path`` atomically: temp name, then posix-rename over it."""
        if len(data) >= COMPRESS_FROM and self._write_compressed(path, data, mode):
            return
        with self.step(f"write {path}", path):
            tmp = temp_name(path)
            try:
                self._put(self.sftp, tmp, data, mode)
            except FileNotFoundError:
                self.sh(f"create the folder of {path}", 'mkdir -p -- "$1"', os.path.dirname(path))
                self._put(self.sftp, tmp, data, mode)
            self.sftp.posix_rename(tmp, path)

    def _write_compressed(self, path: str, data: bytes, mode: int) -> bool:
        """Send ``data`` gzipped for ``gzip -dc`` on the host (a release's manifest, ~800 KB of
        JSON for 5,000 pages, shrinks to a third); False, nothing replaced, if that failed."""
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        try:
            self.sh(f"write {path}", WRITE_GZIP, path, temp_name(path), format(mode, "o"), stdin=packed)
        except RemoteCommandError:  # no gzip, say: the plain SFTP write follows
            return False
        return True

    def upload(self, sftp: paramiko.SFTPClient, source: Path, path: str, mode: int, replace: bool) -> None:
        """Send ``source`` to ``path``, never writing into an existing (maybe shared) inode.

        A new path is created exclusively (``O_EXCL``) in place; an existing one, which may be
        a hard link into older releases, is written under a temp name and renamed over it.
        """
        with self.step(f"upload {path}", path):
            if not replace:
                try:
                    self._send(sftp, source, path, mode, "xb")
                    return
                except OSError as exc:  # exists after all (a stray file of the base release)
                    if exc.errno in _DENIED:
                        raise
            tmp = temp_name(path)
            self._send(sftp, source, tmp, mode, "wb")
            sftp.posix_rename(tmp, path)

    def _put(self, sftp: paramiko.SFTPClient, path: str, data: bytes, mode: int) -> None:
        with sftp.open(path, "wb") as f:
            f.set_pipelined(True)
            f.write(data)
            check_writes(f)
            f.chmod(mode)

    def _send(self, sftp: paramiko.SFTPClient, source: Path, path: str, mode: int, how: str) -> None:
        with source.open("rb") as src, sftp.open(path, how) as f:
            f.set_pipelined(True)
            while chunk := src.read(CHUNK):
                f.write(chunk)
            check_writes(f)
            f.chmod(mode)

    def readlink(self, path: str) -> str | None:
        with self.step(f"read the link {path}", path):
            try:
                return self.sftp.readlink(path)
            except OSError as exc:
                if exc.errno in _NOT_FOUND:
                    return None
                raise

    def is_dir(self, path: str) -> bool:
        with self.step(f"look at {path}", path):
            try:
                mode = self.sftp.stat(path).st_mode
            except FileNotFoundError:
                return False
            return mode is not None and (mode & 0o170000) == 0o040000

    # --- errors ---------------------------------------------------------------------------

    @contextmanager
    def step(self, step: str, path: str | None = None) -> Iterator[None]:
        """Translate what paramiko or the network raises during ``step`` into the TargetError
        of its kind. Any other exception is a bug and propagates unchanged."""
        try:
            yield
        except SitedeployError:
            raise
        except MAPPED as exc:
            raise translate(self.where, self.endpoint, step, path, exc) from exc


def check_writes(f: paramiko.SFTPFile) -> None:
    """Raise the first failed pipelined write (a full disk): paramiko reads their answers for
    no one and drops the errors, so a truncated file went live. Read them here, before any
    other request on the session (which would consume and drop them)."""
    f.flush()
    pending = getattr(f, "_reqs", None)
    while pending:
        f.sftp._read_response(pending.popleft())  # type: ignore[attr-defined]  # raises OSError


MAPPED = (paramiko.SSHException, OSError, EOFError)
"""What paramiko, SFTP and sockets raise (NoValidConnectionsError and socket.timeout are
OSErrors; paramiko raises EOFError when the server goes away)."""

_DROPPED = (
    "{where}: connection dropped during {step} ({detail}); the live release is unchanged, "
    "run the deploy again"
)
# paramiko and socket exception types, most specific first: (types, class, message).
_TYPES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], type[TargetError], str], ...] = (
    (
        paramiko.PasswordRequiredException,
        AuthenticationFailed,
        "{where}: the private key is encrypted; load it with ssh-add",
    ),
    (
        paramiko.AuthenticationException,
        AuthenticationFailed,
        "{where}: authentication failed as user '{user}' at {address} ({detail}); check user and "
        "key_file, or that the key is in ssh-agent and in the server's authorized_keys",
    ),
    (
        (paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError),
        Unreachable,
        "{where}: unreachable during {step}: {address} refused the connection; is sshd running "
        "and the port right?",
    ),
    (socket.gaierror, Unreachable, "{where}: unknown host name {hostname!r} ({strerror}); check hosts"),
    (TimeoutError, TimedOut, "{where}: timed out during {step} ({address}); is it reachable?"),
    ((EOFError, paramiko.SSHException, ConnectionError), Unreachable, _DROPPED),
)
# errno of an OSError (SFTP maps its status codes to these) -> (class, message).
_ERRNOS: dict[int, tuple[type[TargetError], str]] = {
    errno.EACCES: (
        PermissionDenied,
        "{where}: permission denied on {path} during {step}; check the owner and mode of path on the server",
    ),
    errno.EROFS: (PermissionDenied, "{where}: read-only filesystem at {path} during {step}"),
    errno.ENOSPC: (NoSpace, "{where}: disk full during {step}; free some space on the server"),
    errno.EDQUOT: (NoSpace, "{where}: disk quota exceeded during {step}; free some space on the server"),
    errno.ENOENT: (NotFound, "{where}: {path} does not exist ({step})"),
    errno.EHOSTUNREACH: (Unreachable, "{where}: unreachable ({address}: {strerror})"),
    errno.ENETUNREACH: (Unreachable, "{where}: unreachable ({address}: {strerror})"),
    errno.EHOSTDOWN: (Unreachable, "{where}: unreachable ({address}: {strerror})"),
}
_ERRNOS[errno.EPERM] = _ERRNOS[errno.EACCES]
_SFTP_FAILURE = "{where}: the server refused to {step} ({detail}); disk full, quota or read-only filesystem?"


def translate(where: str, ep: Endpoint, step: str, path: str | None, exc: BaseException) -> TargetError:
    """The one-line TargetError for a paramiko, socket or SFTP exception (see the tables)."""
    facts = {
        "where": where,
        "step": step,
        "address": f"{ep.hostname}:{ep.port}",
        "hostname": ep.hostname,
        "user": ep.user,
        "detail": str(exc) or type(exc).__name__,
        "strerror": getattr(exc, "strerror", None) or exc,
        "path": path or getattr(exc, "filename", None),
    }
    if isinstance(exc, OSError) and str(exc) == "Socket is closed":  # paramiko: the channel is gone
        return Unreachable(_DROPPED.format(**facts))
    for types, cls, message in _TYPES:
        if isinstance(exc, types):
            return cls(message.format(**facts))
    if isinstance(exc, OSError) and exc.errno in _ERRNOS:
        cls, message = _ERRNOS[exc.errno]
        return cls(message.format(**facts))
    if isinstance(exc, OSError) and (str(exc) == "Failure" or exc.errno is None):
        return ServerError(_SFTP_FAILURE.format(**facts))  # OpenSSH's sftp-server maps ENOSPC here
    # An OSError of no known kind: most often the network, so the agent tries again.
    return TargetError(f"{where}: {step} failed ({facts['strerror']})", retryable=True)


def _command_failed(where: str, step: str, status: int, stderr: str) -> RemoteCommandError:
    said = " ".join(stderr.strip().splitlines()[-1:])[:300] or f"exit status {status}"
    if "No space left" in stderr or "Disk quota exceeded" in stderr:
        return RemoteNoSpace(f"{where}: disk full during {step} ({said}); free some space")
    if "Permission denied" in stderr or "Operation not permitted" in stderr:
        return RemotePermissionDenied(
            f"{where}: permission denied during {step} ({said}); "
            "check the owner and mode of path on the server"
        )
    if status == -1:
        return RemoteDropped(f"{where}: connection dropped during {step}; run the deploy again")
    return RemoteCommandError(f"{where}: {step} failed on the server: {said}", retryable=True)


def _read_all(recv: Callable[[int], bytes]) -> bytes:
    chunks = []
    while data := recv(65536):
        chunks.append(data)
    return b"".join(chunks)
