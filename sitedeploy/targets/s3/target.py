"""An S3 bucket (or any S3-compatible service): live keys written in a safe order.

Layout, under the target's ``prefix``::

    <prefix><path>                       the live site, served as is (website endpoint or CDN)
    <prefix>.sitedeploy/live.json        the state object: live release + what each key holds
    <prefix>.sitedeploy/releases/<id>.json  a release's record and manifest, one object (.releases)
    <prefix>.sitedeploy/control.json lock.json                                  (see records)
    <prefix>.sitedeploy/objects/<sha256> bodies kept for rollback as copies (unversioned buckets)

How a release goes live. S3 has no rename, so a switch rewrites the keys that differ, and
only those (found by comparing the release's manifest with the state object, never by
listing the bucket):

1. ``prepare`` makes sure every live body that the switch will overwrite or drop, and that no
   untouched key still holds, stays stored: on a versioned bucket its version stays and only
   its id is noted; otherwise it is copied into ``objects/`` (server-side). Readers see nothing.
2. ``S3Prepared.switch`` writes new and changed assets, then HTML pages, then the sitemap and search
   index, each group complete before the next, so a page never goes live before what it
   references. A change of headers alone is a copy of the key onto itself; a deploy uploads
   the other bodies straight to their live keys (one PUT each, like ``aws s3 sync``); a rollback
   copies them server-side from a live key, a noncurrent version or ``objects/``, uploads nothing.
3. CloudFront is asked to invalidate the changed paths.
4. The state object is written naming the new release, with the switch's history entry and
   the versions that now keep replaced bodies in it: the commit point. History lives in the
   state object (``history.json`` reads and writes are answered from it), so a switch and its
   record are one write that cannot tear.
5. Keys that left the release are deleted only after ``retain_releases`` switches, so pages
   held in browser and CDN caches keep their assets; a failed upload stops before any delete.
   The state keeps them (``stale`` 0) until the next switch has deleted them again (first
   thing, before its writes). Versions nothing needs any more go now too (``bodies``).

So a one-page deploy on a versioned bucket writes the changed bodies and three objects: the
lock, the release object and the state object.

Crash windows: before step 2 nothing visible changed. During step 2 or 3 the state still names
the old release, and the switch's release record (written before step 2, see
``release.transaction``) is missing from the state's ``known`` releases: the next switch reads
that release's manifest, rewrites every key the dead run may have touched, whatever it deploys,
and so the site converges (:mod:`.live`). A switch with no new release record (a rollback)
writes that evidence into the state object first (``pending``). After step 4 the release is
live; a kill or failure before step 5 leaves keys the state owns, deleted by the next switch.

Rollback storage (``bodies``): one stored copy of each body that was replaced or removed while
a retained release (``keep_releases``) still references it -- a noncurrent version on a
versioned bucket, a copy in ``objects/`` otherwise -- so its size is that of the changes over
the retained releases, not of whole releases. Pruning a release deletes what no remaining
release needs; on a versioned bucket a periodic sweep also removes every other old version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from boto3.s3.transfer import TransferConfig

from ...config import S3TargetConfig
from ...errors import TargetError
from ...progress import Progress
from ...release.diff import Plan
from ...release.manifest import Manifest
from ...release.records import HistoryEntry, ReleaseRecord, dump, history_with
from ..base import Closing, Drift, TransferStats
from . import cdn, drift
from .bodies import Bodies, live_homes, parse_manifest, settle
from .client import Clients, error_code, translated
from .headers import HeaderRules
from .live import LiveState, Stored, Switch, Touch, plan_switch, touched_by
from .meta import LOCK, STATE_DIR, MetaFiles
from .releases import ReleaseFiles, retire_prefix
from .site_rules import SiteRules, from_build, from_json
from .transfer import Bucket, write_touch

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
STATE = "live.json"
HISTORY = "history.json"
RULES = "sitedeploy-header-rules"
"""User metadata of ``releases/<id>.json``: the header rules the release was switched with."""
_MISSING = ("NoSuchKey", "NoSuchVersion", "404", "NotFound")


@dataclass
class S3Prepared:
    """A planned switch: the bodies it replaces are kept; nothing readers see has changed."""

    target: S3Target
    record: ReleaseRecord
    base: LiveState
    """The state object the switch was planned from (read under the transaction's lock)."""
    switch_plan: Switch
    build_dir: Path | None
    progress: Progress
    stats: TransferStats

    switching: bool = False

    def switch(self, entry: HistoryEntry) -> bool:
        self.switching = True
        self.target.switch_to(self, entry)
        return True  # the history entry is part of the state object: one write, the commit

    def discard(self) -> bool:
        """Nothing to undo: kept bodies are content-addressed and pruned with releases.
        A switch that failed midway may have made part of the release live (keys are written
        one by one): its record stays, the evidence from which the next run converges."""
        return not self.switching


def normalize_prefix(prefix: str) -> str:
    """``docs``, ``/docs/`` -> ``docs/``; the bucket's root is ``""``."""
    clean = prefix.strip("/")
    return f"{clean}/" if clean else ""


class S3Target(Closing):
    served_at = "/"  # the prefix's URL path, for redirects (a version's line: /1.0/, set by its Family)

    def __init__(self, name: str, cfg: S3TargetConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.prefix = normalize_prefix(cfg.prefix)
        self.meta_prefix = f"{self.prefix}{STATE_DIR}"
        self.objects_prefix = f"{self.meta_prefix}objects/"
        self.rules = HeaderRules(cfg.cache_control, cfg.gzip)
        self.clients = Clients(cfg)
        self._pool: ThreadPoolExecutor | None = None
        self._bucket: Bucket | None = None
        self.meta = MetaFiles(self.clients, cfg.bucket, self.meta_prefix, self.errors)
        tag = self.rules.tag()
        # A release object carries the header rules of its switch, for the run after a crash.
        rules_tag = {RULES: tag} if len(tag) <= 1800 else {}  # S3 allows 2 KB of metadata
        self.releases = ReleaseFiles(self.meta, rules_tag)
        self.bodies = Bodies(self)
        self._parsed: tuple[bytes, LiveState] | None = None

    def describe(self) -> str:
        return f"s3://{self.cfg.bucket}/{self.prefix}"

    @property
    def s3(self) -> S3Client:
        return self.clients.s3

    @property
    def bucket(self) -> Bucket:
        if self._bucket is None:
            transfer = TransferConfig(
                multipart_threshold=self.cfg.multipart_threshold,
                multipart_chunksize=max(8 * 1024 * 1024, self.cfg.multipart_threshold // 4),
                max_concurrency=4,
            )
            self._bucket = Bucket(self.s3, self.cfg.bucket, transfer)
        return self._bucket

    # --- MetaStore ------------------------------------------------------------------------

    def read_meta(self, name: str) -> bytes | None:
        if name == HISTORY:
            history = self.read_state().history
            if history is not None:
                return dump(history)
        handled, data = self.releases.read(name)
        return data if handled else self.meta.read(name)

    def write_meta(self, name: str, data: bytes) -> None:
        if name == HISTORY:  # history lives in the state object (see the module docstring)
            state = self.read_state()
            state.history = json.loads(data)
            self.write_state(state)
            return
        if not self.releases.write(name, data):  # a release's manifest and record: one object
            self.meta.write(name, data, fenced=name == LOCK)  # a lease renewal: only over ours

    def create_meta(self, name: str, data: bytes) -> bool:
        return self.meta.create(name, data)

    def delete_meta(self, name: str) -> None:
        self.meta.delete(name)

    # --- releases -------------------------------------------------------------------------

    def read_state(self) -> LiveState:
        data = self.read_meta(STATE)
        if data is not None and self._parsed is not None and self._parsed[0] is data:
            return self._parsed[1].copy()  # unchanged on the server (304): skip parsing it again
        try:
            parsed = LiveState.from_json(data)
            self._parsed = (data, parsed) if data is not None else None
            return parsed.copy()
        except (ValueError, KeyError, TypeError, IndexError):
            raise TargetError(
                f"target '{self.name}': {self.describe()}.sitedeploy/{STATE} is damaged; restore it from "
                "the bucket's versions or remove it and deploy again (every key is then rewritten)"
            ) from None

    def write_state(self, state: LiveState) -> None:
        data = state.to_json()
        self.meta.write(STATE, data, fenced=True)
        self._parsed = (data, state.copy())  # the next read is answered from memory: no parse

    def base_state(self) -> LiveState:
        """The state with interrupted switches folded in: a release record that the state does
        not know and this process did not write is a run that died mid-switch; every key it
        may have touched is suspect (``dirty``) and will be rewritten."""
        state = self.read_state()
        if state.known is None:
            return state  # written before ``known``: its ``pending`` says it all
        listed = self.list_releases()
        state.homes = live_homes(state.homes, listed)  # expired by a prune since the commit
        dead = set(listed) - state.known - self.meta.written
        clean = state.copy()
        for rid in sorted(dead):
            found = self.releases.read_with_rules(rid)
            manifest = parse_manifest(found[0]) if found else None
            if found is None or manifest is None:  # cannot tell what it wrote: suspect every key
                state.dirty |= set(state.objects)
            else:
                rules = HeaderRules.from_tag(found[1].get(RULES))
                site = self.site_rules(rid, rules) if rules else None
                state.dirty |= touched_by(clean, site.view(manifest) if site else manifest, site)
            state.pending = state.pending or rid
        return state

    def site_rules(self, rid: str, base: HeaderRules | None = None) -> SiteRules:
        """This target's header rules with release ``rid``'s ``_redirects`` and ``_headers``."""
        where = f"target '{self.name}': release {rid} in {self.describe()}.sitedeploy/releases/"
        return from_json(where, base or self.rules, self.releases.read_site_rules(rid), self.served_at)

    def live_release(self) -> str | None:
        return self.read_state().release

    def list_releases(self) -> list[str]:
        folder = f"{self.meta_prefix}releases/"

        def listing() -> list[str]:
            return sorted(k[len(folder) : -5] for k in self.list_keys(folder) if k.endswith(".json"))

        return self.meta.releases(listing)

    def prepare(
        self,
        record: ReleaseRecord,
        manifest: Manifest,
        plan: Plan,
        build_dir: Path | None,
        progress: Progress,
    ) -> S3Prepared:
        """Plan the switch and keep the bodies it will replace; readers see nothing.

        S3 has no rename: the bodies are sent by :meth:`S3Prepared.switch`, in the safe order,
        straight to their live keys (see the module docstring). Without ``build_dir`` (a
        rollback) every body comes from a server-side copy.
        """
        if build_dir is not None:
            site = from_build(self, build_dir, progress)
            if not site.rules.empty:  # kept in the release object, for rollback and verify
                self.releases.site_rules[record.id] = site.rules.to_json()
        else:
            site = self.site_rules(record.id)
        base = self.base_state()
        view = site.view(manifest)
        switch = plan_switch(base, view, site, local=build_dir is not None, retain=self._retain)
        stats = TransferStats(files_linked=len(switch.keep))
        self.bodies.keep_copies(switch)
        return S3Prepared(self, record, base, switch, build_dir, progress, stats)

    def switch_to(self, prepared: S3Prepared, entry: HistoryEntry) -> None:
        """Confirm earlier deletes (``Switch.confirm``); write the keys that differ; commit; delete."""
        record, state, switch, stats = prepared.record, prepared.base, prepared.switch_plan, prepared.stats
        undeleted = self.bodies.confirm_deleted(switch.confirm)
        objects = dict(switch.keep)
        if switch.touches:
            if record.id not in self.meta.written or state.known is None:
                # No release record of ours marks this switch: the state object must say that
                # from here until the commit these keys are in flux.
                state.pending = record.id
                state.dirty |= {t.path for t in switch.touches}
                self.write_state(state)
            bar = prepared.progress.bar(f"{self.name}: writing {self.describe()}", len(switch.touches))
            with bar as advance:
                for group in switch.groups:
                    objects.update(self.write_group(group, prepared.build_dir, stats, advance))
            self.invalidate([t.path for t in switch.touches], record.id)
        known = {*self.list_releases(), record.id}  # every dead run's keys were rewritten above
        homes, leftovers = settle(state, switch, objects, known)
        history = history_with(self, entry)
        stale = switch.recorded_stale(undeleted)
        done = LiveState(record.id, objects, stale, known=known, history=history, homes=homes)
        done.switches = state.switches + 1
        self.write_state(done)
        self.bodies.after_commit(done, [self.prefix + p for p in switch.deletes], leftovers)

    @property
    def _retain(self) -> int:
        return max(1, self.cfg.retain_releases)

    def write_group(
        self, group: list[Touch], build_dir: Path | None, stats: TransferStats, advance: Callable[[int], None]
    ) -> dict[str, Stored]:
        self.bucket.keep_versions = self.bodies.versioned

        def write(touch: Touch) -> tuple[str, Stored]:
            source = self.prefix + touch.source if touch.source else self.objects_prefix + touch.sha256
            with self.errors(f"write {self.prefix}{touch.path}"):
                try:
                    stored = write_touch(self.bucket, touch, self.prefix + touch.path, source, build_dir)
                except Exception as exc:
                    if touch.kind == "copy" and error_code(exc) in _MISSING:
                        raise self._lost_body(touch) from exc
                    raise
            advance(1)
            return touch.path, stored

        written = dict(self.run_all(write, group))
        for touch in group:  # counted here, not in the workers: += on shared ints is not atomic
            if touch.kind == "put":
                stats.files_sent += 1
                stats.bytes_sent += written[touch.path].size
            else:
                stats.files_linked += 1
        return written

    def _lost_body(self, touch: Touch) -> TargetError:
        return TargetError(
            f"target '{self.name}': cannot restore {touch.path}: its content ({touch.sha256[:12]}) is no "
            f"longer stored in {self.describe()}; deploy that release's commit instead"
        )

    def invalidate(self, paths: list[str], reference: str) -> None:
        distribution = self.cfg.cloudfront_distribution_id
        urls = cdn.invalidation_paths(paths, self.cfg.invalidation_budget)
        if not distribution or not urls:
            return
        with translated(self.name, f"CloudFront distribution {distribution}", "invalidate changed paths"):
            cdn.invalidate(self.clients.cloudfront, distribution, urls, reference)

    def remove_release(self, release_id: str) -> None:
        """Drop the kept bodies (versions, copies) that no other retained release needs."""
        if release_id == self.live_release():
            raise TargetError(f"target '{self.name}': refusing to remove the live release {release_id}")
        self.bodies.remove(release_id)

    # --- drift (see .drift) ------------------------------------------------------------------

    def verify(self, release_id: str, manifest: Manifest) -> list[Drift]:
        return drift.verify(self, release_id, manifest)

    def repair(self, release_id: str, manifest: Manifest, build_dir: Path, found: list[Drift]) -> None:
        drift.repair(self, release_id, manifest, build_dir, found)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.clients.close()
        self._bucket = None

    # --- helpers --------------------------------------------------------------------------

    def retire(self) -> None:
        """Every key under the line's own prefix, the lock last (the caller's release)."""
        with self.errors("retire the line"):
            retire_prefix(self.name, self.bucket, self.list_keys(self.prefix), f"{self.meta_prefix}lock.json")

    def list_keys(self, prefix: str) -> list[str]:
        with self.errors(f"list {prefix}"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.cfg.bucket, Prefix=prefix)
            return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def run_all(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` on the shared pool; the first failure cancels the rest."""
        items = list(items)
        if len(items) <= 1:  # no thread for a single request
            return [fn(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.cfg.max_concurrency, thread_name_prefix=f"s3-{self.name}")
        futures: list[Future[R]] = [self._pool.submit(fn, item) for item in items]
        try:
            return [f.result() for f in as_completed(futures)]
        except BaseException:
            for f in futures:
                f.cancel()
            wait(futures)
            raise

    @contextmanager
    def errors(self, operation: str) -> Iterator[None]:
        with translated(self.name, self.describe(), operation):
            yield
