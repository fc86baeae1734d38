"""The JSON forms of outcomes and settings, and the checks on what comes back from a worker.

Two things the deployer reads were written by the sandboxed image worker, which decodes
content-controlled bytes and so must be assumed compromised: the result lines it sends over
its pipe, and the cache's ``outcome.json`` files. Both are plain JSON (never pickles: nothing
a worker sends can make the parent run code) and both go through :func:`outcome_from_json`,
which accepts only the exact shape the worker writes: known statuses and formats, digests of
10 hex digits (they become file names), bounded integers, at least one fallback variant for
an ``ok``. Anything else raises :class:`WireError`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from typing import Any

from .model import EXTENSIONS, Outcome, Rendered, RenderSpec, Variant

_DIGEST = re.compile(r"[0-9a-f]{10}")
KEY = re.compile(r"[0-9a-f]{64}")
"""A cache key: the SHA-256 of a source and its settings (:func:`.cache.cache_key`)."""
MAX_PIXELS_SIDE = 1 << 24
MAX_FILE_BYTES = 1 << 40
MAX_VARIANTS = 4096
MAX_REASON = 1000
_STATUSES = ("ok", "skip", "error")
_OUTCOME_KEYS = {"status", "width", "height", "fallback", "variants", "reason"}
_VARIANT_KEYS = {"width", "height", "format", "digest", "size"}


class WireError(ValueError):
    """Data from a worker or the cache that is not what a worker writes."""


def outcome_to_json(outcome: Outcome) -> dict[str, Any]:
    return dataclasses.asdict(outcome)


def outcome_from_json(raw: object) -> Outcome:
    """An :class:`Outcome` from untrusted JSON, every field checked."""
    data = _exact(raw, _OUTCOME_KEYS, "outcome")
    status = data["status"]
    if status not in _STATUSES:
        raise WireError(f"unknown status {status!r}")
    fallback = _string(data["fallback"], "fallback")
    variants = data["variants"]
    if not isinstance(variants, list) or len(variants) > MAX_VARIANTS:
        raise WireError("variants must be a list")
    outcome = Outcome(
        status,
        _integer(data["width"], 0, MAX_PIXELS_SIDE, "width"),
        _integer(data["height"], 0, MAX_PIXELS_SIDE, "height"),
        fallback,
        tuple(_variant(v) for v in variants),
        _string(data["reason"], "reason")[:MAX_REASON],
    )
    _check_consistent(outcome)
    return outcome


def _check_consistent(outcome: Outcome) -> None:
    """What the markup relies on: an ``ok`` has a known fallback with a variant in it; the
    others have no variants at all."""
    if outcome.status != "ok":
        if outcome.variants:
            raise WireError(f"a {outcome.status!r} outcome with variants")
        return
    if outcome.fallback not in EXTENSIONS:
        raise WireError(f"unknown fallback format {outcome.fallback!r}")
    if not any(v.format == outcome.fallback for v in outcome.variants):
        raise WireError("an ok outcome without a fallback variant")


def _variant(raw: object) -> Variant:
    data = _exact(raw, _VARIANT_KEYS, "variant")
    fmt, digest = _string(data["format"], "format"), _string(data["digest"], "digest")
    if fmt not in EXTENSIONS:
        raise WireError(f"unknown format {fmt!r}")
    if digest and not _DIGEST.fullmatch(digest):
        raise WireError(f"digest {digest!r} is not 10 hex digits")
    return Variant(
        _integer(data["width"], 1, MAX_PIXELS_SIDE, "variant width"),
        _integer(data["height"], 1, MAX_PIXELS_SIDE, "variant height"),
        fmt,
        digest,
        _integer(data["size"], 0, MAX_FILE_BYTES, "size"),
    )


def blobs_to_json(blobs: dict[str, bytes]) -> dict[str, str]:
    return {digest: base64.b64encode(data).decode("ascii") for digest, data in blobs.items()}


def blobs_from_json(raw: object, outcome: Outcome) -> dict[str, bytes]:
    """Encoded variants sent over the pipe (the cache could not store them): exactly the
    outcome's variants, each matching its digest and size."""
    wanted = {v.digest: v for v in outcome.variants if not v.is_original}
    data = _exact(raw, set(wanted), "blobs")
    blobs = {}
    for digest, variant in wanted.items():
        text = _string(data[digest], "blob")
        try:
            blob = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise WireError(f"blob {digest}: {exc}") from None
        if len(blob) != variant.size or hashlib.sha256(blob).hexdigest()[:10] != digest:
            raise WireError(f"blob {digest} does not match its digest or size")
        blobs[digest] = blob
    return blobs


def rendered_from_json(outcome: object, blobs: object) -> Rendered:
    checked = outcome_from_json(outcome)
    return Rendered(checked, blobs_from_json(blobs, checked) if blobs is not None else {})


def spec_to_json(spec: RenderSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def spec_from_json(raw: dict[str, Any]) -> RenderSpec:
    """The settings the parent sent (trusted: the worker's own instructions)."""
    return RenderSpec(
        widths=tuple(raw["widths"]),
        formats=tuple(raw["formats"]),
        quality=tuple((str(k), int(v)) for k, v in raw["quality"]),
        max_pixels=int(raw["max_pixels"]),
        avif_speed=int(raw["avif_speed"]),
        webp_method=int(raw["webp_method"]),
        avif_threads=int(raw["avif_threads"]),
    )


def _exact(raw: object, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) != keys:
        raise WireError(f"{what} must be an object with exactly {sorted(keys)}")
    return raw


def _integer(value: object, low: int, high: int, what: str) -> int:
    # bool is an int subclass; a worker sending true for a width is not writing what we wrote.
    if type(value) is not int or not low <= value <= high:
        raise WireError(f"{what} must be an integer from {low} to {high}, got {value!r}")
    return value


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise WireError(f"{what} must be a string, got {type(value).__name__}")
    return value
