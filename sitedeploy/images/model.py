"""What the images stage talks about, without Pillow: settings, variants, outcomes.

The deployer's own process imports only this (and :mod:`.wire`, :mod:`.cache`), never
``PIL.Image``: decoding happens in the sandboxed worker (:mod:`.worker`), and the parent
works from the outcomes it reports. Keeping these types free of Pillow makes that checkable
(``tests/security/test_image_secrets.py`` asserts ``PIL.Image`` is never imported there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
MIME_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
AVIF_SPEED = 9
"""libaom speed 0-10, the default of ``[images] avif_speed``, chosen for deploy latency.

One 1600 px variant, CPU time and size (libavif 1.4 with aom, quality 50, one thread):

    speed        6        8        9       10
    photo     449 ms   116 ms    76 ms    72 ms     34.0 / 37.6 / 36.1 / 36.1 KB
    screen    610 ms   194 ms    55 ms    55 ms     59.8 / 62.6 / 74.1 / 74.1 KB

9 is 1.5-3.5x faster than 8 for photos equal in size and screenshots ~18% larger (still well
below their WebP); 10 gains nothing over 9. Sites made of screenshots may prefer 8."""
WEBP_METHOD = 2
"""libwebp effort 0-6, chosen for deploy latency like AVIF_SPEED (see ``variants.encode``)."""
MAX_SOURCE_BYTES = 64 * 1024**2
"""Larger sources are published unchanged without being read: no photo on a docs page needs
more, and a 400 MB file must not cost 400 MB of memory per worker."""


@dataclass(frozen=True)
class RenderSpec:
    """The settings that change variant bytes; part of the cache key."""

    widths: tuple[int, ...]
    formats: tuple[str, ...]
    quality: tuple[tuple[str, int], ...]
    max_pixels: int
    avif_speed: int = AVIF_SPEED
    webp_method: int = WEBP_METHOD
    """Not a setting; here so that a new default changes the cache key (reproducible bytes)."""
    avif_threads: int = 0
    """0 = let libaom pick; 1 inside a pool that already has one process per core."""

    def quality_for(self, fmt: str) -> int:
        return dict(self.quality).get(fmt, 80)


@dataclass(frozen=True)
class Variant:
    """One encoded file. ``digest == ""`` stands for the untouched original file."""

    width: int
    height: int
    format: str
    digest: str
    size: int

    @property
    def is_original(self) -> bool:
        return not self.digest

    def filename(self, stem: str) -> str:
        """``photo.960w.1a2b3c4d5e.webp``: the content hash makes the name cacheable forever."""
        return f"{stem}.{self.width}w.{self.digest}.{EXTENSIONS[self.format]}"


@dataclass(frozen=True)
class Outcome:
    """What became of one source image: variants, a reason to leave it alone, or an error."""

    status: Literal["ok", "skip", "error"]
    width: int = 0
    height: int = 0
    fallback: str = ""
    variants: tuple[Variant, ...] = ()
    reason: str = ""


@dataclass
class Rendered:
    """An :class:`Outcome` plus the encoded bytes, keyed by digest (not yet on disk)."""

    outcome: Outcome
    blobs: dict[str, bytes] = field(default_factory=dict)


def too_large(size: int) -> str:
    return f"{size / 1024**2:.0f} MB is more than the {MAX_SOURCE_BYTES // 1024**2} MB an image may have"
