"""Build every site of a commit into one release tree.

Each site is built on its own into a cache keyed by its inputs (the git tree of its folder,
its settings, the build tool), so a site whose folder did not change is reused, not rebuilt.
The release tree is then assembled from the cached site outputs with hard links
(:mod:`.release_tree`).

Each site is built by its builder (:mod:`.builders`: MkDocs, Zensical, or a plain copy).
MkDocs and Zensical run code the content repo controls (hooks, plugins, ``!!python/name``
tags), so they run in the sandbox (:mod:`.sandbox`): no credentials, no HOME, no other
site's builds. The site's images are decoded in the same sandbox (:mod:`.images.confined`),
since a decoder bug would hand the image's author the same power. ``SOURCE_DATE_EPOCH`` is
the time of the last commit that touched the site, which makes a build a pure function of
the site's tree. A cached build is checked against
its recorded manifest before it is reused, so a damaged or tampered cache is rebuilt, never
published.

Every build has a trust level (:data:`Trust`: production, a branch preview, a pull-request
preview that may come from a fork), and each level writes only its own state folder
(:func:`trust_dir`): no cache a lower level wrote is ever read by a higher one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from .. import __version__, builders, sandbox
from ..config import Config, ImagesConfig, SiteConfig, normalize_mount
from ..errors import ConfigError
from ..names import check_site_folders
from ..progress import SILENT, Progress, stage
from ..redirects.collect import collect_site
from ..redirects.release import store_site_rules
from ..release.manifest import Manifest, files, hash_file, scan
from ..sandbox.untrusted import UnsafeOutput
from ..source import Commit, Source, git_path
from .jobs import run_all, workers
from .outputs import check_output_names as _check_output_names
from .outputs import read_path as _read_path
from .outputs import read_warnings as _read_warnings
from .release_tree import KEEP_BUILDS_PER_SITE, assemble, evicting, publish_dir

if TYPE_CHECKING:
    from .shared import SharedBuilds

MKDOCS_FILES = builders.MKDOCS_FILES
ROOT_SITE_FILES = (*MKDOCS_FILES, *builders.PROPERDOCS_FILES, "zensical.toml")
"""A repository with one of these at its root and no [[sites]] is one site at ``/``."""
ROOT_SITE_NAME = "docs"
_log = logging.getLogger(__name__)
Trust = Literal["production", "branch-preview", "pull-preview"]
"""Who a build is for, which decides which state it may write (:func:`trust_dir`)."""
TRUST_LEVELS: tuple[Trust, ...] = get_args(Trust)


@dataclass(frozen=True)
class SiteJob:
    """One site to build from one commit: its settings, builder and input tree (the build
    cache key). Not a release plan (``release.diff.Plan``)."""

    config: SiteConfig
    kind: str  # "mkdocs", "properdocs", "zensical" or "static"
    tree: str
    """Git object id of the site's folder: changes whenever any input file changes."""
    epoch: int

    @property
    def key(self) -> str:
        return hashlib.sha256(self.key_payload()).hexdigest()[:20]

    def key_payload(self) -> bytes:
        """Everything that decides the site's bytes (also the shared cache's key, ``build.shared``)."""
        settings = asdict(self.config)
        payload = [__version__, self.kind, self.tree, self.epoch, settings, sys.version_info[:2]]
        return json.dumps(payload, sort_keys=True, default=str).encode()


@dataclass(frozen=True)
class SiteResult:
    name: str
    mount: str
    reused: bool
    summary: str
    warnings: list[str] = field(default_factory=list)
    """The first lines of the builder's (and the image stage's) warnings."""
    warning_count: int = 0
    """All warnings, including those not in ``warnings``."""
    fetched: bool = False
    """Taken from the shared build cache (``[build] cache``), not built here."""


@dataclass(frozen=True)
class Built:
    commit: Commit
    root: Path
    """The assembled release tree; read-only by convention (targets copy or link from it)."""
    manifest: Manifest
    build_key: str
    sites: tuple[SiteResult, ...]
    build_config: dict[str, Any] = field(default_factory=dict)
    """The build settings this release was made with and where they came from
    (``origin`` and ``tables``): stored in the release record, applied again to rebuild it."""

    @property
    def warnings(self) -> list[str]:
        """Every site's shown warnings, each prefixed with its site."""
        return [f"site '{site.name}': {line}" for site in self.sites for line in site.warnings]

    @property
    def warning_count(self) -> int:
        return sum(site.warning_count for site in self.sites)


