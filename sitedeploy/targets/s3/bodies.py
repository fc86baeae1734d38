"""Where the S3 target keeps the bodies a rollback needs: old versions, or copies.

A switch overwrites or deletes live keys, and a retained release (``keep_releases``) may still
need what was there. Two ways to keep it:

*Versions.* On a bucket whose versioning is ``Enabled`` (GetBucketVersioning, asked once per
run; ``versioning = "off"`` never asks), an overwritten or deleted key keeps its old body as a
noncurrent version. Every write records the VersionId it returned (``Stored.version_id``), and
when a body leaves the live keys the state object notes that version as the body's *home*
(``LiveState.homes``: sha256 -> key, version id, ``until``), in the commit it makes anyway.
Nothing is written for it, so a one-page deploy writes the changed bodies plus the lock, the
release object and the state object. A rollback copies from ``CopySource={"Key", "VersionId"}``.

*Copies.* Otherwise -- an unversioned bucket, or a key whose write returned no version id (a
state written before the bucket kept versions) -- ``prepare`` copies the body to
``.sitedeploy/objects/<sha256>`` before the switch (a server-side copy per replaced body).

How long a home is kept: ``until`` is the newest release id listed when the body last left the
live keys. Any release that holds the body and was not live then was listed then, so its id is
at most ``until``; a release made later held the body at a live key and, when the body left
again, refreshed the home. So once no release as old as ``until`` is listed, no retained
release needs the home (:func:`expired`): prune deletes its version (DeleteObjects with a
VersionId) when the release whose removal expires it goes, and the next commit drops it.

What else is deleted on a versioned bucket, so storage stays bounded:

- after each commit, the versions it made noncurrent that no home keeps (the old body of a key
  whose bytes another live key still holds, the old version of a key whose headers changed, a
  home's older version when a newer one replaces it);
- every ``SWEEP_EVERY`` switches, after the commit, a sweep lists every version under the
  prefix and deletes the noncurrent ones that no home keeps: leftovers of dead runs, stale keys
  deleted after ``retain_releases`` switches, old versions of sitedeploy's own files (the newest
  ``STATE_VERSIONS`` of the state object stay, to restore it by hand) and deleted copies. A
  delete marker goes only with the last version behind it, so a deleted key never reappears.
  Folders holding another target's current ``.sitedeploy/`` files (versions, previews) are
  that target's to sweep.

Kept, then: the live site, one version per body a retained release needs, a few versions of the
state object, and at most ``SWEEP_EVERY`` switches' worth of leftovers.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from botocore.exceptions import ClientError

from ...errors import TargetError
from ...release.manifest import Manifest
from .client import error_code
from .live import Home, LiveState, Stored, Switch
from .meta import STATE_DIR

if TYPE_CHECKING:
    from .target import S3Target

log = logging.getLogger(__name__)
SWEEP_EVERY = 10
"""Switches between two sweeps of the bucket's versions (a listing of every version)."""
STATE_VERSIONS = 5
"""Noncurrent versions of the state object a sweep leaves, for restoring it by hand."""
_MISSING = ("NoSuchKey", "NoSuchVersion", "404", "NotFound")

Version = tuple[str, str]
"""(key, version id)."""


def expired(home: Home, listed: Iterable[str]) -> bool:
    """No listed release is as old as ``home.until``: none can need the body any more."""
    return all(rid > home.until for rid in listed)


def live_homes(homes: dict[str, Home], listed: Iterable[str]) -> dict[str, Home]:
    ids = list(listed)
    return {sha: home for sha, home in homes.items() if not expired(home, ids)}


def settle(
    base: LiveState, switch: Switch, objects: dict[str, Stored], known: set[str]
) -> tuple[dict[str, Home], list[Version]]:
    """The homes a switch commits, and the versions (path, id) it leaves that nothing needs."""
    newest = max(known)
    homes = live_homes(base.homes, known)
    leftovers: list[Version] = []
    for sha, (path, version) in switch.homes.items():
        older = homes.get(sha)
        if older is not None and (older.path, older.version_id) != (path, version):
            leftovers.append((older.path, older.version_id))  # the newer version keeps the body
        homes[sha] = Home(path, version, newest)
    for touch in switch.touches:  # the version each write made noncurrent
        before = base.objects.get(touch.path)
        if before is not None and before.version_id:
            leftovers.append((touch.path, before.version_id))
    kept = {(h.path, h.version_id) for h in homes.values()}
    served = {*switch.stale, *switch.deletes, *switch.confirm}  # deleted by key: a sweep gets them
    return homes, [v for v in leftovers if v not in kept and noncurrent(v, objects, served)]


