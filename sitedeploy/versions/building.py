"""The build of one version or preview: the commit's sites, optionally one site re-rooted, for
previews every page marked ``noindex``, for versions every page given its canonical link
(:mod:`.canonical`).

Versions build at the ``production`` trust level; previews at ``branch-preview`` or
``pull-preview`` (:func:`sitedeploy.versions.previews.preview_trust`), each with its own caches.

It is a :class:`~sitedeploy.build.planning.BuildPlan` (built at most once, only when a line
needs it), so :func:`sitedeploy.commands.publish` — the transaction, the "unchanged" check —
publishes it like any deploy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..build import Built, SiteJob, Trust, release_key, trust_dir
from ..build.planning import BuildPlan
from ..config import Config
from ..progress import Progress
from ..release.manifest import FileEntry, Manifest, content_type
from ..source import Commit, Source
from .canonical import Canonical, with_canonical

NOINDEX = b'<meta name="robots" content="noindex, nofollow">'
_HEAD = re.compile(rb"<head[^>]*>", re.IGNORECASE)


class LineBuild(BuildPlan):
    """``site``: only that site, placed at the line's root; ``noindex``: a preview's build;
    ``canonical``: where a version's pages point (part of the key, so a change republishes)."""

    def __init__(
        self,
        config: Config,
        source: Source,
        commit: Commit,
        progress: Progress,
        *,
        trust: Trust,
        site: str | None = None,
        noindex: bool = False,
        engine: str | None = None,
        canonical: Canonical | None = None,
    ) -> None:
        super().__init__(config, source, commit, progress, trust=trust, only=site)  # its commit's settings
        if site is not None:
            self.jobs = [_at_root(j) for j in self.jobs]
        if engine is not None:  # an engine preview (.engine_previews): the sites with that engine
            from .engine_previews import with_engine

            self.jobs = with_engine(self.jobs, engine)
        self.noindex = noindex
        self.canonical = canonical
        self.key = release_key(commit, self.jobs) + ("-noindex" if noindex else "")
        self.key += f"-c{canonical.fingerprint}" if canonical else ""
        self.unmarked: Manifest | None = None
        """The build's manifest before the noindex mark: comparable with production's."""

    def get(self) -> Built:
        if self._built is None:
            built = super().get()
            self.unmarked = built.manifest
            level = trust_dir(self.config.state_dir, self.trust)  # the level's own caches
            if self.noindex:
                built = _rewritten(built, level / "noindex", "", lambda _path, page: with_noindex(page))
            if self.canonical is not None:
                canonical = self.canonical
                built = _rewritten(
                    built,
                    level / "canonical",
                    f"-{canonical.fingerprint}",
                    lambda path, page: _linked(canonical, path, page),
                )
            self._built = built
        return self._built


def _at_root(job: SiteJob) -> SiteJob:
    return dataclasses.replace(job, config=dataclasses.replace(job.config, mount="/"))


def _linked(canonical: Canonical, path: str, page: bytes) -> bytes:
    href = canonical.href(path, page)
    return with_canonical(page, href) if href is not None else page


def _rewritten(built: Built, cache: Path, suffix: str, rewrite: Callable[[str, bytes], bytes]) -> Built:
    """A copy of the build whose HTML pages are ``rewrite(path, page)`` (the noindex mark, the
    canonical link), in ``cache`` under the build's key plus ``suffix``.

    Other files are hard links; pages are new files (the build cache is never written through).
    """
    final = cache / (built.build_key + suffix)
    files = {p: e for p, e in built.manifest.items()}
    pages = [p for p in files if p.endswith((".html", ".htm"))]
    if not final.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".noindex-", dir=cache))
        for path in files:
            (tmp / path).parent.mkdir(parents=True, exist_ok=True)
            if path in pages:
                (tmp / path).write_bytes(rewrite(path, (built.root / path).read_bytes()))
            else:
                os.link(built.root / path, tmp / path)
        _evict(cache, keep=4)
        try:
            os.replace(tmp, final)
        except OSError:  # another process made the same (identical) folder first
            shutil.rmtree(tmp, ignore_errors=True)
    for path in pages:
        data = (final / path).read_bytes()
        files[path] = FileEntry(hashlib.sha256(data).hexdigest(), len(data), content_type(path))
    return Built(built.commit, final, Manifest(files), built.build_key, built.sites)


def with_noindex(page: bytes) -> bytes:
    if b'name="robots"' in page:
        return page
    match = _HEAD.search(page)
    at = match.end() if match else 0
    return page[:at] + NOINDEX + page[at:]


def _evict(cache: Path, keep: int) -> None:
    entries = sorted(
        (p for p in cache.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime
    )
    for old in entries[:-keep] if len(entries) > keep else []:
        shutil.rmtree(old, ignore_errors=True)