def site_jobs(config: Config, source: Source, commit: Commit, only: str | None = None) -> list[SiteJob]:
    sites = list(config.sites) if config.sites is not None else discover_sites(config, source, commit.sha)
    if only is not None:
        names = [s.name for s in sites]
        sites = [s for s in sites if s.name == only]
        if not sites:
            raise ConfigError(f"--site {only}: no such site; sites are: {', '.join(names)}")
    return [_site_job(site, source, commit) for site in sites]


def discover_sites(config: Config, source: Source, commit: str) -> list[SiteConfig]:
    """No ``[[sites]]`` table: a root ``mkdocs.yml`` (the layout ``mkdocs new .`` makes) is one
    site at ``/``; otherwise every folder under ``sites/`` is a site."""
    folders = sorted(name for name, kind in source.list_dir(commit, "sites") if kind == "tree")
    check_site_folders(folders, f"{config.path.name}: commit {commit[:8]}")  # never `..` or `.lib`
    root_files = sorted(name for name, kind in source.list_dir(commit, ".") if name in ROOT_SITE_FILES)
    if root_files and folders:
        raise ConfigError(
            f"{config.path.name}: commit {commit[:8]} has both a root {root_files[0]} and folders under "
            'sites/; say which to deploy with [[sites]] tables (path = "." is the root)'
        )
    if root_files:
        return [SiteConfig(name=ROOT_SITE_NAME, path=".", mount="/", images=config.images)]
    if not folders:
        raise ConfigError(
            f"{config.path.name}: no [[sites]] table, no mkdocs.yml at the root and no folders under "
            f"sites/ in commit {commit[:8]}; add a site folder or a [[sites]] table"
        )
    return [
        SiteConfig(
            name=name,
            path=f"sites/{name}",
            mount="/" if len(folders) == 1 else normalize_mount(name),
            images=config.images,
        )
        for name in folders
    ]


def _site_job(site: SiteConfig, source: Source, commit: Commit) -> SiteJob:
    path = git_path(site.path)
    entries = dict(source.list_dir(commit.sha, path))
    tree = source.tree_id(commit.sha, path)
    if tree is None or not entries:
        shown = f"{path}/" if path else "the repository's root"
        raise ConfigError(
            f"site '{site.name}': {shown} has no mkdocs.yml and no files in commit {commit.short}; "
            "fix the site's path or add content"
        )
    kind = site.builder or builders.detect(entries)
    return SiteJob(site, kind, tree, source.last_change(commit.sha, path))


def build_release(
    config: Config,
    source: Source,
    commit: Commit,
    *,
    trust: Trust,
    jobs: list[SiteJob] | None = None,
    progress: Progress = SILENT,
) -> Built:
    """Build (or reuse) every site of ``commit`` and assemble the release tree.

    ``trust`` is required, so that no caller can forget it: every folder the build writes
    (build cache, venvs, image variants, incremental caches, work folders, release trees) is
    the level's own (:func:`trust_dir`)."""
    jobs = site_jobs(config, source, commit) if jobs is None else jobs
    config = dataclasses.replace(config, state_dir=trust_dir(config.state_dir, trust))
    cache, releases = config.state_dir / "builds", config.state_dir / "releases"
    build_key = release_key(commit, jobs)
    from .shared import open_shared, uploading  # (imports this module)

    shared = open_shared(config, trust)
    # Old release trees go while the sites build (the builder is one busy core), not after;
    # so do uploads to the shared cache, all finished before the release is assembled.
    with evicting(releases, keep=KEEP_BUILDS_PER_SITE - 1, spare=build_key), uploading(shared, progress):
        done = run_all(
            lambda site: _site_output(config, source, commit, site, cache, progress, shared),
            jobs,
            workers(config.build, len(jobs)),
        )
    results = [result for _, _, result in done]
    outputs = [(site, out, manifest) for site, (out, manifest, _) in zip(jobs, done, strict=True)]
    root, manifest = assemble(releases, build_key, commit, outputs)
    recorded = {"origin": config.build_origin, "tables": config.build_tables}
    return Built(commit, root, manifest, build_key, tuple(results), recorded)


