"""The ``images`` build stage: responsive variants and ``<picture>`` markup for built sites.

Authors write ``![alt](img/photo.jpg)``; after MkDocs has built a site, :func:`process_site`

1. scans the built pages that contain ``<img`` (most pages are skipped without parsing),
2. resolves each ``src`` to a raster file inside the site and renders it once, whatever the
   number of pages using it: widths x formats, through a content-addressed cache shared by every
   site and commit (:mod:`.cache`); the misses are decoded and encoded in the build sandbox, by
   one worker process with a pool inside (:mod:`.pool`, :mod:`.confined`, :mod:`.worker`,
   :mod:`.variants`): the deployer's own process never decodes an image,
3. copies the variants next to the original (which stays, for links and feeds) and splices a
   ``<picture>`` over each ``<img>`` (:mod:`.rewrite`); every other byte of the page is unchanged.

A broken image costs one warning naming the file and the page and leaves that image alone;
with ``strict`` it fails the build before anything in the site is modified.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ImagesConfig, normalize_mount
from ..errors import BuildError
from ..progress import SILENT, Progress
from ..sandbox import Mode, untrusted
from . import discover
from .cache import VariantCache
from .markup import PageImage, page_images, rewrite_page
from .model import Outcome, RenderSpec, Variant
from .pool import Renderer, Results
from .safefs import place

__all__ = ["ImageReport", "process_site", "spec_from"]
_DEFAULT_QUALITY = ImagesConfig().quality


@dataclass(frozen=True)
class ImageReport:
    """What one run of the stage did, for the build log and the metrics."""

    processed: int = 0
    """Distinct images that got variants (each counted once, however many pages use it)."""
    cache_hits: int = 0
    decoded: int = 0
    """Images actually decoded this run; zero on a warm cache."""
    bytes_before: int = 0
    """What a reader downloaded before: the originals of the processed images."""
    bytes_after: int = 0
    """What a reader downloads now at most: per image, the smallest file at the largest width
    (a modern browser on a wide screen); phones fetch less."""
    bytes_written: int = 0
    """All variant files added to the site (every width and format)."""
    pages: int = 0
    """Pages rewritten."""
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        """``40 processed (38 cached, 2 decoded) on 35 pages, readers get 36.9 MB -> 4.1 MB at most,
        17.1 MB of variants written, 0 warnings``; callers add their own label (``images: …``)."""
        return (
            f"{self.processed} processed ({self.cache_hits} cached, {self.decoded} decoded) "
            f"on {self.pages} page{'s' * (self.pages != 1)}, readers get {_mb(self.bytes_before)} -> "
            f"{_mb(self.bytes_after)} at most, {_mb(self.bytes_written)} of variants written, "
            f"{len(self.warnings)} warning{'s' * (len(self.warnings) != 1)}"
        )


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def spec_from(settings: ImagesConfig) -> RenderSpec:
    """The settings that change variant bytes, in a hashable, canonical form (formats and
    widths were checked when deploy.toml was read: ``ImagesConfig.__post_init__``)."""
    return RenderSpec(
        widths=tuple(sorted(set(settings.widths))),
        formats=tuple(dict.fromkeys(f.lower() for f in settings.formats)),
        # A partial table (``quality = {avif = 60}``) keeps the defaults for the other formats.
        quality=tuple(sorted({**_DEFAULT_QUALITY, **settings.quality}.items())),
        max_pixels=settings.max_pixels,
        avif_speed=settings.avif_speed,
    )


def process_site(
    site_dir: Path,
    mount: str,
    settings: ImagesConfig,
    cache_dir: Path,
    *,
    strict: bool = False,
    progress: Progress = SILENT,
    sandbox: Mode = "bwrap",
) -> ImageReport:
    """Give every raster ``<img>`` of one built site responsive variants; modifies ``site_dir``.

    ``sandbox`` is ``[build] sandbox``: the images are decoded in that sandbox (``"off"``:
    in an unconfined worker process, still never in this one). ``site_dir`` is the deployer's
    own copy of the build's output (:func:`sitedeploy.sandbox.untrusted.copy_out` made it: real
    folders and regular files only); a link in its place is refused, never resolved.
    """
    if not settings.enabled:
        return ImageReport()
    if not untrusted.is_real_dir(site_dir):
        raise BuildError(
            f"images: {site_dir} is not a real folder (a link?); refusing to write variants into it"
        )
    site_dir, mount, spec = site_dir.resolve(), normalize_mount(mount), spec_from(settings)
    progress.step("images: scanning pages")
    scan = _Scan(site_dir, mount)
    cache = VariantCache(cache_dir)
    sources = sorted({ref.source for page in scan.pages for ref in page.images})
    with Renderer(site_dir, cache, sandbox) as renderer:
        with progress.bar("images", len(sources)) as advance:
            results = renderer.render_all(sources, spec, advance)
        warnings = [*scan.warnings, *_broken(results, scan, site_dir)]
        if strict and warnings:
            more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
            raise BuildError(f"{warnings[0]}{more}; fix the image or set strict = false to publish it as is")
        written = _write_variants(results, cache)
        pages = _rewrite_pages(scan, results, settings.sizes)
        if results.decoded:  # only new entries can push the cache over its limit
            renderer.evict(settings.cache_max_bytes)
    return _report(results, written, pages, warnings)


@dataclass
class _Scan:
    """Every page with rewritable images, and warnings for URLs that try to leave the site."""

    site_dir: Path
    mount: str
    pages: list[PageImages] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for path, data in discover.html_pages(self.site_dir):
            page = PageImages(path, data.decode("utf-8", "surrogateescape"))
            page.images = page_images(
                page.text, self.page_url(path), self.mount, self.site_dir, self._escaped(path)
            )
            if page.images:
                self.pages.append(page)

    def page_url(self, path: Path) -> str:
        return discover.page_url(self.site_dir, path, self.mount)

    def _escaped(self, page: Path) -> Callable[[str, str], None]:
        where = page.relative_to(self.site_dir).as_posix()
        return lambda src, reason: self.warnings.append(f"{where}: image {src!r} {reason}; left unchanged")

    def users(self, source: Path) -> list[str]:
        return [
            p.path.relative_to(self.site_dir).as_posix()
            for p in self.pages
            if any(ref.source == source for ref in p.images)
        ]


@dataclass
class PageImages:
    path: Path
    text: str
    images: list[PageImage] = field(default_factory=list)


def _broken(results: Results, scan: _Scan, site_dir: Path) -> list[str]:
    """One warning per broken image, naming the file and the pages that use it."""
    warnings = []
    for source, (_, outcome) in sorted(results.outcomes.items()):
        if outcome.status == "error":
            users = scan.users(source)
            more = f" and {len(users) - 1} more" if len(users) > 1 else ""
            warnings.append(
                f"{source.relative_to(site_dir).as_posix()}: {outcome.reason} "
                f"(used on {users[0]}{more}); the original is published unchanged"
            )
    return warnings


def _write_variants(results: Results, cache: VariantCache) -> int:
    """Copy each variant next to its original; returns the bytes written."""
    total = 0
    for source, (key, outcome) in sorted(results.outcomes.items()):
        uncached = (results.uncached or {}).get(source)
        for variant in outcome.variants:
            if variant.is_original:
                continue
            target = source.with_name(variant.filename(source.stem))
            if uncached is not None:
                _write_bytes(target, uncached.blobs[variant.digest])
            else:
                _link_cached(cache, key, variant, target)
            total += variant.size
    return total


def _link_cached(cache: VariantCache, key: str, variant: Variant, target: Path) -> None:
    """Hard-link the cached variant into the site (a warm build copies no bytes), else copy.

    Sharing the inode is safe because neither side is ever modified in place: cache entries
    are immutable, and site files are replaced by rename (the project's release invariant).
    A temp name plus rename means a reader never sees half a file. The cache is writable by
    the sandboxed worker, so the file is opened without following links and must be the
    very file linked (:mod:`.safefs`): a planted link never gets published.
    """
    try:
        fd = cache.open_blob(key, variant)
    except OSError as exc:
        raise BuildError(
            f"images: cached variant {cache.blob(key, variant)} is missing or changed ({exc}); build again"
        ) from None
    try:
        tmp = _fresh_tmp(target)
        place(fd, cache.blob(key, variant), tmp)
        os.replace(tmp, target)
    finally:
        os.close(fd)


def _fresh_tmp(target: Path) -> Path:
    """A temp name beside ``target``, cleared first: a leftover from a crashed run may be a
    hard link into the cache, and writing through it would corrupt the cached variant."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    return tmp


def _write_bytes(target: Path, data: bytes) -> None:
    tmp = _fresh_tmp(target)
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _rewrite_pages(scan: _Scan, results: Results, sizes: str) -> int:
    rewritten = 0
    for page in scan.pages:
        outcomes: dict[Path, Outcome] = {src: out for src, (_, out) in results.outcomes.items()}
        text = rewrite_page(page.text, page.images, outcomes, sizes)
        if text != page.text:
            _write_bytes(page.path, text.encode("utf-8", "surrogateescape"))
            rewritten += 1
    return rewritten


def _report(results: Results, written: int, pages: int, warnings: list[str]) -> ImageReport:
    done = [(src, out) for src, (_, out) in results.outcomes.items() if out.status == "ok"]
    return ImageReport(
        processed=len(done),
        cache_hits=results.hits,
        decoded=results.decoded,
        bytes_before=sum(src.stat().st_size for src, _ in done),
        bytes_after=sum(_largest_download(out) for _, out in done),
        bytes_written=written,
        pages=pages,
        warnings=tuple(warnings),
    )


def _largest_download(outcome: Outcome) -> int:
    """The file a wide screen fetches: the smallest candidate at the largest width (a modern
    format is only offered when it is smaller than the fallback, and browsers prefer it)."""
    top = max(v.width for v in outcome.variants)
    return min(v.size for v in outcome.variants if v.width == top)
