"""Build every site of a commit into one release tree.

Each site is built on its own into a cache keyed by its inputs (the git tree of its folder,
its settings, the build tool), so a site whose folder did not change is reused, not rebuilt.
The release tree is then assembled from the cached site outputs with hard links.

MkDocs runs code the content repo controls (hooks, plugins, ``!!python/name`` tags), so it
runs in a subprocess with a scrubbed environment: no AWS_*, no SSH_AUTH_SOCK, a throwaway
HOME, nothing of sitedeploy's own. ``SOURCE_DATE_EPOCH`` is the time of the last commit that
touched the site, which makes a build a pure function of the site's tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from . import __version__
from .config import Config, ImagesConfig, SiteConfig, normalize_mount
from .errors import BuildError, ConfigError
from .progress import SILENT, Progress
from .release.manifest import FileEntry, Manifest, scan
from .source import Commit, Source
from .venvs import python_for

MKDOCS_FILES = ("mkdocs.yml", "mkdocs.yaml")
MARKER = ".well-known/sitedeploy.json"
KEEP_BUILDS_PER_SITE = 3
LOG_TAIL_LINES = 30
# Passed through to the build: what a build tool needs to run, and nothing that grants access.
_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


@dataclass(frozen=True)
class SitePlan:
    """A site as it will be built from one commit."""

    config: SiteConfig
    kind: str  # "mkdocs" or "static"
    tree: str
    """Git object id of the site's folder: changes whenever any input file changes."""
    epoch: int

    @property
    def key(self) -> str:
        settings = asdict(self.config)
        payload = [__version__, self.kind, self.tree, self.epoch, settings, sys.version_info[:2]]
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class SiteResult:
    name: str
    mount: str
    reused: bool
    summary: str


@dataclass(frozen=True)
class Built:
    commit: Commit
    root: Path
    """The assembled release tree; read-only by convention (targets copy or link from it)."""
    manifest: Manifest
    build_key: str
    sites: tuple[SiteResult, ...]


def plan_sites(config: Config, source: Source, commit: Commit, only: str | None = None) -> list[SitePlan]:
    sites = list(config.sites) if config.sites is not None else discover_sites(config, source, commit.sha)
    if only is not None:
        names = [s.name for s in sites]
        sites = [s for s in sites if s.name == only]
        if not sites:
            raise ConfigError(f"--site {only}: no such site; sites are: {', '.join(names)}")
    return [_plan_site(site, source, commit) for site in sites]


def discover_sites(config: Config, source: Source, commit: str) -> list[SiteConfig]:
    """No ``[[sites]]`` table: every folder under ``sites/`` is a site."""
    folders = sorted(name for name, kind in source.list_dir(commit, "sites") if kind == "tree")
    if not folders:
        raise ConfigError(
            f"{config.path.name}: no [[sites]] table and no folders under sites/ in commit {commit[:8]}; "
            "add a site folder or a [[sites]] table"
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


def _plan_site(site: SiteConfig, source: Source, commit: Commit) -> SitePlan:
    path = site.path.strip("/")
    entries = dict(source.list_dir(commit.sha, path))
    tree = source.tree_id(commit.sha, path)
    if tree is None or not entries:
        raise ConfigError(
            f"site '{site.name}': {path}/ has no mkdocs.yml and no files in commit {commit.short}; "
            "fix the site's path or add content"
        )
    kind = "mkdocs" if any(name in entries for name in MKDOCS_FILES) else "static"
    return SitePlan(site, kind, tree, source.last_change(commit.sha, path))


def build_release(
    config: Config,
    source: Source,
    commit: Commit,
    *,
    plans: list[SitePlan] | None = None,
    progress: Progress = SILENT,
) -> Built:
    """Build (or reuse) every site of ``commit`` and assemble the release tree."""
    plans = plan_sites(config, source, commit) if plans is None else plans
    cache = config.state_dir / "builds"
    results: list[SiteResult] = []
    outputs: list[tuple[SitePlan, Path, Manifest]] = []
    for site in plans:
        out, manifest, result = _site_output(config, source, commit, site, cache, progress)
        outputs.append((site, out, manifest))
        results.append(result)
    build_key = release_key(commit, plans)
    root, manifest = _assemble(config.state_dir / "releases", build_key, commit, outputs)
    return Built(commit, root, manifest, build_key, tuple(results))


def release_key(commit: Commit, plans: list[SitePlan]) -> str:
    """Equal keys mean byte-identical releases: known before anything is built."""
    payload = json.dumps([commit.sha, [(p.config.mount, p.key) for p in plans]])
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _site_output(
    config: Config, source: Source, commit: Commit, site: SitePlan, cache: Path, progress: Progress
) -> tuple[Path, Manifest, SiteResult]:
    entry = cache / site.config.name / site.key
    reused = (entry / "manifest.json").exists()
    if reused:
        os.utime(entry)  # most recently used builds survive eviction
        summary = (entry / "summary.txt").read_text()
    else:
        progress.step(f"building site '{site.config.name}' ({site.kind})")
        with _evicting(entry.parent, keep=KEEP_BUILDS_PER_SITE - 1):
            summary = _build_site(config, source, commit, site, entry, progress)
    manifest = Manifest.from_json((entry / "manifest.json").read_bytes())
    return entry / "out", manifest, SiteResult(site.config.name, site.config.mount, reused, summary)


def _build_site(
    config: Config, source: Source, commit: Commit, site: SitePlan, entry: Path, progress: Progress
) -> str:
    entry.parent.mkdir(parents=True, exist_ok=True)
    site_src = config.state_dir / "workspaces" / site.config.name
    source.checkout(commit.sha, site.config.path.strip("/"), site_src)
    with tempfile.TemporaryDirectory(prefix=f".{site.config.name}-", dir=entry.parent) as tmp:
        work = Path(tmp)
        out = work / "entry" / "out"
        if site.kind == "mkdocs":
            from .images.prefetch import prefetching  # Pillow only when a site is built

            # The site's images are encoded into the variant cache while MkDocs runs (one core).
            with prefetching(site_src, site.config.images, config.state_dir / "image-cache"):
                _run_mkdocs(config, site, site_src, out, work)
        else:
            shutil.copytree(site_src, out, symlinks=False)
        summary = _optimize_images(config, site, out, progress)
        (work / "entry" / "manifest.json").write_bytes(scan(out).to_json())
        (work / "entry" / "summary.txt").write_text(summary)
        _publish_dir(work / "entry", entry)  # the cache entry appears complete or not at all
    return summary


def _optimize_images(config: Config, site: SitePlan, out: Path, progress: Progress) -> str:
    settings: ImagesConfig = site.config.images
    if not settings.enabled:
        return "built"
    from .images import process_site  # Pillow is imported only when a site is built

    report = process_site(
        out,
        site.config.mount,
        settings,
        config.state_dir / "image-cache",
        strict=site.config.strict,
        progress=progress,
    )
    for warning in report.warnings:
        progress.step(f"warning: {warning}")
    return f"built; images: {report.summary()}"


def _run_mkdocs(config: Config, site: SitePlan, src: Path, out: Path, work: Path) -> None:
    mkdocs_yml = next(src / name for name in MKDOCS_FILES if (src / name).exists())
    python = python_for(src / "requirements.txt", config.state_dir / "venvs")
    cmd = [
        str(python),
        "-m",
        "mkdocs",
        "build",
        "--clean",
        "--config-file",
        str(mkdocs_yml),
        "--site-dir",
        str(out),
    ]
    if site.config.strict:
        cmd.append("--strict")
    home = work / "home"
    home.mkdir()
    try:
        proc = subprocess.run(
            cmd, cwd=src, env=_build_env(site.epoch, home), capture_output=True, text=True, timeout=3600
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"site '{site.config.name}': mkdocs build took over an hour; stopped") from None
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr).strip().splitlines()
        raise BuildError(
            f"site '{site.config.name}' ({site.config.path}/{mkdocs_yml.name}): mkdocs build failed: "
            f"{_first_problem(log)}",
            log_tail="\n".join(log[-LOG_TAIL_LINES:]),
        )


