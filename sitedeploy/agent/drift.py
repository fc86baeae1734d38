"""The drift pass, every ``drift_every`` ticks: do the targets still serve their releases?

Each target's ``verify`` compares the live files with the live release's manifest. With
``drift = "repair"`` the files are restored (from a reproducible rebuild of the live commit)
and one "repaired" notice goes out; with ``"alert"`` a "drift" notice goes out once, then at
most every ``repeat_failure_after`` seconds while it lasts, and "recovered" when it is gone.
Suspended targets are left alone: someone is working on them. A repair is refused (and the
drift notified) when it would delete more than ``max_delete`` files: mass deletion is for a
person to decide (``sitedeploy verify --repair --force-delete``).
"""

from __future__ import annotations

from typing import Protocol

from .. import commands
from ..config import Config, TargetConfig
from ..errors import PlanRefused, SitedeployError
from ..release.records import read_control
from ..targets import Target
from .log import EventLog
from .metrics import Metrics
from .notify import Notice, Notifier


class DriftWatcher(Protocol):
    """What the drift pass needs of the agent (the agent is one; this module never imports it)."""

    config: Config
    targets: dict[str, TargetConfig]
    log: EventLog
    metrics: Metrics
    notifier: Notifier

    def opened(self, name: str, cfg: TargetConfig) -> Target: ...


def drift_pass(agent: DriftWatcher) -> None:
    for name, cfg in agent.targets.items():
        if cfg.drift == "off" or cfg.versions:  # a versioned root has no commit to rebuild
            continue
        try:
            with agent.opened(name, cfg) as t:
                if read_control(t).suspended:
                    continue
                result = commands.verify_target(agent.config, t, cfg, repair=cfg.drift == "repair")
        except PlanRefused as exc:  # a repair past max_delete: told, never done by the agent
            agent.log.warning("drift-not-repaired", target=name, error=exc.message)
            agent.notifier.notify(Notice("drift", name, f"{name}: drift found, not repaired: {exc.message}"))
            continue
        except SitedeployError as exc:
            agent.log.error("drift-check-failed", target=name, error=exc.message)
            continue
        _report(agent, name, result)


def _report(agent: DriftWatcher, name: str, result: commands.VerifyResult) -> None:
    files = sum(len(d.missing) + len(d.changed) + len(d.extra) for d in result.drift)
    summary = "; ".join(f"{d.where}: {d.summary()}" for d in result.drift if not d.clean)
    agent.metrics.drifted(name, 0 if result.repaired else files)
    if result.clean:
        if agent.notifier.state(name) == "drift":
            agent.notifier.notify(Notice("recovered", name, f"{name}: no drift any more"))
        return
    agent.log.warning("drift", target=name, release=result.release, files=files, repaired=result.repaired)
    if result.repaired:
        agent.notifier.notify(Notice("repaired", name, f"{name}: drift found and repaired: {summary}"))
    else:
        agent.notifier.notify(Notice("drift", name, f"{name}: drift found: {summary}", key=summary))
