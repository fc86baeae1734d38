"""How a build uses the shared cache (:mod:`sitedeploy.cache`): look up, wait, write.

A site's shared key is the local build cache's own key material (:meth:`SiteJob.key_payload
<sitedeploy.build.sites.SiteJob.key_payload>`: sitedeploy's version, the builder, the git tree
of the site's folder, its ``SOURCE_DATE_EPOCH``, its settings, Python's version) with the
shared entry format (:data:`CACHE_FORMAT`) in front, as a full sha256.

Per trust level (:data:`~sitedeploy.build.sites.Trust`):

- production reads (``mode`` "cache-first" or "cache-only") and, with a
  ``cache_signing_key``, writes each site it built;
- branch and pull-request previews read — an entry is used only when signed by a key of
  ``cache_allowed_signers`` for this very key, i.e. it is exactly what production built from
  the same tree, so reading lowers nobody's trust — and **never write**: a fork's build
  must not become an entry any other build reads. "cache-only" does not apply to them
  (CI pushes production builds): a missing preview build is built here.

Writes run in the background (:class:`Uploads`): a site's upload (pack, sign, create) runs
beside the next site's build, at most :data:`UPLOADERS` at once, and every upload is joined
before the release is assembled (:func:`uploading`), so no deploy ends with a write in flight
and each failure is still reported.

A fetched entry lands in the level's local build cache (:func:`~sitedeploy.build.sites.trust_dir`)
like a local build, so the next deploy reuses it without the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import SharedCache, StoreError, open_store
from ..cache.entries import Packed
from ..config import Config
from ..errors import BuildError, ConfigError
from ..progress import Progress
from ..release.manifest import files
from .release_tree import publish_dir
from .sites import SiteJob, Trust

CACHE_FORMAT = 2
"""The shared entry format, part of every shared key: a new format never reads an old one."""
_POLL_SECONDS = 5.0
UPLOADERS = 2
"""Uploads at once: packing is CPU, and the builds beside it need the cores more."""
_log = logging.getLogger(__name__)


def shared_key(site: SiteJob) -> str:
    return hashlib.sha256(b"sitedeploy-shared-build %d\n" % CACHE_FORMAT + site.key_payload()).hexdigest()


class Uploads:
    """The sites of one run being packed for the shared cache, beside the next builds."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[tuple[SiteJob, Future[Packed | None]]] = []
        self._lock = threading.Lock()

    def submit(self, site: SiteJob, work: Callable[[], Packed | None]) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(UPLOADERS, thread_name_prefix="cache-upload")
            self._pending.append((site, self._pool.submit(work)))

    def take(self) -> list[tuple[SiteJob, Future[Packed | None]]]:
        """Every submitted site, its packing finished (or failed)."""
        with self._lock:
            pool, pending, self._pool, self._pending = self._pool, self._pending, None, []
        if pool is not None:
            pool.shutdown(wait=True)
        return pending


@dataclass(frozen=True)
class SharedBuilds:
    """The shared cache as the builds of one trust level see it."""

    cache: SharedCache
    mode: str
    wait: float
    trust: Trust
    uploads: Uploads = field(default_factory=Uploads, compare=False)

    @property
    def writes(self) -> bool:
        return self.trust == "production" and self.cache.signing_key is not None

    @property
    def waits(self) -> bool:
        return self.trust == "production" and self.mode == "cache-only"

    def fetch(self, site: SiteJob, entry: Path, progress: Progress) -> bool:
        """Whether ``entry`` (missing locally) now holds the site's build from the shared cache.
        mode = "cache-only" (production): wait up to ``cache_wait`` for it, then fail."""
        if self.mode == "local":
            return False
        deadline = time.monotonic() + (self.wait if self.waits else 0.0)
        while True:
            problem = self._fetch_once(site, entry, progress)
            if problem is None:
                return True
            left = deadline - time.monotonic()
            if not self.waits:
                return False
            if left <= 0:
                raise _retryable(
                    f"site '{site.config.name}': {problem} in the shared cache {self.cache.store.where} "
                    f"after {self.wait:g} s (mode = \"cache-only\"); run 'sitedeploy build --push' "
                    'for this commit in CI, raise cache_wait, or set mode = "cache-first"'
                )
            time.sleep(min(_POLL_SECONDS, left))

    def _fetch_once(self, site: SiteJob, entry: Path, progress: Progress) -> str | None:
        """None once fetched, else why not (for the cache-only failure)."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".fetch-{site.key}-", dir=entry.parent))
        try:
            (tmp / "entry").mkdir()
            try:
                found = self.cache.fetch(shared_key(site), tmp / "entry")
            except StoreError as exc:
                _warn(progress, f"shared cache unavailable ({exc}); building site '{site.config.name}'")
                return "no build (the cache is unavailable)"
            if found.problem is not None:
                _warn(progress, f"shared cache entry of site '{site.config.name}' ignored: {found.problem}")
            if not found.ok:
                return found.problem or "no build"
            stats = {
                rel: [st.st_ino, st.st_size, st.st_mtime_ns] for rel, _, st in files(tmp / "entry" / "out")
            }
            (tmp / "entry" / "stats.json").write_text(json.dumps(stats, separators=(",", ":")))
            publish_dir(tmp / "entry", entry)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        progress.step(f"fetched site '{site.config.name}' from the shared cache (signed by {found.signer})")
        return None

    def after_build(self, site: SiteJob, entry: Path, progress: Progress) -> None:
        """A site built here goes to the shared cache (production, with a signing key): packed
        in the background now, signed with the run's others and stored by :meth:`finish`."""
        if not self.writes:
            return
        key = shared_key(site)
        self.uploads.submit(site, lambda: self.cache.pack(key, entry))

    def finish(self, progress: Progress, *, strict: bool = False) -> int:
        """Sign everything this run packed (one signature) and store it; how many entries were
        stored. A store failure is a warning (the deploy needs nothing from the cache) or,
        ``strict`` (``build --push``: CI must know), raised once the rest is stored."""
        packed: list[tuple[SiteJob, Packed]] = []
        failed: list[tuple[SiteJob, StoreError]] = []
        unexpected: BaseException | None = None
        for site, future in self.uploads.take():
            try:
                one = future.result()
            except StoreError as exc:
                failed.append((site, exc))
                continue
            except Exception as exc:  # a bug: reported after the others are stored
                unexpected = unexpected or exc
                continue
            if one is None:
                self._said(progress, site, "already in")
            else:
                packed.append((site, one))
        try:
            stored = self.cache.store_signed([one for _, one in packed])
        except StoreError as exc:
            stored, failed = [], failed + [(site, exc) for site, _ in packed]
        for (site, _), done in zip(packed, stored, strict=False):
            self._said(progress, site, "stored in" if done else "already in")
        if unexpected is not None:
            raise unexpected
        if failed and strict:
            raise failed[0][1]
        for site, error in failed:
            _warn(progress, f"site '{site.config.name}' not written to the shared cache: {error}")
        return sum(stored)

    def _said(self, progress: Progress, site: SiteJob, how: str) -> None:
        progress.step(f"site '{site.config.name}': {how} the shared cache {self.cache.store.where}")


