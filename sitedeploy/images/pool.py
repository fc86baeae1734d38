"""Turn a list of source images into outcomes: cache hits first, the misses on a process pool.

Workers read the source, render it and store the entry in the cache themselves, so the
encoded bytes never travel back through a pipe; the parent only learns each
:class:`Outcome`. A warm run finds every key in the cache and never starts the pool.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from .cache import VariantCache, file_cache_key
from .variants import MAX_SOURCE_BYTES, Outcome, Rendered, RenderSpec, render_file, too_large

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


def render_all(
    sources: list[Path], spec: RenderSpec, cache: VariantCache, advance: Callable[[int], None]
) -> Results:
    """Outcomes for every source, rendering only those the cache does not hold."""
    results = Results({}, uncached={})
    jobs: list[Job] = []
    for source in sources:
        try:
            size = source.stat().st_size
            key = file_cache_key(source, spec) if size <= MAX_SOURCE_BYTES else ""
        except OSError as exc:  # unreadable: warn like any broken image; never cached
            results.outcomes[source] = ("", Outcome("error", reason=f"cannot read ({exc.strerror})"))
            advance(1)
            continue
        if not key:  # too big to read at all: never hashed, decoded or cached
            results.outcomes[source] = ("", Outcome("error", reason=too_large(size)))
            advance(1)
            continue
        cached = cache.get(key)
        if cached is None:
            jobs.append(Job(source, key))
        else:
            results.outcomes[source] = (key, cached)
            results.hits += 1
            advance(1)
    for job, rendered in _run(jobs, spec, cache, advance):
        results.outcomes[job.source] = (job.key, rendered.outcome)
        results.decoded += 1
        if rendered.blobs and results.uncached is not None:
            results.uncached[job.source] = rendered
    return results


def _run(
    jobs: list[Job], spec: RenderSpec, cache: VariantCache, advance: Callable[[int], None]
) -> list[tuple[Job, Rendered]]:
    workers = min(cpu_count(), len(jobs), workers_for_memory(spec))
    if workers <= 1:  # not worth a process start-up
        done = []
        for job in jobs:
            done.append((job, render_and_store(job, spec, cache)))
            advance(1)
        return done
    # Each process owns a core, so libaom gets one thread each instead of oversubscribing.
    spec = replace(spec, avif_threads=1)
    with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
        # Largest first, so two big photos do not end up last on one core while the other idles.
        ordered = sorted(jobs, key=lambda job: -job.source.stat().st_size)
        futures = {pool.submit(render_and_store, job, spec, cache): job for job in ordered}
        finished = []
        for future in as_completed(futures):
            finished.append((futures[future], future.result()))
            advance(1)
    return sorted(finished, key=lambda item: str(item[0].source))


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


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers come from a fork server, not a fork of this process.

    The agent runs threads (webhook, metrics); forking a threaded process can copy a lock some
    other thread holds and deadlock the child. The fork server is a clean single-threaded
    process that has already imported Pillow, so workers still start in milliseconds.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["sitedeploy.images.variants", "sitedeploy.images.cache"])
    return context


def render_and_store(job: Job, spec: RenderSpec, cache: VariantCache) -> Rendered:
    """Runs in a worker: render one source, store it, return the outcome without its bytes."""
    rendered = render_file(job.source, spec)
    if rendered.outcome.reason.startswith("cannot read"):  # not the image's fault, so not cached
        return rendered
    if cache.put(job.key, rendered):
        rendered.blobs = {}
    return rendered
