"""Build one site of one commit with a given engine, as a deploy would build it, to compare.

Each build is a full one (no incremental cache, so the build times compare), in the sandbox,
from the site's own requirements venv, like any build; the output goes to a folder of the
comparison's own and is never published or cached as a release. The builds run at the
``branch-preview`` trust level (:func:`sitedeploy.build.trust_dir`): ``--commit`` may name any
branch, so nothing a comparison writes (venvs, seals) is ever read by a production build.
A venv is made before the clock starts: the time shown is the engine's build alone.

Which plugins an engine ignores: MkDocs and ProperDocs run every configured plugin (or fail
when one is missing), Zensical skips those it does not support without a word. Its list is
read from the Zensical installed beside sitedeploy (``zensical.config``, the table of
supported plugins and the options of each it recognises but does not implement), with a
copy of 0.1's list as the fallback when Zensical is not installed.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .. import builders, sandbox
from ..build import SiteJob, Trust, trust_dir
from ..config import Config
from ..progress import Progress
from ..sandbox import venvs
from ..source import Commit, Source

ENGINES = ("mkdocs", "properdocs", "zensical")
TOOLS = {"mkdocs": "mkdocs", "properdocs": "properdocs", "zensical": "zensical"}
TRUST: Trust = "branch-preview"
_ZENSICAL_PLUGINS_FALLBACK = frozenset(
    {
        *("api-autonav", "autorefs", "awesome-nav", "blog", "callouts", "exclude", "gh-admonitions"),
        *("glightbox", "include-markdown", "literate-nav", "llmstxt", "macros", "mkdocs-nav-weight"),
        *("markdown-exec", "markdownextradata", "meta", "mike", "minify", "mkdocs-audio"),
        *("mkdocs-autoapi", "mkdocs-video", "mkdocstrings", "offline", "privacy", "redirects", "rss"),
        *("search", "social", "table-reader", "tags"),
    }
)


@dataclass
class EngineBuild:
    engine: str
    out: Path
    seconds: float
    warnings: list[str]


def state_for(config: Config) -> Path:
    return trust_dir(config.state_dir, TRUST)


def checkout(config: Config, source: Source, commit: Commit, site: SiteJob, work: Path) -> Path:
    """The site's folder of ``commit``, read-only input of every engine's build."""
    src = work / "src"
    source.checkout(commit.sha, site.config.path.strip("/"), src)
    return src


def build_with(
    config: Config, site: SiteJob, engine: str, src: Path, work: Path, progress: Progress
) -> EngineBuild:
    """Build ``site`` from ``src`` with ``engine``, in full, sandboxed; its output and time."""
    sandbox.require_bwrap(config.build.sandbox)
    state = state_for(config)
    folder = work / engine
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    job = builders.Job(
        site=site.config.name,
        label=site.config.path.strip("/") or ".",
        src=src,
        out=folder / "out",
        work=folder / "build",
        epoch=site.epoch,
        strict=False,  # a comparison reports warnings, it does not stop at them
        sandbox=config.build.sandbox,
        venvs=state / "venvs" / site.config.name,
        cache=None,
        progress=progress,
        state=state,
    )
    if (src / "requirements.txt").is_file():
        venvs.python_for(job, TOOLS[engine])  # made (or checked) before the clock starts
    progress.step(f"site '{site.config.name}': building with {engine}")
    started = time.monotonic()
    found = builders.build(engine, job)
    return EngineBuild(engine, job.out, time.monotonic() - started, found.first)


def zensical_plugins() -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
    """The plugins Zensical supports and, per plugin, the options it recognises but ignores."""
    try:
        from zensical import config as zensical_config
    except ImportError:
        return _ZENSICAL_PLUGINS_FALLBACK, {}
    table = getattr(zensical_config, "_PLUGIN_UNSUPPORTED_OPTIONS", None)
    if not isinstance(table, dict):
        return _ZENSICAL_PLUGINS_FALLBACK, {}
    return frozenset(table), {str(k): tuple(v) for k, v in table.items()}


def ignored_plugins(engine: str, configured: dict[str, dict[str, object]]) -> list[str]:
    """The configured plugins (with ignored options) ``engine`` would skip without a word."""
    if engine != "zensical":
        return []
    supported, options = zensical_plugins()
    ignored = []
    for name, settings in configured.items():
        canonical = name.removeprefix("material/")
        canonical = canonical.split("/", 1)[0] if canonical.startswith(("social/", "privacy/")) else canonical
        if canonical not in supported:
            ignored.append(name)
            continue
        dropped = sorted(set(settings).intersection(options.get(canonical, ())))
        if dropped:
            ignored.append(f"{name} (options {', '.join(dropped)})")
    return ignored


def configured_plugins(job_src: Path, site: str, label: str) -> dict[str, dict[str, object]]:
    """The plugins the site's config names, with their settings (mkdocs.yml/properdocs.yml)."""
    from ..builders.zensical import _read_config

    names = (*builders.PROPERDOCS_FILES, *builders.MKDOCS_FILES)
    config = next((job_src / n for n in names if (job_src / n).is_file()), None)
    if config is None:
        return {}
    probe = builders.Job(site, label, job_src, job_src, job_src, 0, False, "off", job_src)
    listed = _read_config(probe, config).get("plugins", [])
    found: dict[str, dict[str, object]] = {}
    entries = list(listed.items()) if isinstance(listed, dict) else listed if isinstance(listed, list) else []
    for entry in entries:
        name, settings = entry if isinstance(entry, tuple) else _one(entry)
        if isinstance(name, str):
            found[name[:80]] = settings if isinstance(settings, dict) else {}
    return found


def _one(entry: object) -> tuple[object, object]:
    if isinstance(entry, dict) and len(entry) == 1:
        return next(iter(entry.items()))
    return entry, {}
