"""The images stage's pixels and files: variants, orientation, metadata, bad input, the cache.

Test images are made with Pillow here, small enough that the whole file runs in seconds.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from sitedeploy.config import ImagesConfig
from sitedeploy.errors import BuildError
from sitedeploy.images import process_site, spec_from
from sitedeploy.images.cache import VariantCache
from sitedeploy.images.variants import Outcome, Variant, _drop_larger, render, target_widths

FAST = ImagesConfig(widths=(480, 960, 1600))
SMALL = ImagesConfig(widths=(16, 32))
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo(width: int, height: int, fmt: str = "JPEG", **save: object) -> bytes:
    """A smooth gradient: compresses like a photo, so variants are smaller than the source."""
    im = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    im = Image.merge(
        "RGB",
        (
            im.getchannel(0),
            im.getchannel(0).rotate(90),
            im.getchannel(0).transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        ),
    )
    buffer = io.BytesIO()
    im.save(buffer, fmt, **save)
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def blobs_of(data: bytes, settings: ImagesConfig = FAST) -> dict[Variant, bytes]:
    rendered = render(data, spec_from(settings))
    assert rendered.outcome.status == "ok", rendered.outcome.reason
    return {v: rendered.blobs[v.digest] for v in rendered.outcome.variants if not v.is_original}


# -- widths, formats, names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "expected"),
    [(2000, [480, 960, 1600]), (1600, [480, 960, 1600]), (1200, [480, 960, 1200]), (300, [300])],
)
def test_widths_never_upscale_and_add_the_original_width_below_the_largest(
    width: int, expected: list[int]
) -> None:
    assert target_widths(width, (480, 960, 1600)) == expected


def test_variants_have_the_right_dimensions_and_formats() -> None:
    variants = blobs_of(photo(2000, 1000, quality=95))
    assert {(v.width, v.format) for v in variants} == {
        (w, f) for w in (480, 960, 1600) for f in ("avif", "webp", "jpeg")
    }
    for variant, data in variants.items():
        im = decoded(data)
        assert im.size == (variant.width, variant.height) == (variant.width, variant.width // 2)
        assert im.format == {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}[variant.format]
        assert variant.size == len(data)


def test_a_small_image_is_never_upscaled() -> None:
    variants = blobs_of(photo(300, 200, quality=95))
    assert {v.width for v in variants} == {300}


def test_names_carry_a_content_hash_and_are_stable_across_runs() -> None:
    source = photo(1000, 500, quality=95)
    first, second = blobs_of(source), blobs_of(source)
    assert list(first) == list(second)
    assert list(first.values()) == list(second.values())
    name = next(iter(first)).filename("photo")
    assert name.startswith("photo.480w.") and len(name.split(".")[2]) == 10


def test_a_variant_not_smaller_than_its_fallback_is_dropped() -> None:
    jpeg = Variant(480, 240, "jpeg", "aaaaaaaaaa", 1000)
    webp_bigger = Variant(480, 240, "webp", "bbbbbbbbbb", 1000)
    avif_smaller = Variant(480, 240, "avif", "cccccccccc", 999)
    kept = _drop_larger([jpeg, webp_bigger, avif_smaller], 2000, 1000, 50_000, "jpeg")
    assert kept == [avif_smaller, jpeg]


def test_a_fallback_not_smaller_than_the_original_is_replaced_by_the_original() -> None:
    tiny_png = io.BytesIO()  # two-colour noise, 1 bit per pixel: an RGB re-encode is far larger
    Image.effect_noise((64, 32), 100).convert("1").save(tiny_png, "PNG", optimize=True)
    rendered = render(tiny_png.getvalue(), spec_from(ImagesConfig(widths=(64, 128))))
    originals = [v for v in rendered.outcome.variants if v.is_original]
    assert originals == [Variant(64, 32, "png", "", len(tiny_png.getvalue()))]
    assert all(v.size < len(tiny_png.getvalue()) for v in rendered.outcome.variants if not v.is_original)


# -- orientation, metadata, colour -------------------------------------------------------------

QUADRANTS = {(0, 0): (255, 0, 0), (1, 0): (0, 255, 0), (0, 1): (0, 0, 255), (1, 1): (255, 255, 255)}
# How a camera stores an upright picture for each EXIF orientation (the inverse of displaying it).
STORED = {
    1: [],
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_90],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_270],
}


def upright() -> Image.Image:
    im = Image.new("RGB", (64, 32))
    for (qx, qy), colour in QUADRANTS.items():
        im.paste(colour, (qx * 32, qy * 16, qx * 32 + 32, qy * 16 + 16))
    return im


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_upright_pixels(orientation: int) -> None:
    stored = upright()
    for step in STORED[orientation]:
        stored = stored.transpose(step)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif)
    for variant, data in blobs_of(buffer.getvalue(), SMALL).items():
        im = decoded(data).convert("RGB")
        assert im.size == (variant.width, variant.width // 2), (orientation, variant)
        for (qx, qy), colour in QUADRANTS.items():
            pixel = im.getpixel((int((qx + 0.5) * im.width / 2), int((qy + 0.5) * im.height / 2)))
            assert isinstance(pixel, tuple)
            assert all(abs(a - b) < 60 for a, b in zip(pixel, colour, strict=True)), (orientation, variant)


def test_gps_exif_and_xmp_are_stripped_and_icc_is_kept() -> None:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0), 3: "E", 4: (4.0, 53.0, 2.0)}  # GPS IFD
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    source = photo(1000, 500, quality=95, exif=exif, icc_profile=SRGB_ICC, xmp=xmp)
    assert decoded(source).getexif().get_ifd(0x8825)  # the fixture really has GPS data
    for variant, data in blobs_of(source).items():
        im = decoded(data)
        assert not im.getexif(), variant
        assert b"SpyCam" not in data and b"xmpmeta" not in data, variant
        assert "xmp" not in im.info, variant
        assert im.info.get("icc_profile") == SRGB_ICC, variant


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours() -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (600, 300), (0, 255, 255, 0)).save(buffer, "JPEG", quality=95)  # pure red ink
    for variant, data in blobs_of(buffer.getvalue()).items():
        im = decoded(data).convert("RGB")
        red, green, blue = im.getpixel((10, 10))  # type: ignore[misc]
        assert red > 200 and green < 60 and blue < 60, variant


def test_16_bit_png_is_scaled_not_clipped() -> None:
    buffer = io.BytesIO()
    Image.new("I;16", (600, 300), 32768).save(buffer, "PNG")
    for variant, data in blobs_of(buffer.getvalue()).items():
        value = decoded(data).convert("L").getpixel((5, 5))
        assert value in range(120, 136), variant


def test_transparency_is_kept_in_png_webp_and_avif() -> None:
    im = Image.new("RGBA", (600, 300), (0, 0, 0, 0))
    im.paste((200, 30, 30, 255), (300, 0, 600, 300))
    buffer = io.BytesIO()
    im.save(buffer, "PNG")
    variants = blobs_of(buffer.getvalue())
    assert {v.format for v in variants} >= {"webp", "avif"}
    for variant, data in variants.items():
        out = decoded(data).convert("RGBA")
        assert out.getpixel((2, 2))[3] == 0, variant  # type: ignore[index]
        assert out.getpixel((out.width - 3, 2))[3] == 255, variant  # type: ignore[index]


# -- the stage on a site: bad images, warm cache, eviction, paths --------------------------------


def site_with(tmp_path: Path, images: dict[str, bytes], name: str = "site") -> Path:
    """A built site: one page per image under ``guide/``, images under ``img/``."""
    site = tmp_path / name
    (site / "img").mkdir(parents=True)
    (site / "guide").mkdir()
    for filename, data in images.items():
        (site / "img" / filename).write_bytes(data)
        page = site / "guide" / f"{Path(filename).stem}.html"
        page.write_text(f'<html><body><p><img alt="a" src="../img/{filename}" /></p></body></html>\n')
    return site


def bad_images() -> dict[str, bytes]:
    good = photo(300, 200, quality=95)
    return {
        "good.jpg": good,
        "truncated.jpg": good[: len(good) // 2],
        "empty.png": b"",
        "bomb.png": photo(400, 400, "PNG"),
        "text.jpg": b"this is not a picture\n" * 10,
    }


def test_bad_images_warn_once_each_and_are_published_unchanged(tmp_path: Path) -> None:
    site = site_with(tmp_path, bad_images())
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    settings = ImagesConfig(widths=(160,), max_pixels=100_000)  # bomb.png has 160,000
    report = process_site(site, "/", settings, tmp_path / "cache")
    assert report.processed == 1
    assert len(report.warnings) == 4
    for name in ("truncated.jpg", "empty.png", "bomb.png", "text.jpg"):
        (warning,) = [w for w in report.warnings if w.startswith(f"img/{name}:")]
        assert f"guide/{Path(name).stem}.html" in warning and "published unchanged" in warning
        assert (site / "img" / name).read_bytes() == before[site / "img" / name]
        page = site / "guide" / f"{Path(name).stem}.html"
        assert page.read_bytes() == before[page]
    assert "<picture>" in (site / "guide" / "good.html").read_text()


def test_strict_turns_a_bad_image_into_a_failed_build_before_touching_the_site(tmp_path: Path) -> None:
    site = site_with(tmp_path, bad_images())
    before = sorted(p.relative_to(site) for p in site.rglob("*"))
    with pytest.raises(BuildError, match=r"img/empty\.png: empty file"):
        process_site(site, "/", ImagesConfig(widths=(480,)), tmp_path / "cache", strict=True)
    assert sorted(p.relative_to(site) for p in site.rglob("*")) == before


def test_a_warm_cache_decodes_nothing_even_for_another_commit(tmp_path: Path) -> None:
    images = {"a.jpg": photo(1000, 500, quality=95), "b.png": photo(700, 300, "PNG")}
    cold = process_site(site_with(tmp_path, images, "one"), "/", FAST, tmp_path / "cache")
    assert (cold.decoded, cold.cache_hits, cold.processed) == (2, 0, 2)
    # Another commit: images renamed and pages changed, same bytes.
    renamed = {"photo.jpg": images["a.jpg"], "shot.png": images["b.png"]}
    other = site_with(tmp_path, renamed, "two")
    (other / "guide" / "photo.html").write_text('<p>New text</p><img src="/img/photo.jpg">\n')
    warm = process_site(other, "/", FAST, tmp_path / "cache")
    assert (warm.decoded, warm.cache_hits, warm.processed) == (0, 2, 2)
    assert (warm.bytes_after, warm.bytes_written) == (cold.bytes_after, cold.bytes_written)
    assert "photo.480w." in (other / "guide" / "photo.html").read_text()
    variant = next((other / "img").glob("photo.480w.*.avif"))
    assert variant.stat().st_nlink >= 2  # hard-linked from the cache: a warm build copies no bytes


def test_output_is_byte_identical_across_runs_and_caches(tmp_path: Path) -> None:
    images = {"a.jpg": photo(1000, 500, quality=95), "b.png": photo(700, 300, "PNG")}
    one, two = site_with(tmp_path, images, "one"), site_with(tmp_path, images, "two")
    process_site(one, "/", FAST, tmp_path / "cache-1")
    process_site(two, "/", FAST, tmp_path / "cache-2")
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)


def test_the_cache_evicts_least_recently_used_entries(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    old = site_with(tmp_path, {"old.jpg": photo(1000, 500, quality=90)}, "old")
    process_site(old, "/", FAST, cache_dir)
    entries = list(VariantCache(cache_dir).root.glob("??/*"))
    os.utime(entries[0] / "outcome.json", (1, 1))  # used long ago
    size = sum(p.stat().st_size for p in entries[0].iterdir())
    new = site_with(tmp_path, {"new.jpg": photo(1000, 500, quality=80)}, "new")
    process_site(new, "/", ImagesConfig(widths=FAST.widths, cache_max_bytes=size + 10), cache_dir)
    remaining = list(VariantCache(cache_dir).root.glob("??/*"))
    assert len(remaining) == 1 and remaining[0] != entries[0]


def test_a_damaged_cache_entry_or_leftover_temp_folder_is_harmless(tmp_path: Path) -> None:
    images = {"a.jpg": photo(1000, 500, quality=95)}
    process_site(site_with(tmp_path, images, "one"), "/", FAST, tmp_path / "cache")
    (entry,) = VariantCache(tmp_path / "cache").root.glob("??/*")
    next(p for p in entry.iterdir() if p.suffix == ".webp").unlink()  # e.g. a disk error
    (VariantCache(tmp_path / "cache").root / "tmp" / "half-written").mkdir(parents=True)
    report = process_site(site_with(tmp_path, images, "two"), "/", FAST, tmp_path / "cache")
    assert (report.decoded, report.processed, report.warnings) == (1, 1, ())


def test_images_under_a_mount_resolve_and_escaping_paths_are_refused(tmp_path: Path) -> None:
    site = site_with(tmp_path, {"a.jpg": photo(1000, 500, quality=95)})
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(photo(800, 400, quality=95))
    (site / "img" / "link.jpg").symlink_to(outside)
    page = site / "guide" / "a.html"
    page.write_text('<img src="/docs/img/a.jpg"><img src="../img/link.jpg"><img src="/blog/img/a.jpg">\n')
    report = process_site(site, "/docs/", FAST, tmp_path / "cache")
    assert report.processed == 1
    assert report.warnings == (
        "guide/a.html: image '../img/link.jpg' points outside the site; left unchanged",
    )
    text = page.read_text()
    assert text.count("<picture>") == 1 and '<img src="/blog/img/a.jpg">' in text
    assert "/docs/img/a.480w." in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "secret.jpg", "site"]


def test_disabled_does_nothing(tmp_path: Path) -> None:
    site = site_with(tmp_path, {"a.jpg": photo(1000, 500, quality=95)})
    report = process_site(site, "/", ImagesConfig(enabled=False), tmp_path / "cache")
    assert report.processed == 0 and not (tmp_path / "cache").exists()
    assert len(list((site / "img").iterdir())) == 1


def test_animated_gif_is_left_alone_and_static_gif_gets_png_fallback(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (600, 300), (i * 100, 0, 0)) for i in range(3)]
    animated, static = io.BytesIO(), io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:])
    photo_im = decoded(photo(600, 300, quality=95)).convert("P")
    photo_im.save(static, "GIF")
    site = site_with(tmp_path, {"anim.gif": animated.getvalue(), "still.gif": static.getvalue()})
    report = process_site(site, "/", ImagesConfig(widths=(480,)), tmp_path / "cache")
    assert report.processed == 1 and report.warnings == ()
    assert "<picture>" not in (site / "guide" / "anim.html").read_text()
    assert 'type="image/webp"' in (site / "guide" / "still.html").read_text()


def test_report_summary_reads_well(tmp_path: Path) -> None:
    site = site_with(tmp_path, {"a.jpg": photo(1000, 500, quality=95)})
    report = process_site(site, "/", FAST, tmp_path / "cache")
    assert 0 < report.bytes_after < report.bytes_before and report.bytes_written > 0
    summary = report.summary()
    assert summary.startswith("1 processed (0 cached, 1 decoded) on 1 page, ")
    assert summary.endswith("of variants written, 0 warnings") and "readers get " in summary


def test_outcome_round_trips_through_the_cache(tmp_path: Path) -> None:
    cache = VariantCache(tmp_path)
    from sitedeploy.images.variants import Rendered

    outcome = Outcome("error", reason="empty file")
    assert cache.put("ab" * 32, Rendered(outcome))
    assert cache.get("ab" * 32) == outcome
    shutil.rmtree(cache.entry("ab" * 32))
    assert cache.get("ab" * 32) is None


def test_a_phone_mpo_photo_is_not_mistaken_for_an_animation() -> None:
    first, second = decoded(photo(1000, 500, quality=95)), decoded(photo(500, 250, quality=95))
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second], quality=95)
    assert decoded(buffer.getvalue()).format == "MPO"
    assert {(v.width, v.format) for v in blobs_of(buffer.getvalue())} >= {(960, "jpeg"), (960, "avif")}


def test_variants_of_a_symlinked_image_go_next_to_the_link(tmp_path: Path) -> None:
    site = site_with(tmp_path, {"a.jpg": photo(1000, 500, quality=95)})
    (site / "shared").mkdir()
    (site / "img" / "a.jpg").rename(site / "shared" / "real.jpg")
    (site / "img" / "a.jpg").symlink_to(site / "shared" / "real.jpg")
    report = process_site(site, "/", FAST, tmp_path / "cache")
    assert report.processed == 1 and report.warnings == ()
    assert any(p.name.startswith("a.480w.") for p in (site / "img").iterdir())
    assert sorted(p.name for p in (site / "shared").iterdir()) == ["real.jpg"]


def test_unknown_formats_and_bad_widths_are_refused_with_the_settings() -> None:
    with pytest.raises(ValueError, match=r"unknown image format 'jxl'"):
        ImagesConfig(formats=("jxl",))
    with pytest.raises(ValueError, match=r"widths"):
        ImagesConfig(widths=(0,))


def test_a_partial_quality_table_keeps_the_other_defaults() -> None:
    spec = spec_from(ImagesConfig(quality={"avif": 60}))
    assert (spec.quality_for("avif"), spec.quality_for("webp"), spec.quality_for("jpeg")) == (60, 80, 80)


def test_running_twice_on_the_same_build_changes_nothing(tmp_path: Path) -> None:
    site = site_with(tmp_path, {"a.jpg": photo(1000, 500, quality=95)})
    process_site(site, "/", FAST, tmp_path / "cache")
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    again = process_site(site, "/", FAST, tmp_path / "cache")
    assert (again.processed, again.pages) == (0, 0)
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
