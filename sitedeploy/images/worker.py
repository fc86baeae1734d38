"""The image worker: ``python -m sitedeploy.images.worker``, run inside the build sandbox.

Decoding is where a hostile image would strike (a Pillow, libjpeg, libpng, libwebp or
libavif bug), so it happens here, confined like a build (:mod:`.confined` starts it): the
source images read-only, the variant cache and a work folder writable, no network, an empty
environment. It talks to the deployer over its standard streams, one JSON object a line:

    stdin   {"cache": …, "spec": {…}, "workers": 2, "jobs": [[source, key], …]}
            {"evict": max_bytes}            (optional, once the deployer has used the entries)
            end of input                    stop: queued jobs are dropped, running ones finish
    stdout  {"job": i, "outcome": {…}, "blobs": null | {digest: base64}}   per job, as done
            {"evicted": n}

Each job is rendered and stored in the cache here (the encoded bytes never cross the pipe,
unless the cache cannot store them: a full disk); the pool has one process per core the
deployer granted, forked from this one after Pillow is imported, largest images first.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from .cache import VariantCache
from .model import Rendered, RenderSpec
from .variants import render_file
from .wire import blobs_to_json, outcome_to_json, spec_from_json


@dataclass(frozen=True)
class Job:
    """A cache miss: the source to render and the key to store it under."""

    source: Path
    key: str


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    request = json.loads(stdin.readline())
    cache = VariantCache(Path(request["cache"]))
    spec = spec_from_json(request["spec"])
    jobs = [Job(Path(source), str(key)) for source, key in request["jobs"]]
    send = _sender(stdout)
    commands = _Commands(stdin)
    _render(jobs, spec, cache, int(request["workers"]), commands, send)
    for command in iter(commands.queue_get, None):
        if "evict" in command:
            send({"evicted": cache.evict(int(command["evict"]))})
    return 0


def _render(
    jobs: list[Job],
    spec: RenderSpec,
    cache: VariantCache,
    workers: int,
    commands: _Commands,
    send: Callable[[dict[str, Any]], None],
) -> None:
    if workers <= 1:  # not worth a pool
        commands.start()
        for index, job in enumerate(jobs):
            if commands.closed.is_set():
                return
            send(_result(index, render_and_store(job, spec, cache)))
        return
    # Each process owns a core, so libaom gets one thread each instead of oversubscribing.
    spec = replace(spec, avif_threads=1)
    context = _fork_context()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_detach) as pool:
        futures: dict[Future[Rendered], int] = {
            pool.submit(render_and_store, job, spec, cache): index for index, job in enumerate(jobs)
        }
        # Only now, after the pool's processes were forked: no thread of ours is copied.
        commands.start(on_close=lambda: [f.cancel() for f in futures])
        for future in as_completed(futures):
            if not future.cancelled():
                send(_result(futures[future], future.result()))


def render_and_store(job: Job, spec: RenderSpec, cache: VariantCache) -> Rendered:
    """Render one source and store it; the bytes come back only when the cache cannot hold them."""
    rendered = render_file(job.source, spec)
    if rendered.outcome.reason.startswith("cannot read"):  # not the image's fault, so not cached
        return rendered
    if cache.put(job.key, rendered):
        rendered.blobs = {}
    return rendered


def _result(index: int, rendered: Rendered) -> dict[str, Any]:
    blobs = blobs_to_json(rendered.blobs) if rendered.blobs else None
    return {"job": index, "outcome": outcome_to_json(rendered.outcome), "blobs": blobs}


def _sender(stream: IO[bytes]) -> Callable[[dict[str, Any]], None]:
    def send(message: dict[str, Any]) -> None:
        stream.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        stream.flush()

    return send


class _Commands:
    """The deployer's later lines, read on a thread so that the end of input can stop a render."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lines: list[dict[str, Any] | None] = []
        self._ready = threading.Condition()
        self.closed = threading.Event()
        self._on_close: Callable[[], object] = lambda: None

    def start(self, on_close: Callable[[], object] = lambda: None) -> None:
        self._on_close = on_close
        threading.Thread(target=self._read, name="commands", daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            self._push(json.loads(line))
        self.closed.set()
        self._on_close()
        self._push(None)

    def _push(self, item: dict[str, Any] | None) -> None:
        with self._ready:
            self._lines.append(item)
            self._ready.notify()

    def queue_get(self) -> dict[str, Any] | None:
        with self._ready:
            self._ready.wait_for(lambda: bool(self._lines))
            return self._lines.pop(0)


def _fork_context() -> Any:
    """Fork, not a fork server: this process is single-threaded when the pool starts and has
    Pillow imported already, so workers start at once and share its pages."""
    import multiprocessing

    return multiprocessing.get_context("fork")


def _detach() -> None:
    """A pool process lets go of the pipes to the deployer: only this process speaks for the
    worker, and the deployer sees the end of output as soon as this one exits."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)


if __name__ == "__main__":
    sys.exit(main())