def noncurrent(version: Version, objects: dict[str, Stored], served: Iterable[str]) -> bool:
    """Not what a reader gets at its key: never delete that by id (the version before it, or
    nothing, would take its place before the key's time is up)."""
    path, version_id = version
    stored = objects.get(path)
    return path not in served and (stored is None or stored.version_id != version_id)


class Listed(NamedTuple):
    """One entry of ListObjectVersions: a version or a delete marker."""

    key: str
    version_id: str
    latest: bool
    marker: bool
    modified: datetime


def unneeded(entries: Iterable[Listed], keep: set[Version], prefix: str) -> list[Version]:
    """What a sweep deletes: every noncurrent version or marker not in ``keep`` (but the newest
    ``STATE_VERSIONS`` of the state object), and a current delete marker with nothing left
    behind it. Keys under another target's folder are left alone."""
    by_key: dict[str, list[Listed]] = defaultdict(list)
    for entry in entries:
        by_key[entry.key].append(entry)
    foreign = _nested_roots(by_key, prefix)
    doomed: list[Version] = []
    for key, group in sorted(by_key.items()):
        if any(key.startswith(root) for root in foreign):
            continue
        spare = set() if key != f"{prefix}{STATE_DIR}live.json" else _newest_noncurrent(group)
        gone = [e for e in group if not e.latest and (key, e.version_id) not in keep | spare]
        left = [e for e in group if e not in gone]
        if len(left) == 1 and left[0].marker:
            gone.append(left[0])  # the key is deleted and nothing is behind the marker
        doomed += [(key, e.version_id) for e in gone]
    return doomed


def _nested_roots(by_key: dict[str, list[Listed]], prefix: str) -> set[str]:
    """``<prefix>a/b/`` for every current ``<prefix>a/b/.sitedeploy/…`` object: another
    target's folder (a version or preview line). A line that was removed has only delete
    markers left there: its leftovers are swept with the rest."""
    roots: set[str] = set()
    for key, group in by_key.items():
        rel = key[len(prefix) :]
        at = rel.find(f"/{STATE_DIR}")
        if at >= 0 and any(e.latest and not e.marker for e in group):
            roots.add(prefix + rel[: at + 1])
    return roots


def _newest_noncurrent(group: list[Listed]) -> set[Version]:
    older = sorted(
        (e for e in group if not e.latest and not e.marker), key=lambda e: e.modified, reverse=True
    )
    return {(e.key, e.version_id) for e in older[:STATE_VERSIONS]}


