"""The operator's ceilings on what content may ask for: the ``[limits]`` table.

``[images]`` is a build table, read from the deployed commit (see :mod:`sitedeploy.config.from_git`),
so a commit chooses its own decompression-bomb limit, variant widths, encoder effort and cache
size — and through them the image pool's memory, the CPU a build takes and the disk the cache
fills. ``[limits]`` is a machine table, read only from the file sitedeploy runs with: a commit
(and the operator's own ``[images]``) may lower a limit, never go past its ceiling. A value past
it is refused with one line naming the key and the ceiling.

==================  ====================================  ======================
``[limits]`` key    bounds                                default
==================  ====================================  ======================
``max_pixels``      ``images.max_pixels`` at most         50,000,000 (the default)
``max_width``       every entry of ``images.widths``      4096 pixels
``max_widths``      how many ``images.widths``            6
``min_avif_speed``  ``images.avif_speed`` at least        4 (0 is many times slower)
``cache_max_bytes`` ``images.cache_max_bytes`` at most    2 GiB (the default)
==================  ====================================  ======================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .ranges import at_least, greater_than
from .schema import setting

if TYPE_CHECKING:
    from .deploy_toml import ImagesConfig, SiteConfig


@dataclass(frozen=True, kw_only=True)
class LimitsConfig:
    max_pixels: int = setting(50_000_000, greater_than(0))
    """The largest ``images.max_pixels`` (the decompression-bomb limit, and the pool's memory)."""
    max_width: int = setting(4096, greater_than(0))
    """The largest entry of ``images.widths``."""
    max_widths: int = setting(6, greater_than(0))
    """How many entries ``images.widths`` may have."""
    min_avif_speed: int = setting(4, at_least(0))
    """The smallest ``images.avif_speed`` (lower: more CPU per image)."""
    cache_max_bytes: int = setting(2 * 1024**3, at_least(0))
    """The largest ``images.cache_max_bytes``."""


def check_images(limits: LimitsConfig, images: ImagesConfig, path: str, problems: list[str]) -> None:
    """Add one problem per ``[images]`` value (at key path ``path``) past the operator's limit."""
    for key, value, limit, ceiling in _past(limits, images):
        problems.append(
            f"{path}.{key}: {value} is past the operator's limit limits.{limit} = {ceiling}; "
            "lower it (or raise [limits] in the file sitedeploy runs with)"
        )


def _past(limits: LimitsConfig, images: ImagesConfig) -> list[tuple[str, str, str, int]]:
    """(images key, value, limits key, limit) for every value past its limit."""
    found = []
    if images.max_pixels > limits.max_pixels:
        found.append(("max_pixels", str(images.max_pixels), "max_pixels", limits.max_pixels))
    if max(images.widths) > limits.max_width:
        found.append(("widths", f"a width of {max(images.widths)}", "max_width", limits.max_width))
    if len(images.widths) > limits.max_widths:
        found.append(("widths", f"{len(images.widths)} widths", "max_widths", limits.max_widths))
    if images.avif_speed < limits.min_avif_speed:
        found.append(("avif_speed", str(images.avif_speed), "min_avif_speed", limits.min_avif_speed))
    if images.cache_max_bytes > limits.cache_max_bytes:
        found.append(
            ("cache_max_bytes", str(images.cache_max_bytes), "cache_max_bytes", limits.cache_max_bytes)
        )
    return found


def check_build_limits(
    limits: LimitsConfig,
    images: ImagesConfig,
    sites: tuple[SiteConfig, ...] | None,
    problems: list[str],
) -> None:
    """Check ``[images]`` and every ``[sites.images]`` against ``limits``."""
    check_images(limits, images, "images", problems)
    for i, site in enumerate(sites or ()):
        if site.images != images:
            check_images(limits, site.images, f"sites[{i}].images", problems)
