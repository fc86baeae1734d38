"""Plumbing shared by the commands: results, the source, opened targets, one lazy build,
release records and history entries, pruning."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from ..build import Built, SitePlan, build_release, plan_sites, release_key
from ..config import Config, TargetConfig
from ..gitconfig import build_config_at
from ..progress import Progress
from ..release import records as state
from ..release.diff import Plan
from ..release.records import HistoryEntry, Mark, ReleaseRecord
from ..source import Commit, Source, is_url
from ..statedir import ignored_folder
from ..targets import Drift, Target, TransferStats, open_target

Outcome = Literal["deployed", "unchanged", "dry-run", "rolled back"]


@dataclass(frozen=True)
class DeployResult:
    target: str
    commit: Commit
    outcome: Outcome
    release: str | None
    plan: Plan | None = None
    stats: TransferStats | None = None

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


# --- plumbing -------------------------------------------------------------------------------


def open_source(config: Config) -> Source:
    repo = config.source.repo
    url = repo if is_url(repo) else str(config.resolve(repo))
    return Source(url, ignored_folder(config.state_dir) / "mirror.git")


def synced_source(config: Config) -> Source:
    source = open_source(config)
    source.sync()
    return source


@contextmanager
def opened(name: str, target_config: TargetConfig, config: Config) -> Iterator[Target]:
    target = open_target(name, target_config, config)
    try:
        yield target
    finally:
        target.close()


class LazyBuild:
    """Build a commit at most once per command, and only if some target needs it."""

    def __init__(self, config: Config, source: Source, commit: Commit, progress: Progress) -> None:
        config = build_config_at(config, source, commit, warn=progress.step)  # git decides the build
        self.config, self.source, self.commit, self.progress = config, source, commit, progress
        self.plans: list[SitePlan] = plan_sites(config, source, commit)
        self.key = release_key(commit, self.plans)
        self._built: Built | None = None

    def key_for(self, cfg: TargetConfig) -> str:
        """The release key on one target: the build plus the target's own settings, so that a
        change of publishing settings alone (S3 headers, modes) is published too."""
        return hashlib.sha256(f"{self.key}{cfg!r}".encode()).hexdigest()[:20]

    def get(self) -> Built:
        if self._built is None:
            self._built = build_release(
                self.config, self.source, self.commit, plans=self.plans, progress=self.progress
            )
        return self._built


def new_record(t: Target, built: Built, key: str) -> ReleaseRecord:
    existing = set(t.list_releases())
    rid = state.release_id(built.commit.sha)
    n = 2
    while rid in existing:
        rid = f"{state.release_id(built.commit.sha)}-{n}"
        n += 1
    return ReleaseRecord(
        id=rid,
        commit=built.commit.sha,
        subject=built.commit.subject,
        author=built.commit.author,
        committed_at=built.commit.committed_iso,
        created_at=state.now_iso(),
        created_by=state.whoami(),
        build_key=key,
        files=len(built.manifest),
        bytes=built.manifest.total_bytes,
    )


def history_entry(
    action: state.Action, record: ReleaseRecord, plan: Plan | None, note: str = ""
) -> HistoryEntry:
    return HistoryEntry(
        action=action,
        commit=record.commit,
        subject=record.subject,
        author=record.author,
        release=record.id,
        deployed_at=state.now_iso(),
        deployed_by=state.whoami(),
        added=plan.added if plan else 0,
        changed=plan.changed if plan else 0,
        removed=len(plan.deletes) if plan else 0,
        note=note,
    )


def record_interrupted_switch(t: Target) -> None:
    """A run that died between the switch and the history entry: record the live release now."""
    live = t.live_release()
    history = state.read_history(t)
    if live is None or (history and history[-1].release == live):
        return
    record = state.read_release(t, live)
    if record is not None:
        state.append_history(t, history_entry("recover", record, None, "recorded after an interrupted run"))


def prune(t: Target, keep: int) -> list[str]:
    """Remove the oldest releases beyond ``keep``; never the live one or the rollback candidate."""
    releases = t.list_releases()
    live = t.live_release()
    protect = {live, previous_release(t, live, releases)}
    removable = [r for r in releases if r not in protect]
    doomed = removable[: max(0, len(releases) - keep)]
    for rid in doomed:
        t.remove_release(rid)
        state.forget_release(t, rid)
    return doomed


def previous_release(t: Target, live: str | None, releases: list[str] | None = None) -> str | None:
    """The newest retained release older than the live one, of another commit not marked bad.

    A release of the live commit is skipped: it exists when a run was killed after staging
    and the commit was deployed again, and going "back" to it would change nothing.
    """
    releases = t.list_releases() if releases is None else releases
    skip = set(state.read_control(t).bad_commits)
    live_record = state.read_release(t, live) if live else None
    if live_record:
        skip.add(live_record.commit)
    for rid in reversed([r for r in releases if live is None or r < live]):
        record = state.read_release(t, rid)
        if record and record.commit not in skip:
            return rid
    return None


def commit_of(record: ReleaseRecord) -> Commit:
    return Commit(record.commit, record.subject, record.author, 0)
