"""Turn a list of source images into outcomes: cache hits here, the misses in the sandbox.

The deployer hashes each source (bytes, never pixels) and looks its key up in the cache; a
warm run finds every key there and starts nothing. The misses go, largest first, to one
sandboxed worker (:mod:`.confined`, :mod:`.worker`) whose pool has as many processes as
there are cores and memory for; the workers store each entry in the cache themselves, so
the encoded bytes never travel back through a pipe and the parent only learns each
:class:`Outcome`, checked like everything the worker says.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ..errors import BuildError
from ..sandbox import Mode
from .cache import VariantCache, file_cache_key
from .confined import Worker
from .model import MAX_SOURCE_BYTES, Outcome, Rendered, RenderSpec, too_large

WORKER_OVERHEAD = 64 * 1024**2
"""A worker's memory besides the decoded pixels: Python, Pillow, codecs, encode buffers."""


@dataclass(frozen=True)
class Job:
    """A cache miss: the source to render and the key to store it under."""

    source: Path
    key: str


@dataclass
class Results:
    outcomes: dict[Path, tuple[str, Outcome]]
    """Per source: its cache key and what became of it."""
    hits: int = 0
    decoded: int = 0
    uncached: dict[Path, Rendered] | None = None
    """Renders the cache could not store (disk full); their bytes are kept in memory."""


def cpu_count() -> int:
    """Cores this process may use (a container's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Renderer:
    """The images stage's renders over one input folder; the worker starts on the first miss
    and stays until the stage is done with the cache (see :meth:`evict`)."""

    def __init__(self, inputs: Path, cache: VariantCache, mode: Mode) -> None:
        self._inputs, self._cache, self._mode = inputs, cache, mode
        self._worker: Worker | None = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._worker is not None:
            self._worker.close()

    def render_all(self, sources: list[Path], spec: RenderSpec, advance: Callable[[int], None]) -> Results:
        """Outcomes for every source, rendering only those the cache does not hold."""
        results = Results({}, uncached={})
        jobs: list[Job] = []
        for source in sources:
            miss = self._lookup(source, spec, results)
            if miss is None:
                advance(1)
            else:
                jobs.append(Job(source, miss))
        if jobs:
            self._render(jobs, spec, results, advance)
        return results

    def _lookup(self, source: Path, spec: RenderSpec, results: Results) -> str | None:
        """The key of a miss; None when the outcome is known already (a hit, or an image that
        cannot be rendered), and recorded in ``results``."""
        try:
            size = source.stat().st_size
            key = file_cache_key(source, spec) if size <= MAX_SOURCE_BYTES else ""
        except OSError as exc:  # unreadable: warn like any broken image; never cached
            results.outcomes[source] = ("", Outcome("error", reason=f"cannot read ({exc.strerror})"))
            return None
        if not key:  # too big to read at all: never hashed, decoded or cached
            results.outcomes[source] = ("", Outcome("error", reason=too_large(size)))
            return None
        cached = self._cache.get(key)
        if cached is None:
            return key
        results.outcomes[source] = (key, cached)
        results.hits += 1
        return None

    def _render(
        self, jobs: list[Job], spec: RenderSpec, results: Results, advance: Callable[[int], None]
    ) -> None:
        # Largest first, so two big photos do not end up last on one core while the other idles.
        ordered = sorted(jobs, key=lambda job: -job.source.stat().st_size)
        workers = min(cpu_count(), len(ordered), workers_for_memory(spec))
        self._worker = Worker(self._inputs, self._cache.base, self._mode)
        for index, rendered in self._worker.render([(j.source, j.key) for j in ordered], spec, workers):
            job = ordered[index]
            results.outcomes[job.source] = (job.key, self._stored(job, rendered))
            results.decoded += 1
            if rendered.blobs and results.uncached is not None:
                results.uncached[job.source] = rendered
            advance(1)

    def _stored(self, job: Job, rendered: Rendered) -> Outcome:
        """The outcome, once the cache is seen to hold the variants the worker says it stored."""
        outcome = rendered.outcome
        if rendered.blobs or all(v.is_original for v in outcome.variants):
            return outcome
        if self._cache.get(job.key) != outcome:
            raise BuildError(
                f"images: the image worker reported {job.source.name} as cached, but the cache "
                f"entry {job.key[:12]}… is missing or different; build again"
            )
        return outcome

    def evict(self, max_bytes: int) -> None:
        """Trim the cache to ``max_bytes`` (after the stage has linked what it needs from it)."""
        if self._worker is not None:
            self._worker.evict(max_bytes)


def worker_bytes(spec: RenderSpec) -> int:
    """What one worker may need at most: ``max_pixels`` decoded at 4 bytes a pixel (Pillow
    keeps RGB as RGBX), a third more for the first resize, plus the interpreter itself."""
    return spec.max_pixels * 4 * 4 // 3 + WORKER_OVERHEAD


def workers_for_memory(spec: RenderSpec) -> int:
    """As many workers as the memory available now can hold at their worst, at least one."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return cpu_count()
    return max(1, available // worker_bytes(spec))
