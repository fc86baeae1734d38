"""The build plan: what a commit's build will be, decided before anything is built.

A deploy flows one way: source → **build plan** → build → transaction → target. The plan
reads the commit's own ``deploy.toml`` (build settings come from git), lists the sites to build
and their key, and checks the commit's signature; the build itself runs at most once, and only
when some target needs it (:meth:`BuildPlan.get`)::

    planned = build.plan(config, source, commit, progress, trust="production")
    forced = planned.signature.hold(force=False)   # before the build: unsigned code never runs
    built = planned.get()                          # built once, whichever target asks first

:func:`sitedeploy.commands.deploy.publish` takes a plan to one target through the transaction.
Versions, previews, ``import-mike`` and alias copies are plans too (subclasses that build one
line, or that are "built" already).
"""

from __future__ import annotations

import hashlib

from ..config import Config, TargetConfig
from ..config.from_git import build_config_at
from ..errors import SitedeployError
from ..progress import SILENT, Progress
from ..source import Commit, Source
from ..source.signatures import Signature, check_signature
from .sites import Built, SiteJob, Trust, build_release, release_key, site_jobs


class BuildPlan:
    """One commit's build: its sites and key now, the build itself once, when first asked for.

    Its commit's signature is checked when the plan is made (``signature``); :func:`publish
    <sitedeploy.commands.deploy.publish>`, through which every release of a commit goes (plain
    deploys, the agent, versions, previews, import-mike, a rebuilding rollback), holds it."""

    signature: Signature

    _failed: SitedeployError | None = None
    """A failed build, raised again for every further target (a class default: subclasses
    such as the versions' ``LineBuild`` set up their own state)."""

    def __init__(
        self,
        config: Config,
        source: Source,
        commit: Commit,
        progress: Progress = SILENT,
        *,
        trust: Trust,
        only: str | None = None,
    ) -> None:
        self.signature = check_signature(config, source, commit)  # the operator's rule, first
        config = build_config_at(config, source, commit, warn=progress.step)  # git decides the build
        self.config, self.source, self.commit, self.progress = config, source, commit, progress
        self.trust: Trust = trust
        self.jobs: list[SiteJob] = site_jobs(config, source, commit, only=only)
        self.key = release_key(commit, self.jobs)
        self._built: Built | None = None

    def key_for(self, cfg: TargetConfig) -> str:
        """The release key on one target: the build plus the target's own settings, so that a
        change of publishing settings alone (S3 headers, modes) is published too."""
        return hashlib.sha256(f"{self.key}{cfg!r}".encode()).hexdigest()[:20]

    def get(self) -> Built:
        if self._failed is not None:  # a failed build fails every target, built once
            raise self._failed
        if self._built is None:
            try:
                self._built = build_release(
                    self.config,
                    self.source,
                    self.commit,
                    trust=self.trust,
                    jobs=self.jobs,
                    progress=self.progress,
                )
            except SitedeployError as exc:
                self._failed = exc
                raise
        return self._built


def plan(
    config: Config,
    source: Source,
    commit: Commit,
    progress: Progress = SILENT,
    *,
    trust: Trust,
    only: str | None = None,
) -> BuildPlan:
    """The build plan of ``commit`` at trust level ``trust`` (``only``: one site of it)."""
    return BuildPlan(config, source, commit, progress, trust=trust, only=only)
