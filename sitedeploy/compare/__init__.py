"""``sitedeploy compare``: build one commit with two engines and report what a reader would
see change — before they see it.

``compare(config, engine="zensical")`` compares each site's current builder with Zensical;
``engines=("mkdocs", "properdocs")`` any pair. The commit is the live one (the release a
target serves now: ``target`` or the first target) unless ``ref`` names another, and it falls
back to the tip of the source branch when nothing is live yet. Both builds run sandboxed
(:mod:`.engines`), nothing is published, and the result per site is a
:class:`~.differ.SiteComparison` that the CLI prints, dumps as JSON and writes as a
self-contained HTML report (:mod:`.report`).

    compare()  ─► engines.build_with(a) ─► outputs.read_output ─┐
               └► engines.build_with(b) ─► outputs.read_output ─┴► differ.compare_outputs
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..build import SiteJob, site_jobs
from ..config import Config
from ..config.from_git import build_config_at
from ..errors import ConfigError
from ..progress import SILENT, Progress
from ..source import Commit, Source
from .differ import SiteComparison, compare_outputs
from .engines import ENGINES, build_with, checkout, configured_plugins, ignored_plugins, state_for
from .outputs import read_output

__all__ = ["ENGINES", "Comparison", "SiteComparison", "compare", "parse_engines"]


@dataclass
class Comparison:
    commit: Commit
    commit_from: str
    """Where the commit came from: ``live on 'prod'``, ``--commit main``, ``tip of main``."""
    sites: list[SiteComparison]
    skipped: list[str]

    @property
    def equivalent(self) -> bool:
        return all(site.equivalent for site in self.sites)


def parse_engines(engine: str | None, engines: str | None) -> tuple[str | None, tuple[str, str] | None]:
    """``--engine X`` (the site's builder against X) or ``--engines A,B``; one of them."""
    if (engine is None) == (engines is None):
        raise ConfigError("compare: give --engine ENGINE or --engines A,B (one of them)")
    names = [engine] if engine else [n.strip() for n in (engines or "").split(",")]
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise ConfigError(f"compare: unknown engine '{unknown[0][:40]}'; engines are {', '.join(ENGINES)}")
    if engines is not None and (len(names) != 2 or names[0] == names[1]):
        raise ConfigError("compare: --engines takes two different engines, e.g. --engines mkdocs,zensical")
    return (engine, None) if engine else (None, (names[0], names[1]))


def compare(
    config: Config,
    source: Source,
    *,
    engine: str | None = None,
    engines: tuple[str, str] | None = None,
    ref: str | None = None,
    site: str | None = None,
    target: str | None = None,
    tolerance: int = 0,
    progress: Progress = SILENT,
) -> Comparison:
    commit, origin = _commit(config, source, ref, target)
    config = build_config_at(config, source, commit, warn=progress.step)
    results, skipped = [], []
    for job in site_jobs(config, source, commit, only=site):
        pair = engines or ((job.kind, engine) if engine else None)
        if pair is None or (job.kind == "static" and engines is None):
            skipped.append(f"site '{job.config.name}': a static site (copied, no engine)")
            continue
        if pair[0] == pair[1]:
            skipped.append(f"site '{job.config.name}': already built with {pair[0]}")
            continue
        results.append(_compare_site(config, source, commit, job, pair, tolerance, progress))
    return Comparison(commit, origin, results, skipped)


def _compare_site(
    config: Config,
    source: Source,
    commit: Commit,
    job: SiteJob,
    pair: tuple[str, str],
    tolerance: int,
    progress: Progress,
) -> SiteComparison:
    root = state_for(config) / "compare"
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{job.config.name}-", dir=root))
    try:
        src = checkout(config, source, commit, job, work)
        plugins = configured_plugins(src, job.config.name, job.config.path)
        outputs = []
        for engine in pair:
            built = build_with(config, job, engine, src, work, progress)
            outputs.append(read_output(built.out, engine, built.seconds, built.warnings))
        ignored = {engine: ignored_plugins(engine, plugins) for engine in pair}
        result = compare_outputs(job.config.name, commit.sha, outputs[0], outputs[1], ignored)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.tolerance = tolerance
    return result


def _commit(config: Config, source: Source, ref: str | None, target: str | None) -> tuple[Commit, str]:
    source.sync()
    if ref is not None:
        return source.resolve(ref), f"--commit {ref}"
    live = _live_commit(config, target)
    if live is not None:
        name, sha = live
        return source.resolve(sha), f"live on '{name}'"
    branch = config.source.branch or source.default_branch()
    return source.resolve(None, config.source.branch), f"tip of {branch} (nothing is live yet)"


def _live_commit(config: Config, target: str | None) -> tuple[str, str] | None:
    """The commit the chosen (or first) target serves now, if it serves one."""
    from ..release import records
    from ..targets import open_target

    for name, cfg in config.target(target).items():
        with open_target(name, cfg, config) as t:
            live = t.live_release()
            record = records.read_release(t, live) if live else None
        if record is not None:
            return name, record.commit
        if target is None:
            break
    return None
