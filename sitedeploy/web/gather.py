"""Build the :class:`~.model.StatusReport` from what ``status`` and ``history`` already read.

One pass: ``commands.status`` (each target's live release, control marks, lock, the tip of its
ref: one ``git ls-remote``), ``commands.history``, the agent's memory (drift), heartbeat and
activity (:mod:`.pulse`), and the versions and previews of targets that have them. A target
that cannot be reached is a row in the report (state ``unknown``) and an item that needs
attention, never an error of the page.
"""

from __future__ import annotations

import calendar
import time
import urllib.parse
from typing import Any

from .. import commands
from ..agent.memory import Memory
from ..commands import TargetStatus
from ..config import Config, TargetConfig
from ..errors import SitedeployError, scrub
from ..release.records import HistoryEntry
from ..source import Commit
from . import attention as needs
from . import lines as family_lines
from .model import (
    SCHEMA_VERSION,
    ActivityItem,
    AgentInfo,
    AgentState,
    CommitInfo,
    HistoryItem,
    SourceInfo,
    StatusReport,
    TargetState,
    TargetView,
)
from .pulse import iso, read_activity, read_heartbeat, summary

HISTORY_SHOWN = 10
ACTIVITY_SHOWN = 50
STALL_GRACE = 60.0
"""Like ``/healthz``: stalled after three intervals and a minute without a tick."""


def gather(config: Config, *, now: float | None = None, agent_here: bool = False) -> StatusReport:
    """Everything the page shows. ``agent_here``: gathered inside the running agent (alive)."""
    now = time.time() if now is None else now
    failures: commands.Failures = []
    statuses = {s.target: s for s in commands.status(config, failures=failures)}
    unreachable = {f.target: f.summary() for f in failures}
    histories = commands.history(config, limit=HISTORY_SHOWN, failures=[])
    memory = Memory.load(config.state_dir)
    events = read_activity(config.state_dir)
    targets = [
        _target(name, cfg, statuses.get(name), histories.get(name, []), memory, events, unreachable)
        for name, cfg in config.targets.items()
    ]
    agent = _agent(config, now, agent_here)
    versions, previews = family_lines.gather(config, now)
    items = needs.of_targets(targets, statuses, unreachable) + needs.of_previews(previews)
    items += needs.of_agent(agent)
    return StatusReport(
        schema=SCHEMA_VERSION,
        generated_at=iso(now),
        agent=agent,
        source=_source(config, statuses, now),
        attention=items,
        targets=targets,
        versions=versions,
        previews=previews,
        activity=_activity(events),
        badges=config.status.badges,
    )


# --- the agent ------------------------------------------------------------------------------


def _agent(config: Config, now: float, here: bool) -> AgentInfo:
    beat = read_heartbeat(config.state_dir)
    if not beat:
        return AgentInfo("once" if here else "never", interval=config.agent.interval)
    return AgentInfo(
        _agent_state(beat, now, here),
        pid=beat.get("pid"),
        started_at=beat.get("started_at"),
        last_tick_at=beat.get("last_tick_at"),
        next_poll_at=beat.get("next_poll_at"),
        last_webhook_at=beat.get("last_webhook_at"),
        interval=beat.get("interval") or config.agent.interval,
    )


def _agent_state(beat: dict[str, Any], now: float, here: bool) -> AgentState:
    if beat.get("mode") == "once":
        return "once"
    if beat.get("stopped_at") and not here:
        return "stopped"
    last = _seconds(beat.get("last_tick_at")) or _seconds(beat.get("started_at")) or 0.0
    interval = float(beat.get("interval") or 60.0)
    return "healthy" if now - last < 3 * interval + STALL_GRACE else "stalled"


def _seconds(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))
    except (ValueError, OverflowError):
        return None


# --- the source -----------------------------------------------------------------------------


def _source(config: Config, statuses: dict[str, TargetStatus], now: float) -> SourceInfo:
    repo = scrub(config.source.repo)
    first = next((s for s in statuses.values() if s.tracking and not s.versions), None)
    if first is None or first.tip is None:
        error = first.tip_error if first else "no target follows a branch"
        return SourceInfo(repo, first.tracking if first else None, None, error)
    return SourceInfo(repo, first.tracking, commit_info(config, first.tip, now, verify=True))


