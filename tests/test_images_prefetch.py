"""Images are encoded into the variant cache while MkDocs builds the site."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sitedeploy.config import ImagesConfig
from sitedeploy.images import spec_from
from sitedeploy.images.cache import VariantCache, cache_key
from sitedeploy.images.prefetch import mentioned_images, prefetching


def _site(root: Path) -> Path:
    (root / "docs" / "img").mkdir(parents=True)
    for name, colour in (("used.jpg", "teal"), ("Other.PNG", "navy"), ("unused.jpg", "red")):
        Image.new("RGB", (1200, 800), colour).save(root / "docs" / "img" / name)
    (root / "docs" / "index.md").write_text("# Home\n\n![a photo](img/used.jpg)\n")
    (root / "docs" / "about.html").write_text('<img src="img/other.png">')
    return root


def _cached(cache_dir: Path, image: Path, settings: ImagesConfig) -> bool:
    return VariantCache(cache_dir).get(cache_key(image.read_bytes(), spec_from(settings))) is not None


def test_mentioned_images_are_in_the_cache_when_the_build_ends(tmp_path: Path) -> None:
    site, cache, settings = _site(tmp_path / "src"), tmp_path / "cache", ImagesConfig()
    img = site / "docs" / "img"
    assert [p.name for p in mentioned_images(site)] == ["Other.PNG", "used.jpg"]
    with prefetching(site, settings, cache):
        pass  # MkDocs would run here
    assert _cached(cache, img / "used.jpg", settings) and _cached(cache, img / "Other.PNG", settings)
    assert not _cached(cache, img / "unused.jpg", settings)


def test_a_failed_build_stops_the_prefetch_and_keeps_its_error(tmp_path: Path) -> None:
    site = _site(tmp_path / "src")
    with (
        pytest.raises(RuntimeError, match="mkdocs failed"),
        prefetching(site, ImagesConfig(), tmp_path / "c"),
    ):
        raise RuntimeError("mkdocs failed")


def test_disabled_images_prefetch_nothing(tmp_path: Path) -> None:
    site, settings = _site(tmp_path / "src"), ImagesConfig(enabled=False)
    with prefetching(site, settings, tmp_path / "cache"):
        pass
    assert not (tmp_path / "cache").exists()
