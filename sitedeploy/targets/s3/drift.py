"""Drift on an S3 target: is what readers get the release's bytes? And putting them back.

The listing finds missing and extra keys; every other key's body is read (one GET each, on the
target's pool) and its sha256, gunzipped if stored compressed, compared with the manifest's.
A repair uploads the release's own files again, checked against the manifest first. A retained
release (before a rollback) is checked for where its bodies are kept, not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import TargetError
from ...release.manifest import Manifest, hash_file
from ..base import Drift, TransferStats
from .client import error_code
from .live import LiveState, Touch
from .meta import STATE_DIR
from .site_rules import EMPTY, SiteRules

if TYPE_CHECKING:
    from .target import S3Target

_MISSING = ("NoSuchKey", "404", "NotFound")


def verify(t: S3Target, release_id: str, manifest: Manifest) -> list[Drift]:
    """Compare the bucket with the release's manifest: the listing finds missing and extra
    keys, then every other key's body is read (one GET each, on the pool) and its sha256,
    gunzipped if stored compressed, compared with the manifest's.

    Why no GET is skipped for a key whose ETag still matches what sitedeploy recorded: a
    single-part ETag is the body's MD5, and MD5 collisions are cheap to make, so whoever
    can write the bucket can change a key's content and keep its ETag (and its headers).
    Only the manifest's sha256 tells content apart; deploys and rollbacks still trust the
    ETags (no GET there): a verify is the one place that pays for reading the site."""
    state = t.base_state()
    listed = listing(t)
    site = t.site_rules(release_id)
    manifest = site.view(manifest)
    if state.release != release_id:
        return [_verify_retained(t, manifest, state, listed)]
    drift = Drift(where=t.describe())
    suspect: list[str] = []
    for path, entry in manifest.items():
        if path.startswith(STATE_DIR):  # never site content: never checked nor repaired
            continue
        got, stored = listed.get(path), state.objects.get(path)
        recorded = (stored.size, stored.etag) if stored else (entry.size, got[1] if got else "")
        if got is None:
            drift.missing.append(path)
        elif path in state.dirty or got != recorded:
            drift.changed.append(path)  # cheap: the listing already tells
        else:
            suspect.append(path)
    for path, verdict in t.run_all(lambda p: (p, _content_drift(t, p, manifest, state, site)), suspect):
        if verdict is not None:
            getattr(drift, verdict).append(path)
    drift.missing.sort()
    drift.changed.sort()
    drift.extra = sorted(p for p in listed if p not in manifest and p not in state.stale)
    return [drift]


def _content_drift(
    t: S3Target, path: str, manifest: Manifest, state: LiveState, site: SiteRules
) -> str | None:
    """``"changed"`` if what readers get at ``path`` is not the manifest's bytes with the
    headers sitedeploy wrote (an encoding a browser would decode differently counts),
    ``"missing"`` if the key went away since the listing, None if it is intact."""
    entry, stored = manifest[path], state.objects.get(path)
    want = stored.headers if stored else site.headers_for(path, entry.content_type)
    with t.errors(f"read {t.prefix}{path}"):
        try:
            got = t.bucket.fetch(t.prefix + path, entry.size)
        except Exception as exc:
            if error_code(exc) in _MISSING:
                return "missing"
            raise
    if got.sha256 != entry.sha256 or got.headers.content_encoding != want.content_encoding:
        return "changed"
    if stored is not None and got.headers != stored.headers:
        return "changed"  # e.g. a Content-Type that makes a text file run as a page
    return None


def _verify_retained(
    t: S3Target, manifest: Manifest, state: LiveState, listed: dict[str, tuple[int, str]]
) -> Drift:
    """A retained release is whole when every body it needs is stored: at a live key that
    still holds exactly what sitedeploy wrote there, in ``objects/``, or as the noncurrent
    version the state names (one HEAD each; a rollback copies from any of those). A body
    found nowhere is reported ``missing``: the switch would fail."""
    live = {
        s.sha256
        for path, s in state.objects.items()
        if path not in state.dirty and listed.get(path) == (s.size, s.etag)
    }
    needed = {e.sha256 for e in manifest.values()} - live - {EMPTY}  # written from nothing
    if needed:
        needed -= {k[len(t.objects_prefix) :] for k in t.list_keys(t.objects_prefix)}
    lost = t.bodies.lost(needed, state.homes) if needed else set()
    drift = Drift(where=f"{t.describe()} (retained)")
    drift.missing = [p for p, e in manifest.items() if e.sha256 in lost]
    return drift


def repair(t: S3Target, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]) -> None:
    state = t.base_state()
    if state.release != release_id:
        raise TargetError(f"target '{t.name}': {release_id} is no longer live; verify again")
    site = t.site_rules(release_id)
    manifest = site.view(manifest)
    fix = sorted({p for d in drift for p in d.missing + d.changed})
    for path in fix:
        if manifest[path].sha256 != EMPTY and hash_file(build_dir / path) != manifest[path].sha256:
            raise TargetError(f"target '{t.name}': the rebuilt {path} differs from the release; not repaired")
    touches = [
        Touch(
            p,
            "put",
            manifest[p].sha256,
            manifest[p].size,
            site.headers_for(p, manifest[p].content_type),
        )
        for p in fix
    ]
    stats = TransferStats()
    state.objects.update(t.write_group(touches, build_dir, stats, lambda n: None))
    extra = sorted({p for d in drift for p in d.extra})
    with t.errors("delete extra keys"):
        t.bucket.delete([t.prefix + p for p in extra])
    state.dirty -= {*fix, *extra}
    state.pending = state.pending if state.dirty else None
    if not state.dirty and state.known is not None:  # every suspect key is repaired
        state.known = set(t.list_releases())
    t.write_state(state)
    t.invalidate(fix + extra, f"repair-{release_id}")


def listing(t: S3Target) -> dict[str, tuple[int, str]]:
    """Every key of the site (not ``.sitedeploy/``): path -> (size, ETag)."""
    out: dict[str, tuple[int, str]] = {}
    with t.errors("list the bucket"):
        pages = t.s3.get_paginator("list_objects_v2").paginate(Bucket=t.cfg.bucket, Prefix=t.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not key.startswith(t.meta_prefix):
                    out[key[len(t.prefix) :]] = (obj["Size"], obj["ETag"])
    return out
