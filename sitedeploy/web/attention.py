""" "Needs attention": what a person has to look at, each with its reason and the command.

The commands are exact: copied from the page and run as they are, they resolve the item (or,
for a failure, retry it in the foreground where its whole error shows).
"""

from __future__ import annotations

from ..commands import TargetStatus
from .model import AgentInfo, Attention, PreviewView, TargetView

EXPIRING = 2 * 86400.0
"""A preview this close to its removal is listed."""


def of_targets(
    targets: list[TargetView], statuses: dict[str, TargetStatus], unreachable: dict[str, str]
) -> list[Attention]:
    items: list[Attention] = []
    for t in targets:
        s = statuses.get(t.name)
        if t.name in unreachable:
            items.append(
                Attention("unreachable", t.name, unreachable[t.name], f"sitedeploy status --target {t.name}")
            )
        if s is None:
            continue
        items += _marks(t, s)
        if t.state == "failed":
            items.append(Attention("failed", t.name, t.reason or "", f"sitedeploy deploy --target {t.name}"))
        if t.state == "drifted":
            cmd = f"sitedeploy verify --target {t.name} --repair"
            items.append(Attention("drift", t.name, t.reason or "", cmd))
        if s.lock:
            items.append(
                Attention("lock", t.name, f"locked by {s.lock}", f"sitedeploy unlock --target {t.name}")
            )
    return items


def _marks(t: TargetView, s: TargetStatus) -> list[Attention]:
    items = []
    if s.suspended:
        reason = (
            f"suspended by {s.suspended.by} at {s.suspended.at}: {s.suspended.reason or 'no reason given'}"
        )
        items.append(Attention("suspended", t.name, reason, f"sitedeploy resume --target {t.name}"))
    if s.pinned:
        pin = s.pinned
        reason = f"pinned by {pin.by} at {pin.at}: {pin.reason or 'no reason given'}"
        items.append(Attention("pinned", t.name, reason, f"sitedeploy resume --target {t.name}"))
    for sha, mark in s.bad_commits.items():
        reason = f"{sha[:12]} marked bad by {mark.by} at {mark.at}: {mark.reason or 'no reason given'}"
        items.append(
            Attention("bad-commit", t.name, reason, f"sitedeploy unmark --target {t.name} {sha[:12]}")
        )
    return items


def of_previews(previews: list[PreviewView]) -> list[Attention]:
    items = []
    for p in previews:
        if p.expires_in_seconds is None or p.expires_in_seconds > EXPIRING:
            continue
        hours = p.expires_in_seconds / 3600
        reason = f"preview {p.slug} ({p.ref}) is removed in {hours:.0f} h: not updated for its maximum age"
        command = f"git commit --allow-empty -m 'keep the preview' && git push origin HEAD:{p.ref}"
        if p.ref.startswith(("pull/", "merge-requests/")):
            command = "git commit --allow-empty -m 'keep the preview' && git push  # on the request's branch"
        items.append(Attention("preview-expiring", p.target, reason, command))
    return items


def of_agent(agent: AgentInfo) -> list[Attention]:
    if agent.state != "stalled":
        return []
    reason = f"the agent (pid {agent.pid}) has not ticked since {agent.last_tick_at}"
    return [Attention("stalled", "*", reason, "journalctl -u sitedeploy-agent -n 50")]