class Bodies:
    """The target's rollback storage: versioning detected once, copies, prune, sweeps."""

    def __init__(self, target: S3Target) -> None:
        self.t = target
        self._versioned: bool | None = None
        self._kept: set[str] = set()
        self._manifests: dict[str, Manifest | None] = {}

    @property
    def versioned(self) -> bool:
        """The bucket keeps versions (asked once; ``versioning = "off"``: never asked)."""
        if self._versioned is None:
            self._versioned = self.t.cfg.versioning != "off" and self._ask_versioning()
        return self._versioned

    def _ask_versioning(self) -> bool:
        with self.t.errors("read the bucket's versioning"):
            try:
                status = self.t.s3.get_bucket_versioning(Bucket=self.t.cfg.bucket).get("Status")
            except ClientError as exc:  # e.g. no s3:GetBucketVersioning: copies are always safe
                log.warning(
                    "%s: cannot read the bucket's versioning (%s); replaced bodies are copied to "
                    "%sobjects/ (set versioning = \"off\" to stop asking)",
                    self.t.name, error_code(exc), self.t.meta_prefix,
                )  # fmt: skip
                return False
        return status == "Enabled"

    # --- before the switch --------------------------------------------------------------------

    def keep_copies(self, switch: Switch) -> None:
        """Copy each body the switch replaces and no version keeps into ``objects/``."""
        todo = [(sha, path) for sha, path in switch.preserve.items() if sha not in self._kept]

        def keep(item: tuple[str, str]) -> None:
            sha, path = item
            with self.t.errors(f"keep {path} for rollback"):
                self.t.bucket.keep_copy(self.t.prefix + path, self.t.objects_prefix + sha)
            self._kept.add(sha)

        self.t.run_all(keep, todo)

    # --- after the commit ---------------------------------------------------------------------

    def confirm_deleted(self, paths: list[str]) -> list[str]:
        """Delete again, at the start of a switch, the keys an earlier commit recorded as gone
        (stale at 0); return those to retry (this commit keeps them). Usually a no-op, but
        the run that made that commit may have stopped before its own delete (killed), or had
        it refused: only a delete seen to go through lets a key leave the state."""
        if not paths:
            return []
        try:
            with self.t.errors("delete stale keys"):
                failed = set(self.t.bucket.delete([self.t.prefix + p for p in paths]))
        except TargetError as exc:
            log.warning("%s (retried by the next switch)", exc.message)
            return paths
        return [p for p in paths if self.t.prefix + p in failed]

    def after_commit(self, state: LiveState, stale_keys: list[str], leftovers: list[Version]) -> None:
        """Deferred deletes: stale keys and versions nothing needs; every ``SWEEP_EVERY``
        switches, a sweep. A failure (or a kill) only leaves something behind: stale keys stay
        in the state and the next switch deletes them (:meth:`confirm_deleted`), versions go
        with a later sweep. The release is live either way."""
        versions = [(self.t.prefix + path, v) for path, v in leftovers]
        self._quietly("delete stale keys", lambda: self.t.bucket.delete(stale_keys, versions))
        if self.versioned and state.switches % SWEEP_EVERY == 0:
            self._quietly("sweep old versions", lambda: self.sweep(state))

    def sweep(self, state: LiveState) -> list[str]:
        keep = {(self.t.prefix + h.path, h.version_id) for h in state.homes.values()}
        doomed = unneeded(self._listing(), keep, self.t.prefix)
        log.info("%s: sweeping %d old versions", self.t.name, len(doomed))
        return self.t.bucket.delete([], doomed)

    def _listing(self) -> Iterator[Listed]:
        pages = self.t.s3.get_paginator("list_object_versions").paginate(
            Bucket=self.t.cfg.bucket, Prefix=self.t.prefix
        )
        for page in pages:
            for v in page.get("Versions", []):
                yield Listed(v["Key"], v["VersionId"], v["IsLatest"], False, v["LastModified"])
            for m in page.get("DeleteMarkers", []):
                yield Listed(m["Key"], m["VersionId"], m["IsLatest"], True, m["LastModified"])

    def _quietly(self, what: str, delete: Callable[[], list[str]]) -> None:
        try:
            with self.t.errors(what):
                failed = delete()
            if failed:
                log.warning(
                    "%s: could not %s: %d keys (first: %s)", self.t.name, what, len(failed), failed[0]
                )
        except TargetError as exc:
            log.warning(
                "%s (the release is live; 'sitedeploy verify --repair' removes extra keys)", exc.message
            )

    # --- prune ----------------------------------------------------------------------------------

    def remove(self, release_id: str) -> None:
        """Delete what only ``release_id`` needed: the versions of the homes that expire
        without it, and the copies in ``objects/`` no other release's manifest references."""
        state = self.t.read_state()
        others = [r for r in self.t.list_releases() if r != release_id]
        doomed = [
            (self.t.prefix + h.path, h.version_id)
            for h in state.homes.values()
            if expired(h, others)
            and not expired(h, [*others, release_id])
            and noncurrent((h.path, h.version_id), state.objects, state.stale)
        ]
        if doomed:
            with self.t.errors(f"remove old versions of release {release_id}"):
                self.t.bucket.delete([], doomed)
        self._remove_copies(release_id, others)

    def _remove_copies(self, release_id: str, others: list[str]) -> None:
        kept = self.t.list_keys(self.t.objects_prefix)
        if not kept:  # nothing copied (a versioned bucket): no manifest to read
            return
        referenced: set[str] = set()
        for rid in others:
            manifest = self.manifest(rid)
            if manifest is None:
                return  # cannot tell what it needs: keep everything
            referenced.update(entry.sha256 for entry in manifest.values())
        doomed = [k for k in kept if k[len(self.t.objects_prefix) :] not in referenced]
        with self.t.errors(f"remove bodies of release {release_id}"):
            self.t.bucket.delete(doomed)
        self._manifests.pop(release_id, None)

    def manifest(self, rid: str) -> Manifest | None:
        if rid not in self._manifests:
            data = self.t.read_meta(f"manifests/{rid}.json")
            self._manifests[rid] = parse_manifest(data) if data else None  # None: keep every body
        return self._manifests[rid]

    # --- verify ---------------------------------------------------------------------------------

    def lost(self, shas: set[str], homes: dict[str, Home]) -> set[str]:
        """The bodies among ``shas`` whose home version is gone (one HEAD each)."""

        def gone(sha: str) -> str | None:
            home = homes[sha]
            with self.t.errors(f"read {self.t.prefix}{home.path} (version {home.version_id})"):
                try:
                    self.t.bucket.head(self.t.prefix + home.path, home.version_id)
                except Exception as exc:
                    if error_code(exc) in _MISSING:
                        return sha
                    raise
            return None

        return {sha for sha in self.t.run_all(gone, sorted(shas & set(homes))) if sha} | (shas - set(homes))


def parse_manifest(data: bytes) -> Manifest | None:
    """A manifest read back from the bucket, or None if it is damaged (or unsafe)."""
    try:
        return Manifest.from_json(data)
    except (ValueError, KeyError, TypeError):
        return None