@contextmanager
def uploading(shared: SharedBuilds | None, progress: Progress) -> Iterator[None]:
    """Builds that may upload run inside; on the way out every upload has finished."""
    try:
        yield
    finally:
        if shared is not None:
            shared.finish(progress)


def open_shared(config: Config, trust: Trust, mode: str | None = None) -> SharedBuilds | None:
    """The shared cache of ``[build] cache`` for builds of ``trust``, or None without one."""
    build = config.build
    if not build.cache or not build.cache_allowed_signers:
        return None
    store = open_store(build.cache, build.cache_endpoint_url, config.base_dir)
    key = config.resolve(build.cache_signing_key) if build.cache_signing_key else None
    limit = build.cache_max_entry_mb * 1024 * 1024
    cache = SharedCache(
        store, config.resolve(build.cache_allowed_signers), key, limit, build.cache_max_age_days
    )
    return SharedBuilds(cache, mode or build.mode, build.cache_wait, trust)


def _warn(progress: Progress, message: str) -> None:
    progress.step(f"warning: {message}")
    _log.warning(message)


def for_push(config: Config) -> Config:
    """The config ``build --push`` runs with: it builds what is missing (never waits for
    itself: "cache-only" becomes "cache-first") and must be able to sign."""
    build = config.build
    if not build.cache:
        raise ConfigError(f"{config.path.name}: --push needs [build] cache (an s3:// URL or a folder)")
    if not build.cache_signing_key:
        raise ConfigError(
            f"{config.path.name}: --push needs [build] cache_signing_key (entries are signed by the writer)"
        )
    mode = "cache-first" if build.mode == "cache-only" else build.mode
    return dataclasses.replace(config, build=dataclasses.replace(build, mode=mode))


def push_built(config: Config, jobs: list[SiteJob], progress: Progress) -> tuple[int, int, int]:
    """Every site of a production build into the shared cache, signed together, then old
    entries out: (stored, already there, evicted). A store failure fails the command (CI
    must know)."""
    shared = open_shared(config, "production")
    if shared is None:
        raise ConfigError(f"{config.path.name}: --push needs [build] cache and cache_allowed_signers")
    builds = config.state_dir / "builds"
    try:
        for site in jobs:  # those the build uploaded already are found there
            shared.after_build(site, builds / site.config.name / site.key, progress)
        stored = shared.finish(progress, strict=True)
        evicted = shared.cache.evict()
    except StoreError as exc:
        raise _retryable(f"--push: {exc}; the build itself is in {builds}") from None
    return stored, len(jobs) - stored, evicted


def site_at(jobs: list[SiteJob], index: int) -> str:
    """The name of the ``index``-th site of a commit (sites in the plan's order)."""
    if not 0 <= index < len(jobs):
        raise ConfigError(
            f"--site-index {index}: the commit has {len(jobs)} sites (0 to {len(jobs) - 1}); "
            "set the Job's completions to the number of sites"
        )
    return jobs[index].config.name


def _retryable(message: str) -> BuildError:
    """A build error the agent tries again later: CI may push the build, a store come back."""
    error = BuildError(message)
    error.retryable = True
    return error
