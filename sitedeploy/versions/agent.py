"""The agent's hook for versioned targets and previews, called once per tick per target.

An idle tick costs nothing more than the tick's one ``git ls-remote``: the commits of every
version (and preview branch) are compared with what the agent remembers; only when one moved,
appeared or disappeared is the mirror fetched and the family visited — and then a version whose
line already serves its ref's commit is neither built nor published, so old versions are never
rebuilt. Each deployed version or preview is notified (a preview with its URL).

The agent is reached only through :class:`TickHooks`, the few things a tick needs from it (its
config, log and clock, the tick's synced source, a memory slot per family, notifications).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..agent.notify import Notice
from ..agent.refs import Refs
from ..config import Config, TargetConfig, preview_specs
from ..errors import SitedeployError
from ..forge.pages import PageChanges
from .api import LineResult, sync_versions
from .layout import Family, Kind
from .naming import versions_from_refs

if TYPE_CHECKING:
    from ..agent.log import EventLog
    from ..agent.loop import TickReport
    from ..agent.memory import TargetMemory
    from ..forge.feedback import Feedback, NoFeedback
    from ..source import Source


class TickHooks(Protocol):
    """What the versions/previews tick needs from the agent (``Agent`` provides it)."""

    config: Config
    log: EventLog
    clock: Callable[[], float]

    def synced_source(self) -> Source:
        """The content mirror, fetched once per tick and shared with plain targets."""

    def line_memory(self, key: str) -> TargetMemory:
        """The agent's memory slot for one family (``applied`` is the digest of its refs)."""

    def notify(self, notice: Notice) -> None: ...

    @property
    def forge(self) -> Feedback | NoFeedback:
        """Where preview results are posted back (:mod:`sitedeploy.forge`)."""


def family_tick(
    agent: TickHooks, name: str, cfg: TargetConfig, refs: Refs, full: bool, report: TickReport
) -> None:
    kinds: tuple[Kind, ...] = ("versions", "previews")
    for kind in kinds:
        if getattr(cfg, kind):
            _tick(agent, Family(name, cfg, agent.config, kind), refs, full, report)


def _wanted(family: Family, refs: Refs) -> dict[str, str]:
    cfg = family.cfg
    if family.kind == "versions":
        assert cfg.versions is not None
        found = versions_from_refs(refs, cfg.versions, cfg.version_format, cfg.version_title)
        return {v.name: v.commit for v in found.values()}
    from .previews import match_previews

    matched = match_previews(refs, preview_specs(cfg))
    # a clash is wanted too, so that a clashing branch that moves is visited (and told) again
    clashes = {s: ",".join(refs[full] for full in clashing) for s, clashing in matched.clashes.items()}
    return {s: sha for s, (_, sha) in matched.wanted.items()} | clashes


def _tick(agent: TickHooks, family: Family, refs: Refs, full: bool, report: TickReport) -> None:
    mem = agent.line_memory(f"{family.target}#{family.kind}")
    wanted = _wanted(family, refs)
    digest = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()
    if digest == mem.applied and not full:
        return
    report.visited.append(family.name)
    try:
        results = _sync(agent, family, refs)
    except SitedeployError as exc:
        report.failed.append(family.name)
        agent.log.error("failed", target=family.name, error=exc.message, retry=exc.retryable)
        return
    for result in results:
        _tell(agent, family, result, report)
    if not any(r.outcome == "failed" and _retryable(r) for r in results):
        mem.applied = digest  # a failed build waits for its ref to move, as for any target


def _sync(agent: TickHooks, family: Family, refs: Refs) -> list[LineResult]:
    source = agent.synced_source()
    if family.kind == "versions":
        cfg = family.cfg
        assert cfg.versions is not None
        found = versions_from_refs(refs, cfg.versions, cfg.version_format, cfg.version_title)
        from .publish import live_state

        deleted = live_state(family).extra.get("deleted", {})
        picked = [v for v in found.values() if deleted.get(v.name) != v.commit]
        return sync_versions(family, source, picked)
    from .previews import sync_previews

    return sync_previews(family, source, refs, now=agent.clock())


def _tell(agent: TickHooks, family: Family, r: LineResult, report: TickReport) -> None:
    if r.outcome == "unchanged":
        return
    what = "version" if family.kind == "versions" else "preview"
    event = {"deployed": "deployed", "removed": "deployed", "failed": "failed"}.get(r.outcome, "held")
    agent.log.event(f"{what}-{r.outcome}", target=family.target, line=r.name, commit=r.commit[:12], url=r.url)
    if r.outcome == "deployed":
        report.deployed.append(f"{family.target}/{r.name}")
    elif r.outcome == "failed":
        report.failed.append(f"{family.target}/{r.name}")
    at = f" at {r.url}" if r.url else ""
    message = f"{family.target}: {what} {r.name} {r.outcome} ({r.ref} {r.commit[:8]}){at}"
    if r.detail:
        message += f": {r.detail}"
    key = f"{r.name}:{r.commit}:{r.outcome}"
    agent.notify(Notice(event, f"{family.target}/{r.name}", message, r.commit or None, key=key))
    if family.kind == "previews" and r.outcome in ("deployed", "failed") and r.commit:
        pages = PageChanges(**r.pages) if r.pages else None
        agent.forge.preview(family.target, r.ref, r.commit, r.url, pages, r.outcome == "deployed")


def _retryable(r: LineResult) -> bool:
    return r.retryable  # told by the error's class (LockHeld, Unreachable, ...), not its text
