"""Decode one source image and encode its responsive variants with Pillow.

Everything here is a pure function of (source bytes, :class:`RenderSpec`), so it runs in the
sandboxed worker (:mod:`.worker`; never in the deployer's process) and its result can be
cached by content. The order of operations is chosen for speed and correctness:

1. read the header only (size, orientation, frame count) and refuse bombs before decoding;
2. ask the JPEG decoder for a DCT-scaled ``draft`` no smaller than the largest variant, so a
   3000 px photo is decoded at 1500 px when 960 px is the largest width we need;
3. apply the EXIF orientation, then normalise colour (CMYK through its ICC profile to sRGB,
   16-bit to 8-bit, palette to RGB(A)) and forget every metadata chunk except the ICC profile,
   which is re-attached explicitly (EXIF, GPS and XMP never reach a variant: privacy default);
4. resize from the largest width down, each step from the previous result (cheap, and Lanczos
   over a ratio below 2 loses nothing visible); ``reducing_gap`` lets Pillow ``reduce()`` first;
5. encode every width in every format, then drop any variant that is not smaller than the one
   it would replace (a modern format no smaller than the fallback at the same width, or a
   fallback at full width no smaller than the original file).
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .model import AVIF_SPEED as AVIF_SPEED
from .model import EXTENSIONS as EXTENSIONS
from .model import MAX_SOURCE_BYTES as MAX_SOURCE_BYTES
from .model import MIME_TYPES as MIME_TYPES
from .model import WEBP_METHOD as WEBP_METHOD
from .model import Outcome as Outcome
from .model import Rendered as Rendered
from .model import RenderSpec as RenderSpec
from .model import Variant as Variant
from .model import too_large

# Formats we read, by Pillow's format name, and the fallback format each is served in.
FALLBACK_FORMAT = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "AVIF": "avif", "GIF": "png", "MPO": "jpeg"}
_PIL_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}
REDUCING_GAP = 3.0
"""Pillow's recommended trade-off: ``reduce()`` by an integer factor, then Lanczos the rest."""
_SWAPS_AXES = {5, 6, 7, 8}
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    UnidentifiedImageError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
    struct.error,
    zlib.error,
)
_ANIMATED_FORMATS = {"GIF", "PNG", "WEBP", "AVIF"}
"""Formats whose extra frames are animation; an MPO's second frame is a depth map or preview."""
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def render(data: bytes, spec: RenderSpec) -> Rendered:
    """All variants of one image, or the reason there are none. Never raises for bad input."""
    return _guarded(lambda: _render(io.BytesIO(data), len(data), spec), spec)


def render_file(path: Path, spec: RenderSpec) -> Rendered:
    """:func:`render` straight from a file: Pillow reads the header first and decodes from
    disk, so only the pixels (bounded by ``max_pixels``) are ever in memory, not the file."""
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            return Rendered(Outcome("error", reason=too_large(size)))
        with path.open("rb") as f:
            return _guarded(lambda: _render(f, size, spec), spec)
    except OSError as exc:
        return Rendered(Outcome("error", reason=f"cannot read ({exc.strerror})"))


def _guarded(work: Callable[[], Rendered], spec: RenderSpec) -> Rendered:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return work()
    except _DECODE_ERRORS as exc:
        return Rendered(Outcome("error", reason=_describe(exc, spec)))
    except MemoryError:
        return Rendered(Outcome("error", reason="not enough memory to decode"))
    except Exception as exc:  # a codec bug must cost one image, not the whole build
        return Rendered(Outcome("error", reason=f"cannot process ({type(exc).__name__}: {exc})"))


def _describe(exc: BaseException, spec: RenderSpec) -> str:
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"more than max_pixels = {spec.max_pixels} pixels (decompression bomb?)"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can read"
    return f"cannot decode ({exc or type(exc).__name__})"


def _render(fp: IO[bytes], size: int, spec: RenderSpec) -> Rendered:
    if not size:
        return Rendered(Outcome("error", reason="empty file"))
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = spec.max_pixels
    try:
        im = Image.open(fp)  # reads the header only: size and mode, no pixels yet
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
    if im.format not in FALLBACK_FORMAT:
        return Rendered(Outcome("skip", reason=f"{im.format} is not a raster format we resize"))
    if im.format in _ANIMATED_FORMATS and getattr(im, "n_frames", 1) > 1:
        return Rendered(Outcome("skip", reason="animated"))
    if im.width * im.height > spec.max_pixels:  # counted from the header, before decoding
        return Rendered(Outcome("error", reason=f"more than max_pixels = {spec.max_pixels} pixels"))
    return _render_frame(im, size, spec)


def _render_frame(im: Image.Image, original_size: int, spec: RenderSpec) -> Rendered:
    fallback = FALLBACK_FORMAT[str(im.format)]
    orientation = _orientation(im)
    width, height = (im.height, im.width) if orientation in _SWAPS_AXES else im.size
    widths = target_widths(width, spec.widths)
    if im.format in ("JPEG", "MPO"):  # let libjpeg decode at 1/2, 1/4 or 1/8 scale when it can
        scale = widths[-1] / width
        im.draft(None, (math.ceil(im.width * scale), math.ceil(im.height * scale)))
    im.load()
    im, icc = _normalise(_upright(im, orientation))
    rendered = Rendered(Outcome("ok", width, height, fallback))
    variants = _encode_all(im, icc, widths, fallback, spec, rendered.blobs)
    kept = _drop_larger(variants, width, height, original_size, fallback)
    rendered.blobs = {v.digest: rendered.blobs[v.digest] for v in kept if not v.is_original}
    rendered.outcome = Outcome("ok", width, height, fallback, tuple(kept))
    return rendered


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8); a damaged EXIF block counts as upright, not as a broken image."""
    try:
        value = int(im.getexif().get(0x0112, 1))
    except (SyntaxError, ValueError, TypeError, OSError, struct.error):
        return 1
    return value if 1 <= value <= 8 else 1


def _upright(im: Image.Image, orientation: int) -> Image.Image:
    """Pixels turned the way the camera meant; Pillow's helper also drops the stale tag."""
    if orientation == 1:
        return im
    try:
        return ImageOps.exif_transpose(im)
    except (SyntaxError, ValueError, TypeError, OSError, struct.error):
        return im