def trust_dir(state_dir: Path, trust: Trust) -> Path:
    """The folder holding everything builds of ``trust`` write.

    Production keeps the state folder's own layout (``builds/``, ``venvs/``,
    ``image-cache/``, ``mkdocs-cache/``, ``zensical-cache/``, ``workspaces/``, ``releases/``);
    each preview level has the same layout under ``trust/<level>/``. A pull-request preview
    (possibly a fork's) therefore never writes a cache a branch preview or production reads,
    and a branch preview never writes production's.
    """
    if trust not in TRUST_LEVELS:
        raise ValueError(f"unknown trust level {trust!r}")
    return state_dir if trust == "production" else state_dir / "trust" / trust


def release_key(commit: Commit, jobs: list[SiteJob]) -> str:
    """Equal keys mean byte-identical releases: known before anything is built."""
    payload = json.dumps([commit.sha, [(p.config.mount, p.key) for p in jobs]])
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _site_output(
    config: Config,
    source: Source,
    commit: Commit,
    site: SiteJob,
    cache: Path,
    progress: Progress,
    shared: SharedBuilds | None = None,
) -> tuple[Path, Manifest, SiteResult]:
    entry = cache / site.config.name / site.key
    reused = (entry / "manifest.json").exists() and _intact(entry, site, progress)
    fetched = not reused and shared is not None and shared.fetch(site, entry, progress)
    if reused or fetched:
        os.utime(entry)  # most recently used builds survive eviction
    else:
        progress.step(f"building site '{site.config.name}' ({site.kind})")
        with (
            evicting(entry.parent, keep=KEEP_BUILDS_PER_SITE - 1),
            stage(progress, f"build {site.config.name}"),
        ):
            _build_site(config, source, commit, site, entry, progress)
        if shared is not None:
            shared.after_build(site, entry, progress)
    manifest = Manifest.from_json((entry / "manifest.json").read_bytes())
    summary = (entry / "summary.txt").read_text()
    shown, count = _read_warnings(entry)
    way = _read_path(entry)
    if not reused and way:
        progress.step(f"built site '{site.config.name}' ({way})")
    if not reused and _runs_untrusted(site) and config.build.sandbox == "off":
        shown, count = [sandbox.OFF_WARNING, *shown], count + 1  # every build, never cached
        progress.step(f"warning: {sandbox.OFF_WARNING}")
        _log.warning(sandbox.OFF_WARNING)
    result = SiteResult(
        site.config.name, site.config.mount, reused or fetched, summary, shown, count, fetched
    )
    return entry / "out", manifest, result


def _incremental_cache(config: Config, site: SiteJob) -> Path | None:
    """Where a builder keeps what it reuses between builds of this site (MkDocs: sitedeploy's
    incremental builder; Zensical: its own ``.cache``), or None for a build in full."""
    if not config.build.incremental or site.kind not in ("mkdocs", "properdocs", "zensical"):
        return None
    return config.state_dir / f"{site.kind}-cache" / site.config.name


def _runs_untrusted(site: SiteJob) -> bool:
    """Whether building the site runs code or decoders on its content (what the sandbox is
    for): a builder other than a plain copy, or the images stage."""
    return site.kind != "static" or site.config.images.enabled


