"""Encode a site's images while MkDocs builds it.

MkDocs is one Python process: on a machine with two or more cores it leaves the others idle for
the whole build, and an images stage that started only after it would wait for it. The variant cache is
addressed by the image's bytes and the render settings, and MkDocs copies images unchanged, so
the source images can be rendered into the cache *during* the build; the images stage then
finds every entry there and only writes variants and markup. The cold build's image work
overlaps the MkDocs build instead of following it.

Only images a page can use are rendered ahead: raster files under the site's folder whose
name appears in some Markdown or HTML file of the site (a cheap textual test, no parsing); an
image nobody mentions costs nothing. The work is done as the images stage does it: one
sandboxed worker (:mod:`.confined`) with a process per core (and per what memory allows),
largest images first, each storing its entry in the cache; the deployer only hashes the
files. A failed build stops the prefetch: queued images are dropped, running ones finish.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import ImagesConfig
from ..sandbox import Mode
from . import spec_from
from .cache import VariantCache, file_cache_key
from .confined import Worker
from .model import MAX_SOURCE_BYTES, RenderSpec
from .pool import Job, cpu_count, workers_for_memory

RASTER = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".gif")
_MENTION = re.compile(rb"[\w.%-]+\.(?:jpe?g|png|webp|avif|gif)", re.IGNORECASE)
_TEXT = (".md", ".markdown", ".html", ".htm")


@contextmanager
def prefetching(
    site_src: Path, settings: ImagesConfig, cache_dir: Path, sandbox: Mode = "bwrap"
) -> Iterator[None]:
    """Render the site's images into the cache while the block runs; wait for them after it."""
    if not settings.enabled:
        yield
        return
    prefetch = Prefetch(site_src, spec_from(settings), VariantCache(cache_dir), sandbox)
    try:
        yield
    except BaseException:
        prefetch.stop()
        raise
    prefetch.join()


def mentioned_images(site_src: Path) -> list[Path]:
    """Raster files under ``site_src`` whose file name some Markdown or HTML file mentions."""
    images: list[Path] = []
    names: set[str] = set()
    for path in sorted(site_src.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in RASTER:
            images.append(path)
        elif suffix in _TEXT:
            names.update(m.decode(errors="replace").lower() for m in _MENTION.findall(path.read_bytes()))
    return [p for p in images if p.name.lower() in names]


class Prefetch:
    """A background thread feeding one sandboxed image worker."""

    def __init__(self, site_src: Path, spec: RenderSpec, cache: VariantCache, sandbox: Mode) -> None:
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._worker: Worker | None = None
        self._thread = threading.Thread(
            target=self._run, args=(site_src, spec, cache, sandbox), name="image-prefetch", daemon=True
        )
        self.rendered = 0
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            if self._worker is not None:
                self._worker.stop()  # end of input: queued images are dropped
        self._thread.join()

    def join(self) -> None:
        self._thread.join()

    def _run(self, site_src: Path, spec: RenderSpec, cache: VariantCache, sandbox: Mode) -> None:
        try:
            jobs = _misses(mentioned_images(site_src), spec, cache)
            if jobs and not self._stopped.is_set():
                self._render(jobs, site_src, spec, cache, sandbox)
        except Exception:  # only a head start: the images stage renders and reports for real
            return

    def _render(
        self, jobs: list[Job], site_src: Path, spec: RenderSpec, cache: VariantCache, sandbox: Mode
    ) -> None:
        workers = min(cpu_count(), len(jobs), workers_for_memory(spec))
        with Worker(site_src, cache.base, sandbox) as worker:
            with self._lock:
                if self._stopped.is_set():
                    return
                self._worker = worker
            for _ in worker.render([(job.source, job.key) for job in jobs], spec, workers):
                self.rendered += 1


def _misses(sources: list[Path], spec: RenderSpec, cache: VariantCache) -> list[Job]:
    """Jobs for the sources the cache lacks, largest first (as the images stage orders them)."""
    jobs = []
    for source in sources:
        if source.stat().st_size > MAX_SOURCE_BYTES:  # never read; the stage will say why
            continue
        key = file_cache_key(source, spec)
        if cache.get(key) is None:
            jobs.append(Job(source, key))
    return sorted(jobs, key=lambda job: -job.source.stat().st_size)
