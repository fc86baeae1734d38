"""The status report: one typed structure behind the page, ``/status.json`` and the badges.

``/status.json`` is :func:`to_json` of a :class:`StatusReport`: the dataclasses below, field by
field, with these promises (``schema`` says which version of them a reader gets):

- every key is always present (``null`` when unknown), and keys are never renamed or removed
  within a schema version; new keys may appear, so readers ignore keys they do not know;
- times are UTC ISO 8601 strings (``2026-05-01T12:00:00Z``), durations and ages are seconds;
- ``state`` values are the closed sets named in :data:`TARGET_STATES`, :data:`AGENT_STATES`
  and :data:`ATTENTION_KINDS`.

Nothing secret is in it: repository URLs are scrubbed of credentials, errors were scrubbed when
they were recorded, and the page's token is never part of the report.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 1

TargetState = Literal[
    "in-sync", "behind", "deploying", "failed", "pinned", "suspended", "drifted", "never-deployed", "unknown"
]
TARGET_STATES: tuple[str, ...] = TargetState.__args__  # type: ignore[attr-defined]
AgentState = Literal["healthy", "stalled", "stopped", "once", "never"]
AGENT_STATES: tuple[str, ...] = AgentState.__args__  # type: ignore[attr-defined]
AttentionKind = Literal[
    "failed",
    "drift",
    "pinned",
    "suspended",
    "bad-commit",
    "lock",
    "preview-expiring",
    "unreachable",
    "stalled",
]
ATTENTION_KINDS: tuple[str, ...] = AttentionKind.__args__  # type: ignore[attr-defined]
SignatureState = Literal["verified", "unverified", "off", "unknown"]


@dataclass(frozen=True)
class AgentInfo:
    state: AgentState
    """healthy: ticking; stalled: no tick for 3 intervals + 60 s; stopped: said so on its way out;
    once: last run was ``--once`` (cron); never: no agent has run with this state folder."""
    pid: int | None = None
    started_at: str | None = None
    last_tick_at: str | None = None
    next_poll_at: str | None = None
    last_webhook_at: str | None = None
    interval: float | None = None


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    short: str
    subject: str | None = None
    author: str | None = None
    committed_at: str | None = None
    age_seconds: float | None = None
    signature: SignatureState = "unknown"
    signer: str | None = None


@dataclass(frozen=True)
class SourceInfo:
    repo: str
    """The content repository (credentials scrubbed)."""
    ref: str | None
    """What production follows (``branch:main``), as ``status`` says it."""
    head: CommitInfo | None
    error: str | None = None
    """Why ``head`` is unknown (the remote did not answer)."""


@dataclass(frozen=True)
class Attention:
    kind: AttentionKind
    target: str
    reason: str
    command: str
    """The exact command that resolves it (or shows what to do next)."""


@dataclass(frozen=True)
class HistoryItem:
    action: str
    commit: str
    subject: str
    author: str
    release: str
    deployed_at: str
    deployed_by: str
    added: int
    changed: int
    removed: int
    rollback: str | None
    """``sitedeploy rollback --target T --to RELEASE`` (None for the live release itself)."""


@dataclass(frozen=True)
class TargetView:
    name: str
    location: str
    state: TargetState
    url: str | None = None
    """The public URL (the first ``check_urls``, else ``marker_url``'s site), if configured."""
    tracking: str | None = None
    live: CommitInfo | None = None
    head: str | None = None
    """The commit the tracked ref points at now (None: unknown)."""
    release: str | None = None
    deployed_at: str | None = None
    deployed_by: str | None = None
    duration_seconds: float | None = None
    added: int | None = None
    changed: int | None = None
    removed: int | None = None
    reason: str | None = None
    """Why it is not in sync (pinned, failed, drift, ...), one line."""
    lock: str | None = None
    history: list[HistoryItem] = field(default_factory=list)


@dataclass(frozen=True)
class VersionView:
    target: str
    version: str
    title: str
    aliases: list[str]
    commit: str | None
    url: str | None
    default: bool
    deployed_at: str | None


@dataclass(frozen=True)
class PreviewView:
    target: str
    slug: str
    ref: str
    """``feature/x`` for a branch, ``pull/42`` or ``merge-requests/7`` for a request."""
    commit: str | None
    url: str | None
    deployed_at: str | None
    expires_at: str | None
    expires_in_seconds: float | None


@dataclass(frozen=True)
class ActivityItem:
    at: str
    event: str
    level: str
    target: str | None
    summary: str


@dataclass(frozen=True)
class StatusReport:
    schema: int
    generated_at: str
    agent: AgentInfo
    source: SourceInfo
    attention: list[Attention]
    targets: list[TargetView]
    versions: list[VersionView]
    previews: list[PreviewView]
    activity: list[ActivityItem]
    badges: bool
    """Whether ``/badge/<target>.svg`` is served."""

    def target(self, name: str) -> TargetView | None:
        return next((t for t in self.targets if t.name == name), None)


def to_dict(report: StatusReport) -> dict[str, Any]:
    return dataclasses.asdict(report)


def to_json(report: StatusReport) -> bytes:
    return json.dumps(to_dict(report), indent=1, sort_keys=True).encode() + b"\n"