def _intact(entry: Path, site: SiteJob, progress: Progress) -> bool:
    """Whether a cached build still holds exactly what its manifest recorded.

    Anything that could write the cache (a crash, a disk error, code that escaped a build)
    would otherwise be published, and ``verify --repair`` would copy the damage back. A file
    whose (inode, size, mtime) still match what was recorded when the build finished is
    taken as unchanged (a stat, not a read, keeps a reuse cheap); any other file is hashed
    against the manifest. A mismatch throws the entry away so the site is rebuilt.
    """
    recorded = Manifest.from_json((entry / "manifest.json").read_bytes())
    stats = _read_stats(entry)
    try:
        present = {rel: (full, _stat_key(st)) for rel, full, st in files(entry / "out")}
        changed = set(present) != set(recorded) or any(
            key != stats.get(rel) and hash_file(full) != recorded[rel].sha256
            for rel, (full, key) in present.items()
        )
    except (UnsafeOutput, OSError):
        changed = True  # a link or a special file in the cache: rebuild, never follow it
    if not changed:
        return True
    message = f"cached build of site '{site.config.name}' differs from its manifest; rebuilding it"
    progress.step(f"warning: {message}")
    _log.warning(message)
    shutil.rmtree(entry, ignore_errors=True)
    return False


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _read_stats(entry: Path) -> dict[str, list[int]]:
    try:
        stats = json.loads((entry / "stats.json").read_bytes())
        return stats if isinstance(stats, dict) else {}
    except (OSError, ValueError):
        return {}  # every file gets hashed


def _build_site(
    config: Config, source: Source, commit: Commit, site: SiteJob, entry: Path, progress: Progress
) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    if site.kind != "static":  # a copy runs no repo code: it needs no sandbox
        sandbox.require_bwrap(config.build.sandbox)  # refuse before anything runs
    site_src = config.state_dir / "workspaces" / site.config.name
    source.checkout(commit.sha, site.config.path.strip("/"), site_src)
    with tempfile.TemporaryDirectory(prefix=f".{site.config.name}-", dir=entry.parent) as tmp:
        work = Path(tmp)
        out = work / "entry" / "out"
        job = builders.Job(
            site=site.config.name,
            label=site.config.path.strip("/") or ".",
            src=site_src,
            out=out,
            work=work / "build",
            epoch=site.epoch,
            strict=site.config.strict,
            sandbox=config.build.sandbox,
            venvs=config.state_dir / "venvs" / site.config.name,
            cache=_incremental_cache(config, site),
            progress=progress,
            state=config.state_dir,  # this trust level's (build_release)
        )
        if site.kind in ("mkdocs", "properdocs") and site.config.images.enabled:
            from ..images.prefetch import prefetching

            # The site's images are encoded into the variant cache (in the sandbox, like the
            # builder) while the builder runs.
            cache_dir = config.state_dir / "image-cache"
            with prefetching(site_src, site.config.images, cache_dir, config.build.sandbox):
                found = builders.build(site.kind, job)
        else:
            found = builders.build(site.kind, job)
        _check_output_names(out, job)
        rules = collect_site(out, site_src, site.config.mount, site.config.name, job.label)
        store_site_rules(work / "entry", rules)  # beside out/: a reused build keeps its rules
        with stage(progress, f"images {site.config.name}", say=f"site '{site.config.name}': images"):
            summary, image_warnings = _optimize_images(config, site, out, progress)
        for line in image_warnings:
            found.add(line)
        listed = list(files(out))  # one walk (by descriptor) for the hashes and the stats
        (work / "entry" / "manifest.json").write_bytes(scan(out, listed).to_json())
        stats = {rel: _stat_key(st) for rel, _, st in listed}
        (work / "entry" / "stats.json").write_text(json.dumps(stats, separators=(",", ":")))
        (work / "entry" / "summary.txt").write_text(summary)
        (work / "entry" / "path.txt").write_text(found.path)
        (work / "entry" / "warnings.json").write_text(
            json.dumps({"count": found.count, "first": found.first})
        )
        publish_dir(work / "entry", entry)  # the cache entry appears complete or not at all


def _optimize_images(config: Config, site: SiteJob, out: Path, progress: Progress) -> tuple[str, list[str]]:
    settings: ImagesConfig = site.config.images
    if not settings.enabled:
        return "built", []
    from ..images import process_site  # imported only when a site is built

    report = process_site(
        out,
        site.config.mount,
        settings,
        config.state_dir / "image-cache",
        strict=site.config.strict,
        progress=progress,
        sandbox=config.build.sandbox,  # images are decoded in the build sandbox
    )
    for warning in report.warnings:
        progress.step(f"warning: {warning}")
    return f"built; images: {report.summary()}", list(report.warnings)
