"""What the commands share: their results, the source, a target's rules, new release records."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ..build import Built
from ..build.planning import BuildPlan
from ..config import Config, TargetConfig
from ..config.statedir import ignored_folder
from ..errors import SitedeployError
from ..release.diff import Plan
from ..release.records import Mark, ReleaseRecord, now_iso, release_id, whoami
from ..release.transaction import Rules
from ..source import Commit, Source, is_url
from ..targets import Drift, Target, TransferStats

Outcome = Literal["deployed", "unchanged", "dry-run", "rolled back"]


@dataclass(frozen=True)
class DeployResult:
    target: str
    commit: Commit
    outcome: Outcome
    release: str | None
    plan: Plan | None = None
    stats: TransferStats | None = None
    warnings: tuple[str, ...] = ()
    """The first lines of the builders' warnings (``site 'docs': …``)."""
    warning_count: int = 0
    marked_bad: str | None = None
    """A manual rollback: the commit it moved away from, now marked bad on the target."""

    def summary(self) -> str:
        if self.outcome == "unchanged":
            return f"{self.target}: {self.commit.short} is already live ({self.release}); nothing to do"
        detail = self.plan.summary() if self.plan else ""
        if self.outcome == "dry-run":
            return f"{self.target}: would deploy {self.commit.short}: {detail}"
        return f"{self.target}: {self.outcome} {self.commit.short} as {self.release}: {detail}"


@dataclass(frozen=True)
class TargetStatus:
    target: str
    location: str
    release: str | None
    commit: str | None
    subject: str | None
    author: str | None
    deployed_at: str | None
    deployed_by: str | None
    action: str | None
    pinned: Mark | None
    suspended: Mark | None
    bad_commits: dict[str, Mark]
    releases: list[str]
    hosts: dict[str, str | None] | None = None
    agent: dict[str, object] = field(default_factory=dict)
    waiting: str | None = None
    """Why the newest commit is not live (pinned, suspended, marked bad, failed), if it is not."""
    versions: dict[str, Any] | None = None
    """A versioned target: default, aliases, and each version's commit (sitedeploy.versions)."""
    tracking: str | None = None
    """What the target follows (``branch:main``, ``tag:v*``, ``HEAD``)."""
    tip: str | None = None
    """The commit the tracked ref points at now (None: no such ref, or the remote is down)."""
    tip_error: str | None = None
    """Why ``tip`` is unknown."""
    newest_tag: str | None = None
    """With ``ref = "tag:…"``: the newest matching tag, and why it is not live if it is not."""
    lock: str | None = None
    """Who holds the target's lock now and since when, with its lease's age, if anyone does."""

    @property
    def hosts_disagree(self) -> bool:
        return self.hosts is not None and len(set(self.hosts.values())) > 1


@dataclass(frozen=True)
class VerifyResult:
    target: str
    release: str | None
    drift: list[Drift]
    repaired: bool = False

    @property
    def clean(self) -> bool:
        return all(d.clean for d in self.drift)


@dataclass(frozen=True)
class TargetFailed:
    """One target's failure in a command over several targets; the others still ran."""

    target: str
    error: SitedeployError

    def summary(self) -> str:
        message = self.error.message
        return message if f"'{self.target}'" in message else f"target '{self.target}': {message}"


T = TypeVar("T")
Failures = list[TargetFailed]
"""Pass one to a command to collect each target's failure and go on with the next target;
without it, the first failure is raised (as a library caller, and the agent, expect)."""


def each_target(
    targets: Mapping[str, TargetConfig], failures: Failures | None, act: Callable[[str, TargetConfig], T]
) -> list[T]:
    """``act`` on each target in turn: one unreachable target does not hide the rest."""
    out = []
    for name, cfg in targets.items():
        try:
            out.append(act(name, cfg))
        except SitedeployError as exc:
            if failures is None:
                raise
            failures.append(TargetFailed(name, exc))
    return out


# --- plumbing -------------------------------------------------------------------------------


def open_source(config: Config) -> Source:
    repo = config.source.repo
    url = repo if is_url(repo) else str(config.resolve(repo))
    return Source(url, ignored_folder(config.state_dir) / "mirror.git")


def synced_source(config: Config) -> Source:
    source = open_source(config)
    source.sync()
    return source


def rules_for(
    cfg: TargetConfig, *, force: bool = False, force_delete: bool = False, lock_timeout: float | None = None
) -> Rules:
    """The target's rules from its config, with what the person overrode on the command line."""
    timeout = cfg.lock_timeout if lock_timeout is None else lock_timeout
    return Rules(
        cfg.keep_releases,
        cfg.max_delete,
        timeout,
        cfg.lock_ttl,
        force=force,
        force_delete=force_delete,
        removed_pages=cfg.removed_pages,
    )


LazyBuild = BuildPlan
"""The build plan's former name, for code written before :mod:`sitedeploy.build.planning`."""


def new_record(t: Target, built: Built, key: str) -> ReleaseRecord:
    existing = set(t.list_releases())
    rid = release_id(built.commit.sha)
    n = 2
    while rid in existing:
        rid = f"{release_id(built.commit.sha)}-{n}"
        n += 1
    return ReleaseRecord(
        id=rid,
        commit=built.commit.sha,
        subject=built.commit.subject,
        author=built.commit.author,
        committed_at=built.commit.committed_iso,
        created_at=now_iso(),
        created_by=whoami(),
        build_key=key,
        files=len(built.manifest),
        bytes=built.manifest.total_bytes,
        build_config=built.build_config,
    )


def commit_of(record: ReleaseRecord) -> Commit:
    return Commit(record.commit, record.subject, record.author, 0)
