"""One function per command: the library API the CLI and the agent call.

Each function computes its result (a plan, a release, a status) and returns it; printing is
the CLI's job. Deploy and rollback hold the target's lock and follow one order, so a crash
anywhere leaves the target on a recorded release:

    stage release (invisible) → write release record → switch → append history → prune

A crash before the switch leaves the old release live (the staged folder is reused or
cleaned next time); a crash after the switch but before the history entry is noticed by the
next run, which records the live release then (``recover``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from . import state
from .build import Built, SitePlan, build_release, plan_sites, release_key
from .config import Config, TargetConfig
from .errors import PlanRefused, RollbackError, SourceError
from .manifest import Manifest
from .plan import Plan, diff
from .progress import SILENT, Progress
from .publish import Drift, Target, TransferStats, open_target
from .publish.base import MultiHost
from .source import Commit, Source, is_url
from .state import HistoryEntry, Mark, ReleaseRecord

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
    return Source(url, config.state_dir / "mirror.git")


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


class _LazyBuild:
    """Build a commit at most once per command, and only if some target needs it."""

    def __init__(self, config: Config, source: Source, commit: Commit, progress: Progress) -> None:
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


# --- build and deploy -------------------------------------------------------------------------


def build(
    config: Config, *, ref: str | None = None, site: str | None = None, progress: Progress = SILENT
) -> Built:
    source = synced_source(config)
    commit = source.resolve(ref, config.source.branch)
    plans = plan_sites(config, source, commit, only=site)
    return build_release(config, source, commit, plans=plans, progress=progress)


def deploy(
    config: Config,
    *,
    target: str | None = None,
    ref: str | None = None,
    dry_run: bool = False,
    force_delete: bool = False,
    progress: Progress = SILENT,
) -> list[DeployResult]:
    """Build ``ref`` (default: the tip of the source branch) and publish it to the targets."""
    targets = config.target(target)
    source = synced_source(config)
    commit = source.resolve(ref, config.source.branch)
    lazy = _LazyBuild(config, source, commit, progress)
    results = []
    for name, target_config in targets.items():
        with opened(name, target_config, config) as t:
            results.append(publish(t, target_config, lazy, dry_run=dry_run, force_delete=force_delete))
    return results


def publish(
    t: Target,
    cfg: TargetConfig,
    lazy: _LazyBuild,
    *,
    dry_run: bool = False,
    force_delete: bool = False,
    action: state.Action = "deploy",
    gate: Callable[[Built], None] | None = None,
) -> DeployResult:
    """Publish one commit to one target, under its lock.

    ``gate`` (the agent's link check) runs on the build before anything is staged; it raises
    (``GateError``) to hold the release back, leaving the live one untouched.
    """
    if dry_run:
        return _dry_run(t, cfg, lazy)
    with state.locked(t, t.name, purpose=action, timeout=cfg.lock_timeout):
        record_interrupted_switch(t)
        live = t.live_release()
        live_record = state.read_release(t, live) if live else None
        already_live = live_record is not None and live_record.build_key == lazy.key_for(cfg)
        if already_live and action == "deploy" and not _hosts_disagree(t):
            return DeployResult(t.name, lazy.commit, "unchanged", live)
        built = lazy.get()
        if gate is not None:
            gate(built)
        live_manifest = state.read_manifest(t, live) if live else None
        plan = diff(built.manifest, live_manifest)
        check_plan(t.name, cfg, plan, built.manifest, force_delete)
        record = _new_record(t, built, lazy.key_for(cfg))
        lazy.progress.step(f"{t.name}: publishing {plan.summary()}")
        stats = t.stage(record, built.root, built.manifest, plan, lazy.progress)
        state.write_release(t, record, built.manifest)
        t.activate(record, built.manifest, live_manifest)
        state.append_history(t, _entry(action, record, plan))
        prune(t, cfg.keep_releases)
    outcome: Outcome = "deployed" if action == "deploy" else "rolled back"
    return DeployResult(t.name, lazy.commit, outcome, record.id, plan, stats)


def _hosts_disagree(t: Target) -> bool:
    """Servers of one target on different releases (a run died mid-switch): publish again."""
    return isinstance(t, MultiHost) and len(set(t.live_by_host().values())) > 1


def _dry_run(t: Target, cfg: TargetConfig, lazy: _LazyBuild) -> DeployResult:
    live = t.live_release()
    live_record = state.read_release(t, live) if live else None
    if live_record and live_record.build_key == lazy.key_for(cfg):
        return DeployResult(t.name, lazy.commit, "unchanged", live)
    built = lazy.get()
    plan = diff(built.manifest, state.read_manifest(t, live) if live else None)
    return DeployResult(t.name, lazy.commit, "dry-run", live, plan)


def check_plan(name: str, cfg: TargetConfig, plan: Plan, manifest: Manifest, force_delete: bool) -> None:
    """Refuse plans that are almost certainly mistakes, before anything is written."""
    pages = [p for p in manifest if p.endswith(".html")]
    if not pages:
        raise PlanRefused(
            f"target '{name}': the build has no HTML pages ({len(manifest)} files); refusing to publish "
            "an empty site — check the sites' paths and mounts"
        )
    if len(plan.deletes) > cfg.max_delete and not force_delete:
        raise PlanRefused(
            f"target '{name}' would delete {len(plan.deletes)} files (max_delete = {cfg.max_delete}); "
            "raise max_delete or pass --force-delete"
        )


def _new_record(t: Target, built: Built, key: str) -> ReleaseRecord:
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


def _entry(action: state.Action, record: ReleaseRecord, plan: Plan | None, note: str = "") -> HistoryEntry:
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
        state.append_history(t, _entry("recover", record, None, "recorded after an interrupted run"))


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


# --- rollback -------------------------------------------------------------------------------


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


def rollback(
    config: Config, *, target: str | None = None, to: str | None = None, progress: Progress = SILENT
) -> list[DeployResult]:
    """Put an earlier release back: the one before the live one, or ``to`` (commit or release)."""
    results = []
    for name, cfg in config.target(target).items():
        with (
            opened(name, cfg, config) as t,
            state.locked(t, name, purpose="rollback", timeout=cfg.lock_timeout),
        ):
            record_interrupted_switch(t)
            results.append(_rollback_one(config, t, cfg, to, progress))
    return results


def _rollback_one(
    config: Config, t: Target, cfg: TargetConfig, to: str | None, progress: Progress
) -> DeployResult:
    live = t.live_release()
    live_record = state.read_release(t, live) if live else None
    if live_record is None:
        raise RollbackError(f"target '{t.name}' has no live release yet; nothing to roll back")
    rid = _find_release(t, to) if to else previous_release(t, live)
    if rid is not None:
        result = _switch_back(t, rid, live_record, progress)
    else:
        result = _rebuild_for_rollback(config, t, cfg, to, live_record, progress)
    _pin(t, live_record, result)
    return result


def _switch_back(t: Target, rid: str, live: ReleaseRecord, progress: Progress) -> DeployResult:
    """Make a retained release live again: no build, no transfer."""
    record = state.read_release(t, rid)
    manifest = state.read_manifest(t, rid)
    if record is None or manifest is None:
        raise RollbackError(f"target '{t.name}': release {rid} has no record; pick another with --to")
    progress.step(f"{t.name}: switching back to {rid} ({record.commit[:8]})")
    live_manifest = state.read_manifest(t, live.id)
    t.activate(record, manifest, live_manifest)
    plan = diff(manifest, live_manifest)
    state.append_history(t, _entry("rollback", record, plan))
    return DeployResult(t.name, _commit_of(record), "rolled back", rid, plan)


def _rebuild_for_rollback(
    config: Config, t: Target, cfg: TargetConfig, to: str | None, live: ReleaseRecord, progress: Progress
) -> DeployResult:
    """The release is no longer retained: build its commit again from git (reproducibly)."""
    commit_ref = to or _older_commit_in_history(t, live)
    source = synced_source(config)
    try:
        commit = source.resolve(commit_ref)
    except SourceError:
        raise RollbackError(
            f"target '{t.name}': '{commit_ref}' is neither a retained release nor a commit in the repo; "
            "see 'sitedeploy history'"
        ) from None
    kept = _find_release(t, commit.sha)  # `--to main` or a tag naming a commit that is still kept
    if kept is not None:
        return _switch_back(t, kept, live, progress)
    progress.step(f"{t.name}: release of {commit.short} is no longer kept; rebuilding it")
    lazy = _LazyBuild(config, source, commit, progress)
    built = lazy.get()
    live_manifest = state.read_manifest(t, live.id)
    plan = diff(built.manifest, live_manifest)
    record = _new_record(t, built, lazy.key_for(cfg))
    stats = t.stage(record, built.root, built.manifest, plan, progress)
    state.write_release(t, record, built.manifest)
    t.activate(record, built.manifest, live_manifest)
    state.append_history(t, _entry("rollback", record, plan, "rebuilt from git"))
    prune(t, cfg.keep_releases)
    return DeployResult(t.name, commit, "rolled back", record.id, plan, stats)


def _older_commit_in_history(t: Target, live: ReleaseRecord) -> str:
    bad = state.read_control(t).bad_commits
    for entry in reversed(state.read_history(t)):
        if entry.commit != live.commit and entry.commit not in bad and entry.release < live.id:
            return entry.commit
    raise RollbackError(f"target '{t.name}': no earlier release in its history to roll back to")


def _find_release(t: Target, to: str) -> str | None:
    """A retained release named by id or by (a prefix of) its commit; None if not retained."""
    releases = t.list_releases()
    if to in releases:
        return to
    if len(to) >= 4:
        for rid in reversed(releases):
            record = state.read_release(t, rid)
            if record and record.commit.startswith(to.lower()):
                return rid
    return None


def _commit_of(record: ReleaseRecord) -> Commit:
    return Commit(record.commit, record.subject, record.author, 0)


def _pin(t: Target, moved_from: ReleaseRecord, result: DeployResult) -> None:
    """Hold automatic deploys, and never redeploy the commit we rolled back from."""
    control = state.read_control(t)
    who, when = state.whoami(), state.now_iso()
    bad = dict(control.bad_commits)
    if moved_from.commit != result.commit.sha:
        bad[moved_from.commit] = Mark(who, when, f"rolled back from {moved_from.id}", moved_from.commit)
    pin = Mark(who, when, f"rollback to {result.release}", result.commit.sha)
    state.write_control(t, dataclasses.replace(control, pin=pin, bad_commits=bad))


def revert_failed_switch(t: Target, cfg: TargetConfig, reason: str) -> DeployResult:
    """The agent's automatic rollback: a post-switch check failed, put the previous release back.

    Unlike ``rollback`` this does not pin the target: the agent remembers the failing commit
    itself, so the next new commit still deploys at once.
    """
    with state.locked(t, t.name, purpose="rollback", timeout=cfg.lock_timeout):
        live = t.live_release()
        rid = previous_release(t, live)
        record = state.read_release(t, rid) if rid else None
        manifest = state.read_manifest(t, rid) if rid else None
        if rid is None or record is None or manifest is None:
            raise RollbackError(f"target '{t.name}': {reason}; no earlier release to roll back to")
        live_manifest = state.read_manifest(t, live) if live else None
        t.activate(record, manifest, live_manifest)
        plan = diff(manifest, live_manifest)
        state.append_history(t, _entry("rollback", record, plan, f"automatic: {reason}"))
    return DeployResult(t.name, _commit_of(record), "rolled back", rid, plan)


def resume(config: Config, *, target: str | None = None) -> list[str]:
    """Lift pins and suspensions: the agent deploys these targets again."""
    names = []
    for name, cfg in config.target(target).items():
        with opened(name, cfg, config) as t:
            control = state.read_control(t)
            state.write_control(t, dataclasses.replace(control, pin=None, suspended=None))
            names.append(name)
    return names


def suspend(config: Config, *, target: str | None = None, reason: str = "") -> list[str]:
    names = []
    for name, cfg in config.target(target).items():
        with opened(name, cfg, config) as t:
            control = state.read_control(t)
            mark = Mark(state.whoami(), state.now_iso(), reason)
            state.write_control(t, dataclasses.replace(control, suspended=mark))
            names.append(name)
    return names


# --- status, history, verify ----------------------------------------------------------------


def status(config: Config, *, target: str | None = None) -> list[TargetStatus]:
    out = []
    for name, cfg in config.target(target).items():
        with opened(name, cfg, config) as t:
            out.append(_status_one(t))
    return out


def _status_one(t: Target) -> TargetStatus:
    live = t.live_release()
    record = state.read_release(t, live) if live else None
    last = next((e for e in reversed(state.read_history(t)) if e.release == live), None)
    control = state.read_control(t)
    return TargetStatus(
        target=t.name,
        location=t.describe(),
        release=live,
        commit=record.commit if record else None,
        subject=record.subject if record else None,
        author=record.author if record else None,
        deployed_at=last.deployed_at if last else None,
        deployed_by=last.deployed_by if last else None,
        action=last.action if last else None,
        pinned=control.pin,
        suspended=control.suspended,
        bad_commits=control.bad_commits,
        releases=t.list_releases(),
        hosts=t.live_by_host() if isinstance(t, MultiHost) else None,
        agent=control.agent,
    )


def history(
    config: Config, *, target: str | None = None, limit: int | None = None
) -> dict[str, list[HistoryEntry]]:
    """Newest first, per target."""
    out = {}
    for name, cfg in config.target(target).items():
        with opened(name, cfg, config) as t:
            entries = list(reversed(state.read_history(t)))
            out[name] = entries[:limit] if limit else entries
    return out


def verify(
    config: Config, *, target: str | None = None, repair: bool = False, progress: Progress = SILENT
) -> list[VerifyResult]:
    """Compare each target's live files with the live release's manifest; optionally heal."""
    results = []
    for name, cfg in config.target(target).items():
        with opened(name, cfg, config) as t:
            results.append(_verify_one(config, t, cfg, repair, progress))
    return results


def verify_target(
    config: Config, t: Target, cfg: TargetConfig, *, repair: bool = False, progress: Progress = SILENT
) -> VerifyResult:
    """``verify`` for one opened target (the agent's drift check)."""
    return _verify_one(config, t, cfg, repair, progress)


def _verify_one(
    config: Config, t: Target, cfg: TargetConfig, repair: bool, progress: Progress
) -> VerifyResult:
    live = t.live_release()
    manifest = state.read_manifest(t, live) if live else None
    if live is None or manifest is None:
        return VerifyResult(t.name, None, [])
    drift = t.verify(live, manifest)
    if not repair or all(d.clean for d in drift):
        return VerifyResult(t.name, live, drift)
    record = state.read_release(t, live)
    assert record is not None
    source = synced_source(config)
    built = build_release(config, source, source.commit(record.commit), progress=progress)
    _check_reproduced(t.name, live, manifest, built.manifest, drift)
    with state.locked(t, t.name, purpose="repair", timeout=cfg.lock_timeout):
        t.repair(live, manifest, built.root, drift)
    return VerifyResult(t.name, live, drift, repaired=True)


def _check_reproduced(name: str, live: str, want: Manifest, got: Manifest, drift: list[Drift]) -> None:
    needed = {p for d in drift for p in d.missing + d.changed}
    wrong = sorted(p for p in needed if got.get(p) != want.get(p))
    if wrong:
        raise RollbackError(
            f"target '{name}': rebuilding {live} did not reproduce {wrong[0]} (and {len(wrong) - 1} more); "
            "deploy a new release instead of repairing"
        )