def commit_info(config: Config, sha: str, now: float, *, verify: bool = False) -> CommitInfo:
    """What the mirror knows of ``sha`` (only its id when the mirror has not fetched it)."""
    source = commands.open_source(config)
    try:
        commit = source.commit(sha)
    except SitedeployError:
        return CommitInfo(sha, sha[:8])
    signature, signer = _signature(config, commit) if verify else ("unknown", None)
    return CommitInfo(
        sha,
        commit.short,
        commit.subject,
        commit.author,
        commit.committed_iso,
        max(0.0, now - commit.committed_at),
        signature,  # type: ignore[arg-type]
        signer,
    )


def _signature(config: Config, commit: Commit) -> tuple[str, str | None]:
    if config.source.verify_signatures == "off":
        return "off", None
    try:
        return "verified", commands.verify_signature(config, commands.open_source(config), commit)
    except SitedeployError:
        return "unverified", None


# --- targets --------------------------------------------------------------------------------


def _target(
    name: str,
    cfg: TargetConfig,
    s: TargetStatus | None,
    history: list[HistoryEntry],
    memory: Memory,
    events: list[dict[str, Any]],
    unreachable: dict[str, str],
) -> TargetView:
    url = public_url(cfg)
    if s is None:
        return TargetView(name, "", "unknown", url, reason=unreachable.get(name, "not read"))
    live = CommitInfo(s.commit, s.commit[:8], s.subject, s.author) if s.commit else None
    last = history[0] if history and history[0].release == s.release else None
    state, reason = target_state(s, memory.notify.get(name, {}))
    return TargetView(
        name,
        s.location,
        state,
        url,
        tracking=s.tracking,
        live=live,
        head=s.tip,
        release=s.release,
        deployed_at=s.deployed_at,
        deployed_by=s.deployed_by,
        duration_seconds=_duration(events, name, s.release),
        added=last.added if last else None,
        changed=last.changed if last else None,
        removed=last.removed if last else None,
        reason=reason,
        lock=s.lock,
        history=[_history_item(name, e, s.release) for e in history],
    )


def target_state(s: TargetStatus, notified: dict[str, Any]) -> tuple[TargetState, str | None]:
    """One state per target, the most pressing first, and the one line that explains it."""
    agent = s.agent
    if s.suspended:
        return "suspended", f"suspended by {s.suspended.by}: {s.suspended.reason or 'no reason given'}"
    if s.pinned:
        return "pinned", f"pinned by {s.pinned.by}: {s.pinned.reason or 'no reason given'}"
    if agent.get("failed_commit") and agent.get("failed_commit") in (s.tip, agent.get("last_attempted")):
        return "failed", str(agent.get("last_error") or "the last deploy failed")
    if notified.get("state") == "drift":
        return "drifted", "the live files differ from the release's manifest"
    if s.release is None:
        return "never-deployed", s.waiting
    if s.tip and s.tip != s.commit:
        if agent.get("last_attempted") == s.tip:
            return "deploying", s.waiting
        return "behind", s.waiting
    return ("in-sync", None) if s.tip or s.versions else ("unknown", s.tip_error)


def _history_item(target: str, e: HistoryEntry, live: str | None) -> HistoryItem:
    back = None if e.release == live else f"sitedeploy rollback --target {target} --to {e.release}"
    return HistoryItem(
        e.action,
        e.commit,
        e.subject,
        e.author,
        e.release,
        e.deployed_at,
        e.deployed_by,
        e.added,
        e.changed,
        e.removed,
        back,
    )


def _duration(events: list[dict[str, Any]], target: str, release: str | None) -> float | None:
    for e in reversed(events):
        if e.get("event") == "deployed" and e.get("target") == target and e.get("release") == release:
            seconds = e.get("seconds")
            return float(seconds) if isinstance(seconds, int | float) else None
    return None


def public_url(cfg: TargetConfig) -> str | None:
    """Where readers see the target: the first check URL, else the marker URL's site root."""
    if cfg.check_urls:
        return cfg.check_urls[0]
    if cfg.marker_url:
        parts = urllib.parse.urlsplit(cfg.marker_url)
        return f"{parts.scheme}://{parts.netloc}/"
    return None


def _activity(events: list[dict[str, Any]]) -> list[ActivityItem]:
    shown = events[-ACTIVITY_SHOWN:]
    return [
        ActivityItem(
            str(e.get("ts", "")),
            str(e.get("event", "")),
            str(e.get("level", "info")),
            str(e["target"]) if e.get("target") else None,
            summary(e),
        )
        for e in reversed(shown)
    ]
