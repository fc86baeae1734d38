"""The deployer's side of the image worker: start it in the build sandbox, talk JSON to it.

One worker process per images stage (and one per prefetch), with its own process pool
inside, so the sandbox costs one ``bwrap`` start per site, not one per image. It runs as a
build step runs (:func:`sitedeploy.sandbox.prepare`: the same argv builder, environment
allow-list and ``[build] sandbox`` setting, the same one-line refusal when bwrap is missing):

- read-only: the system, the Python installation, sitedeploy's own package, and ``inputs``
  (the built site, or the checked-out source while prefetching);
- writable: the variant cache and a private work folder (HOME, TMPDIR);
- no network, no environment beyond the allow-list.

Everything it sends back is data, checked before use (:mod:`.wire`): a worker that a hostile
image took over can make its own image's variants wrong or fail the build, and nothing else
(the cache it can poison is read by the parent through :mod:`.safefs`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .. import sandbox
from ..errors import BuildError
from ..sandbox import Mode
from ..sandbox.hints import namespace_hint
from .model import Rendered, RenderSpec
from .wire import WireError, rendered_from_json, spec_to_json

WORKER_COMMAND: tuple[str, ...] = ("-P", "-m", "sitedeploy.images.worker")
"""What the deployer's own interpreter runs; ``tests/security/test_image_secrets.py`` puts a
probe in front of it to show what code in the worker can and cannot read."""
MAX_LINE = 256 * 1024**2
"""The longest result line accepted: one image's variants in base64, when the cache is full."""
TIMEOUT = 3600.0
"""A worker still running after this long is killed, as a build step would be: a decoder
stuck in a loop on a hostile image must not hold the deployer for ever."""
_LOG_TAIL = 8192
_EXIT_SECONDS = 60.0
_PACKAGE = Path(__file__).resolve().parent.parent


class Worker:
    """One sandboxed image worker: :meth:`render` once, :meth:`evict` maybe, then close."""

    def __init__(self, inputs: Path, cache_dir: Path, mode: Mode) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Absolute, real paths: the worker runs elsewhere, and binds are made at these paths.
        cache_dir, inputs = cache_dir.resolve(), inputs.resolve()
        self._cache_dir = cache_dir
        # A private folder in the system's temp dir, not in the cache: the worker can write
        # the cache, and must not be able to swap the folder that holds its successors' HOME.
        self._work = Path(tempfile.mkdtemp(prefix="sitedeploy-images-"))
        self._stdin_lock = threading.Lock()
        self._stopping = False
        # The log is the parent's own unnamed file: the worker writes it, but cannot swap it.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        try:
            self._proc = _start(inputs, cache_dir, self._work, mode, self._log)
        except BaseException:
            self._cleanup()
            raise
        self._deadline = threading.Timer(TIMEOUT, self._proc.kill)
        self._deadline.daemon = True
        self._deadline.start()

    def __enter__(self) -> Worker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def render(
        self, jobs: Sequence[tuple[Path, str]], spec: RenderSpec, workers: int
    ) -> Iterator[tuple[int, Rendered]]:
        """Each job's index and what became of it, in the order they finish."""
        request = {
            "cache": str(self._cache_dir),
            "spec": spec_to_json(spec),
            "workers": workers,
            "jobs": [[str(source.resolve()), key] for source, key in jobs],
        }
        self._send(request)
        seen: set[int] = set()
        while len(seen) < len(jobs):
            message = self._receive({"job", "outcome", "blobs"})
            if message is None:
                return  # stopped: the jobs still queued were dropped
            index = message["job"]
            if type(index) is not int or not 0 <= index < len(jobs) or index in seen:
                raise self._failed(f"sent a result for no job ({index!r})", kill=True)
            seen.add(index)
            try:
                yield index, rendered_from_json(message["outcome"], message["blobs"])
            except WireError as exc:
                raise self._failed(f"sent a malformed result ({exc})", kill=True) from None

    def evict(self, max_bytes: int) -> int:
        """Have the worker trim the cache (it is the one with write access); entries deleted."""
        self._send({"evict": max_bytes})
        message = self._receive({"evicted"})
        if message is None or type(message["evicted"]) is not int:
            raise self._failed("did not say what it evicted", kill=True)
        return int(message["evicted"])

    def stop(self) -> None:
        """End of input: the worker drops queued jobs, finishes running ones, and exits."""
        with self._stdin_lock:
            self._stopping = True
            if self._proc.stdin is not None and not self._proc.stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    self._proc.stdin.close()

    def close(self) -> None:
        self.stop()
        try:
            self._proc.wait(timeout=_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        finally:
            self._deadline.cancel()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._cleanup()

    def _cleanup(self) -> None:
        self._log.close()
        shutil.rmtree(self._work, ignore_errors=True)  # never follows links planted there

    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._stdin_lock:
            try:
                assert self._proc.stdin is not None  # nosec B101: Popen was given stdin=PIPE
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError):  # exited, or stopped by another thread
                if self._stopping:
                    return
                raise self._failed("exited before it read its jobs", kill=False) from None

    def _receive(self, keys: set[str]) -> dict[str, Any] | None:
        """The next message, with exactly ``keys``; None at the end of output after a stop."""
        assert self._proc.stdout is not None  # nosec B101: Popen was given stdout=PIPE
        line = self._proc.stdout.readline(MAX_LINE + 1)
        if not line:
            if self._stopping:
                return None
            raise self._failed("stopped before it finished", kill=False)
        try:
            if len(line) > MAX_LINE or not line.endswith(b"\n"):
                raise ValueError("a line over the size limit")
            message = json.loads(line)
        except ValueError as exc:
            raise self._failed(f"sent something that is not a result ({exc})", kill=True) from None
        if not isinstance(message, dict) or set(message) != keys:
            raise self._failed(f"sent an unexpected message (expected {sorted(keys)})", kill=True)
        return message

    def _failed(self, what: str, *, kill: bool) -> BuildError:
        """A BuildError naming the failure and the last line of the worker's log. A worker
        that sent nonsense is killed at once: it may be running a hostile image's code."""
        if kill:
            self._proc.kill()
        self.stop()
        try:
            code = self._proc.wait(timeout=_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        tail = self._log_tail()
        if not self._deadline.is_alive():
            what = f"took over {TIMEOUT / 3600:.0f} hour; stopped"
        last = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
        said = (f": {last[:300]}" if last else "") + namespace_hint(tail.splitlines())
        return BuildError(
            f"images: the sandboxed image worker {what} (exit code {code}){said}", log_tail=tail
        )

    def _log_tail(self) -> str:
        self._log.seek(0, 2)
        size = self._log.tell()
        self._log.seek(max(0, size - _LOG_TAIL))
        return self._log.read(_LOG_TAIL).decode("utf-8", "replace")


def _start(inputs: Path, cache_dir: Path, work: Path, mode: Mode, log: Any) -> subprocess.Popen[bytes]:
    python = Path(sys.executable)
    step = sandbox.Step(
        [str(python), *WORKER_COMMAND],
        work,
        cwd=work,
        read_only=[inputs, _PACKAGE],
        writable=[cache_dir],
        # Installed or editable, the interpreter finds sitedeploy by itself; this covers a
        # checkout on PYTHONPATH. In the sandbox that folder holds the package alone.
        env={"PYTHONPATH": str(_PACKAGE.parent)},
    )
    argv, env = sandbox.prepare(step, mode, python)
    # A list argv and no shell; with bwrap the environment is set inside (--clearenv).
    return subprocess.Popen(  # nosec B603: argv list, no shell, command built here
        argv, cwd=work, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
    )
