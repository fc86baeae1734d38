"""Encode a site's images while MkDocs builds it.

MkDocs is one Python process: on a machine with two or more cores it leaves the others idle for
the whole build, and the images stage used to start only after it. The variant cache is
addressed by the image's bytes and the render settings, and MkDocs copies images unchanged, so
the source images can be rendered into the cache *during* the build; the images stage then
finds every entry there and only writes variants and markup. The cold build's image work
overlaps the MkDocs build instead of following it.

Only images a page can use are rendered ahead: raster files under the site's folder whose
name appears in some Markdown or HTML file of the site (a cheap textual test, no parsing); an
image nobody mentions costs nothing. Workers are the images stage's own (``pool``): one
process per core from the fork server, largest images first, each storing its entry in the
cache. A failed build stops the prefetch: queued images are dropped, running ones finish.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ..config import ImagesConfig
from . import spec_from
from .cache import VariantCache, cache_key
from .pool import Job, _worker_context, cpu_count, render_and_store
from .variants import Rendered, RenderSpec

RASTER = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".gif")
_MENTION = re.compile(rb"[\w.%-]+\.(?:jpe?g|png|webp|avif|gif)", re.IGNORECASE)
_TEXT = (".md", ".markdown", ".html", ".htm")


@contextmanager
def prefetching(site_src: Path, settings: ImagesConfig, cache_dir: Path) -> Iterator[None]:
    """Render the site's images into the cache while the block runs; wait for them after it."""
    if not settings.enabled:
        yield
        return
    prefetch = Prefetch(site_src, spec_from(settings), VariantCache(cache_dir))
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
    """A background thread feeding the images stage's worker processes."""

    def __init__(self, site_src: Path, spec: RenderSpec, cache: VariantCache) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(site_src, spec, cache), name="image-prefetch", daemon=True
        )
        self.rendered = 0
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def join(self) -> None:
        self._thread.join()

    def _run(self, site_src: Path, spec: RenderSpec, cache: VariantCache) -> None:
        try:
            jobs = _misses(mentioned_images(site_src), spec, cache)
            if jobs:
                self._render(jobs, replace(spec, avif_threads=1), cache)
        except Exception:  # only a head start: the images stage renders and reports for real
            return

    def _render(self, jobs: list[Job], spec: RenderSpec, cache: VariantCache) -> None:
        workers = min(cpu_count(), len(jobs))
        pending: set[Future[Rendered]] = set()
        with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
            for job in jobs:
                if self._stopped.is_set():
                    break
                pending.add(pool.submit(render_and_store, job, spec, cache))
                if len(pending) >= 2 * workers:  # keep the queue short, so stop() is quick
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    self.rendered += len(done)
            wait(pending)
        self.rendered += len(pending)


def _misses(sources: list[Path], spec: RenderSpec, cache: VariantCache) -> list[Job]:
    """Jobs for the sources the cache lacks, largest first (as the images stage orders them)."""
    jobs = []
    for source in sources:
        key = cache_key(source.read_bytes(), spec)
        if cache.get(key) is None:
            jobs.append(Job(source, key))
    return sorted(jobs, key=lambda job: -job.source.stat().st_size)
