"""rollback, the agent's automatic revert, and the pins and suspensions that hold deploys."""

from __future__ import annotations

import dataclasses

from ..config import Config, TargetConfig
from ..errors import RollbackError, SourceError
from ..progress import SILENT, Progress
from ..release import records as state
from ..release.diff import diff
from ..release.records import Mark, ReleaseRecord
from ..targets import Target
from .common import (
    DeployResult,
    LazyBuild,
    commit_of,
    history_entry,
    new_record,
    opened,
    previous_release,
    prune,
    record_interrupted_switch,
    synced_source,
)


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
    state.append_history(t, history_entry("rollback", record, plan))
    return DeployResult(t.name, commit_of(record), "rolled back", rid, plan)


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
    lazy = LazyBuild(config, source, commit, progress)
    built = lazy.get()
    live_manifest = state.read_manifest(t, live.id)
    plan = diff(built.manifest, live_manifest)
    record = new_record(t, built, lazy.key_for(cfg))
    stats = t.stage(record, built.root, built.manifest, plan, progress)
    state.write_release(t, record, built.manifest)
    t.activate(record, built.manifest, live_manifest)
    state.append_history(t, history_entry("rollback", record, plan, "rebuilt from git"))
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
        state.append_history(t, history_entry("rollback", record, plan, f"automatic: {reason}"))
    return DeployResult(t.name, commit_of(record), "rolled back", rid, plan)


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