def _build_env(epoch: int, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOW}
    env.update(
        SOURCE_DATE_EPOCH=str(epoch),
        HOME=str(home),
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        PATH=env.get("PATH", os.defpath),
    )
    return env


def _first_problem(log: list[str]) -> str:
    """The line a user needs: the first ERROR, else the first WARNING, else the last line."""
    for level in ("ERROR", "Error", "WARNING"):
        for line in log:
            if line.lstrip().startswith(level) or f" {level} " in line:
                return line.strip()
    return log[-1].strip() if log else "no output"


@contextmanager
def _evicting(folder: Path, keep: int) -> Iterator[None]:
    """Remove all but the ``keep`` newest entries of ``folder`` while the block runs.

    Deleting a 5,000-page build takes seconds; done in a thread beside the MkDocs subprocess
    it costs no wall time. Entries being made are dot-named and never touched.
    """
    janitor = threading.Thread(target=_evict_old_builds, args=(folder, keep), name="evict")
    janitor.start()
    try:
        yield
    finally:
        janitor.join()


def _evict_old_builds(folder: Path, keep: int) -> None:
    if not folder.is_dir():
        return
    entries = sorted(
        (p for p in folder.iterdir() if not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _assemble(
    releases: Path, key: str, commit: Commit, outputs: list[tuple[SitePlan, Path, Manifest]]
) -> tuple[Path, Manifest]:
    """Hard-link each site's output under its mount, and add the deploy marker."""
    root = releases / key
    files: dict[str, FileEntry] = {}
    for site, _, manifest in outputs:
        prefix = site.config.mount.lstrip("/")
        files.update({prefix + path: entry for path, entry in manifest.items()})
    marker = json.dumps({"commit": commit.sha, "committed_at": commit.committed_iso}).encode() + b"\n"
    files[MARKER] = FileEntry(hashlib.sha256(marker).hexdigest(), len(marker), "application/json")
    if not root.exists():
        with _evicting(releases, keep=KEEP_BUILDS_PER_SITE - 1):
            _link_tree(releases, root, outputs, marker)
    return root, Manifest(files)


def _link_tree(
    releases: Path, root: Path, outputs: list[tuple[SitePlan, Path, Manifest]], marker: bytes
) -> None:
    releases.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".assemble-", dir=releases))
    for site, out, manifest in outputs:
        base = tmp / site.config.mount.lstrip("/")
        for path in manifest:
            dest = base / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(out / path, dest)
    (tmp / MARKER).parent.mkdir(parents=True, exist_ok=True)
    (tmp / MARKER).write_bytes(marker)
    _publish_dir(tmp, root)


def _publish_dir(tmp: Path, final: Path) -> None:
    """Rename a finished folder into place. If another process finished the same (identical,
    since builds are reproducible) folder first, keep theirs."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