def target_widths(width: int, configured: tuple[int, ...]) -> list[int]:
    """Configured widths below ``width``, plus ``width`` itself when it is below the largest.

    Never upscales: a 1200 px image with widths (480, 960, 1600) gets 480, 960 and 1200.
    """
    wanted = sorted({w for w in configured if 0 < w <= width})
    if not configured or width < max(configured):
        wanted = sorted({*wanted, width})
    return wanted


def _normalise(im: Image.Image) -> tuple[Image.Image, bytes | None]:
    """8-bit RGB/RGBA/L pixels in the image's own colour space, plus its ICC profile."""
    icc = im.info.get("icc_profile") or None
    if im.mode == "CMYK":
        im, icc = _cmyk_to_srgb(im, icc), None
    elif im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        im = (
            im.convert("I").point(lambda v: v * (1 / 257)).convert("L") if im.mode != "F" else im.convert("L")
        )
    elif im.mode in ("P", "PA", "LA", "La", "1", "RGBa", "RGBX"):
        has_alpha = im.mode in ("PA", "LA", "La", "RGBa") or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif im.mode not in ("RGB", "RGBA", "L"):
        im = im.convert("RGB")
    im.info = {}  # EXIF, XMP, GPS, comments, text chunks: none of it reaches a variant
    return im, icc


def _cmyk_to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Through the embedded profile when there is one (print profiles vary wildly)."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, _SRGB, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: fall back to Pillow's naive conversion
    return im.convert("RGB")


def _encode_all(
    im: Image.Image,
    icc: bytes | None,
    widths: list[int],
    fallback: str,
    spec: RenderSpec,
    blobs: dict[str, bytes],
) -> list[Variant]:
    formats = [fallback, *[f for f in spec.formats if f != fallback]]
    variants: list[Variant] = []
    current = im
    for width in reversed(widths):
        height = max(1, round(im.height * width / im.width))
        if current.size != (width, height):
            current = current.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        for fmt in formats:
            data = encode(current, fmt, spec, icc)
            digest = hashlib.sha256(data).hexdigest()[:10]
            blobs[digest] = data
            variants.append(Variant(width, height, fmt, digest, len(data)))
    return sorted(variants, key=lambda v: (v.width, v.format))


def encode(im: Image.Image, fmt: str, spec: RenderSpec, icc: bytes | None) -> bytes:
    """One image in one format with the project's encoder settings (deterministic bytes)."""
    im = _mode_for(im, fmt)
    options: dict[str, object] = {"icc_profile": icc} if icc else {}
    quality = spec.quality_for(fmt)
    if fmt == "jpeg":
        options.update(quality=quality, optimize=True, progressive=True, subsampling="4:2:0")
    elif fmt == "png":
        # zlib level 6: on screenshots Pillow's optimize pass took 3.5x the time for 1% fewer bytes.
        options.update(compress_level=6)
    elif fmt == "webp":
        # method 2: half the CPU of libwebp's default 4 for ~5% more bytes (16 corpus images at
        # 1600 px: 1.25 s and 2.11 MB against 2.68 s and 2.01 MB). WebP is the middle fallback,
        # behind AVIF, and at 4 it was the costliest encode of a variant set.
        options.update(quality=quality, method=spec.webp_method)
    elif fmt == "avif":
        options.update(quality=quality, speed=spec.avif_speed, subsampling="4:2:0")
        if spec.avif_threads:
            options["max_threads"] = spec.avif_threads
    buffer = io.BytesIO()
    im.save(buffer, _PIL_NAMES[fmt], **options)
    return buffer.getvalue()


def _mode_for(im: Image.Image, fmt: str) -> Image.Image:
    if fmt == "jpeg" and im.mode not in ("RGB", "L"):
        return im.convert("RGB")
    if fmt in ("webp", "avif") and im.mode == "L":
        return im.convert("RGB")
    return im


def _drop_larger(
    variants: list[Variant], width: int, height: int, original_size: int, fallback: str
) -> list[Variant]:
    """Keep only variants that save bytes over what the browser would otherwise fetch.

    A fallback no smaller than the original file is dropped and the original itself (under
    its own URL, at its true width) is listed instead; a modern format no smaller than the
    fallback candidate at the same width is dropped, since browsers prefer it to that file.
    """
    original = Variant(width, height, fallback, "", original_size)
    fallbacks = [v for v in variants if v.format == fallback]
    kept = {v.width: v for v in fallbacks if v.size < original_size}
    if len(kept) < len(fallbacks) and width not in kept:
        kept[width] = original
    chosen = [*kept.values()]
    for v in variants:
        if v.format != fallback and v.size < kept.get(v.width, original).size:
            chosen.append(v)
    return sorted(chosen, key=lambda v: (v.width, v.format, v.digest))
