"""The agent's reconcile step: one tick makes every target serve what its tracked ref says.

An idle tick is one ``git ls-remote`` compared with what the agent remembers (``memory``):
no fetch, no build, no request to any target. When a target's ref has moved:

    open target → pinned / suspended / commit marked bad?  hold, and say so once
                → fetch → verify the signature → build → gate (links; superseded?)
                → publish (stage, record, switch) → check the live URLs and the marker
                → rolled back if the check fails → record in control.json → notify

A commit that fails (build, gate, signature, check) is remembered and not tried again until
a newer commit arrives, unless the error was transient (a lock, the network): those are
retried with backoff. A full tick (SIGHUP, webhook, every ``drift_every`` ticks) also visits
targets the agent believes are current, and runs the drift check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import commands
from ..build import BuildPlan, Built, plan
from ..build.linkgate import LinkIndex, check_links
from ..config import Config, TargetConfig
from ..errors import GateError, SitedeployError
from ..forge.feedback import feedback_for
from ..release.control import hold_reason, update_control, with_agent_facts
from ..release.records import read_control, read_release
from ..source import Commit, Source
from ..targets import Target, open_target
from .drift import drift_pass
from .log import EventLog, LogProgress
from .memory import Memory, TargetMemory
from .metrics import Metrics
from .notify import Notice, Notifier
from .refs import Refs, Tracked, ls_remote, parse_tracked, resolve

Opener = Callable[[str, TargetConfig, Config], Target]
MAX_BACKOFF = 3600.0


class Superseded(Exception):
    """The tracked ref moved while this commit was building: deploy the newer one instead."""


@dataclass
class TickReport:
    deployed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)
    again: bool = False
    """A build was superseded: tick again at once."""


class Agent:
    def __init__(
        self,
        config: Config,
        log: EventLog,
        *,
        target: str | None = None,
        opener: Opener = open_target,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config, self.log, self.clock = config, log, clock
        self.targets = config.target(target)
        self.tracked: dict[str, Tracked] = {
            name: parse_tracked(
                cfg.ref, config.source.branch, f"targets.{name}.ref", prereleases=cfg.prereleases
            )
            for name, cfg in self.targets.items()
        }
        self.url = commands.open_source(config).url
        self.memory = Memory.load(config.state_dir)
        self.notifier = Notifier(
            config.agent.notify,
            self.memory.notify,
            log,
            repeat_after=config.agent.repeat_failure_after,
            clock=clock,
        )
        self.metrics = metrics or Metrics(None)
        self.forge = feedback_for(config, log, self.metrics.forge_failed)  # commit statuses, PR comments
        self.opener = opener
        self.last_tick_at = 0.0
        self._source: Source | None = None
        self._gated: dict[str, GateError | None] = {}
        self._links: LinkIndex | None = None  # loaded at the first gate, not on idle ticks
        self._links_path = config.state_dir / "agent" / "links.json"
        self._links_dirty = False
        self._links_lock = threading.Lock()

    # --- the tick ---------------------------------------------------------------------------

    def tick(self, *, full: bool = False) -> TickReport:
        report = TickReport()
        self._source = None  # fetch at most once per tick, and only if something moved
        try:
            refs = ls_remote(self.url)
        except SitedeployError as exc:
            self.log.error("remote-failed", error=exc.message)
            report.failed.append("*")
            return report
        self.memory.ticks += 1
        every = self.config.agent.drift_every
        drift_due = bool(every) and self.memory.ticks % every == 0
        lazies: dict[str, BuildPlan] = {}
        for name, cfg in self.targets.items():
            self._target_tick(name, cfg, refs, full or drift_due, lazies, report)
        if drift_due:
            drift_pass(self)
        self.memory.save()
        if self._links is not None and self._links_dirty:  # after publishing, off the critical path
            self._links.save(self._links_path)
            self._links_dirty = False
        self.metrics.ticked()
        self.last_tick_at = self.clock()
        return report

    def _target_tick(
        self,
        name: str,
        cfg: TargetConfig,
        refs: Refs,
        full: bool,
        lazies: dict[str, BuildPlan],
        report: TickReport,
    ) -> None:
        if cfg.versions or cfg.previews:  # many release lines on one target: sitedeploy.versions
            from ..versions.agent import family_tick

            family_tick(self, name, cfg, refs, full, report)
            if cfg.versions:
                return
        mem = self.memory.target(name)
        found = resolve(self.tracked[name], refs)
        if found is None:
            if mem.ref != "":
                self.log.warning("ref-missing", target=name, ref=self.tracked[name].describe())
            mem.ref = ""
            return
        mem.ref, sha = found
        if full or self._due(mem, sha):
            report.visited.append(name)
            self._visit(name, cfg, sha, lazies, report)

    def _due(self, mem: TargetMemory, sha: str) -> bool:
        if sha in (mem.applied, mem.held):
            return False
        if sha == mem.failed:
            return mem.retryable and self.clock() >= mem.retry_at
        return True

    def _visit(
        self,
        name: str,
        cfg: TargetConfig,
        sha: str,
        lazies: dict[str, BuildPlan],
        report: TickReport,
    ) -> None:
        mem = self.memory.target(name)
        try:
            with self.opened(name, cfg) as t:
                try:
                    self._converge(t, cfg, mem, sha, lazies, report)
                except Superseded as exc:
                    self.log.event("superseded", target=name, commit=sha[:12], newer=str(exc)[:12])
                    report.again = True
                except SitedeployError as exc:
                    self._failed(name, mem, sha, exc, report)
                self._record(t, cfg, mem)
        except SitedeployError as exc:  # the target itself could not be reached
            self._failed(name, mem, sha, exc, report)

    def _converge(
        self,
        t: Target,
        cfg: TargetConfig,
        mem: TargetMemory,
        sha: str,
        lazies: dict[str, BuildPlan],
        report: TickReport,
    ) -> None:
        control = read_control(t)
        hold = hold_reason(control, sha)
        if hold:
            if mem.held != sha:
                self.log.event("held", target=t.name, commit=sha[:12], reason=hold)
            mem.held = sha
            return
        mem.held = None
        live = t.live_release()
        record = read_release(t, live) if live else None
        if record is not None and record.commit == sha:
            self._confirmed(t.name, mem, sha)
            return
        if sha == mem.failed and not (mem.retryable and self.clock() >= mem.retry_at):
            return  # remembered failure: wait for a newer commit
        self._deploy(t, cfg, mem, sha, lazies, report)

    def _deploy(
        self,
        t: Target,
        cfg: TargetConfig,
        mem: TargetMemory,
        sha: str,
        lazies: dict[str, BuildPlan],
        report: TickReport,
    ) -> None:
        started = time.monotonic()
        mem.attempted = sha
        self._record(t, cfg, mem)  # status on any machine: the agent is deploying this commit
        source = self._synced_source()
        commit = source.commit(sha)
        self.log.event("deploying", target=t.name, commit=commit.short, ref=mem.ref, subject=commit.subject)
        self.forge.pending(t.name, sha)
        lazy = lazies.get(sha) or plan(
            self.config, source, commit, LogProgress(self.log, t.name), trust="production"
        )
        lazies[sha] = lazy
        if lazy.signature.signer is not None:  # checked (and held) by publish, for every line
            self.log.event("signature", commit=commit.short, signer=lazy.signature.signer)
        rules = commands.rules_for(cfg)
        result = commands.publish(t, rules, lazy, lazy.key_for(cfg), gate=self._gate(t.name, sha))
        if result.outcome == "deployed" and (cfg.check_urls or cfg.marker_url):
            from .checks import CheckSettings, check_live  # urllib: only when there is a check

            problem = check_live(cfg, sha, CheckSettings.of(self.config.agent))
            if problem is not None:
                self._roll_back(t, cfg, mem, commit, problem, report)
                return
        elapsed = time.monotonic() - started
        self._succeeded(t.name, mem, commit, result, elapsed, report)

    # --- outcomes ---------------------------------------------------------------------------

    def _succeeded(
        self,
        name: str,
        mem: TargetMemory,
        commit: Commit,
        result: commands.DeployResult,
        elapsed: float,
        report: TickReport,
    ) -> None:
        recovered = self.notifier.state(name) != "ok"
        _clear_failure(mem, commit.sha)
        if result.outcome == "unchanged":
            self._confirmed(name, mem, commit.sha)
            return
        report.deployed.append(name)
        self.log.event(
            "deployed", target=name, commit=commit.short, release=result.release, seconds=round(elapsed, 3)
        )
        self.metrics.deployed(name, commit.sha, elapsed)
        self.forge.success(name, commit.sha, f"deployed as {result.release}")
        message = f"{name}: deployed {commit.short} ({commit.subject}) as {result.release}"
        self.notifier.notify(
            Notice("deployed", name, message + (" — recovered" if recovered else ""), commit.sha)
        )

    def _confirmed(self, name: str, mem: TargetMemory, sha: str) -> None:
        """The target already serves ``sha``: remember it, and say so if it was failing."""
        _clear_failure(mem, sha)
        self.metrics.set_live(name, sha)
        if self.notifier.state(name) == "failed":
            self.notifier.notify(Notice("recovered", name, f"{name}: serving {sha[:8]} again", sha))

    def _failed(
        self, name: str, mem: TargetMemory, sha: str, exc: SitedeployError, report: TickReport
    ) -> None:
        report.failed.append(name)
        repeat = mem.failed == sha and mem.error == exc.message
        mem.failed, mem.error, mem.retryable = sha, exc.message, exc.retryable
        mem.failures = mem.failures + 1 if repeat else 1
        if exc.retryable:
            delay = min(self.config.agent.interval * 2 ** (mem.failures - 1), MAX_BACKOFF)
            mem.retry_at = self.clock() + delay
        self.log.error(
            "failed",
            target=name,
            commit=sha[:12],
            kind=type(exc).__name__,
            retry=exc.retryable,
            error=exc.message,
        )
        self.metrics.failed(name)
        self.forge.failure(name, sha, exc.message)
        message = f"{name}: {sha[:8]} not deployed: {exc.message}"
        self.notifier.notify(Notice("failed", name, message, sha, key=f"{sha}:{type(exc).__name__}"))

    def _roll_back(
        self,
        t: Target,
        cfg: TargetConfig,
        mem: TargetMemory,
        commit: Commit,
        problem: str,
        report: TickReport,
    ) -> None:
        reason = f"post-switch check failed: {problem}"
        result = commands.revert_failed_switch(t, commands.rules_for(cfg), reason)
        report.rolled_back.append(t.name)
        mem.applied = result.commit.sha
        mem.failed, mem.error, mem.retryable, mem.failures = commit.sha, reason, False, 1
        self.log.error("rolled-back", target=t.name, commit=commit.short, to=result.release, error=problem)
        self.metrics.failed(t.name)
        self.forge.failure(t.name, commit.sha, reason)
        self.metrics.set_live(t.name, result.commit.sha)
        message = f"{t.name}: rolled back {commit.short} to {result.release}: {reason}"
        self.notifier.notify(Notice("rolled back", t.name, message, commit.sha, key=commit.sha))

    def _record(self, t: Target, cfg: TargetConfig, mem: TargetMemory) -> None:
        """Mirror the bookkeeping into control.json, where ``status`` on any machine sees it."""
        facts = {
            "last_applied": mem.applied,
            "last_attempted": mem.attempted,
            "last_error": mem.error,
            "failed_commit": mem.failed,
            "held_commit": mem.held,
        }
        try:
            if {k: read_control(t).agent.get(k) for k in facts} == facts:
                return
            # Under the lock: a rollback writing its pin at the same moment must not be lost.
            update_control(t, t.name, with_agent_facts(facts), timeout=max(5.0, cfg.lock_timeout))
        except SitedeployError as exc:
            self.log.warning("status-not-recorded", target=t.name, error=exc.message)

    # --- helpers ----------------------------------------------------------------------------

    def opened(self, name: str, cfg: TargetConfig) -> Target:
        """The target, opened with the agent's opener; use as a context manager."""
        return self.opener(name, cfg, self.config)

    # --- the versions/previews tick's hooks (sitedeploy.versions.agent.TickHooks) ------------

    def synced_source(self) -> Source:
        return self._synced_source()

    def line_memory(self, key: str) -> TargetMemory:
        return self.memory.target(key)

    def notify(self, notice: Notice) -> None:
        self.notifier.notify(notice)

    def _synced_source(self) -> Source:
        if self._source is None:
            source = commands.open_source(self.config)
            source.sync()
            self._source = source
        return self._source

    def _gate(self, name: str, sha: str) -> Callable[[Built], None]:
        def gate(built: Built) -> None:
            if self.config.agent.link_check:
                self._link_check(built)
            newest = resolve(self.tracked[name], ls_remote(self.url))
            if newest is not None and newest[1] != sha:
                raise Superseded(newest[1])

        return gate

    def link_index(self) -> LinkIndex:
        """The link gate's index, loaded once (the long-running agent loads it at start)."""
        with self._links_lock:
            if self._links is None:
                self._links = LinkIndex.load(self._links_path)
            return self._links

    def _link_check(self, built: Built) -> None:
        if built.build_key not in self._gated:  # one check per build, however many targets
            started = time.monotonic()
            try:
                check_links(built, self.link_index())
                self._gated[built.build_key] = None
            except GateError as exc:
                self._gated[built.build_key] = exc
            self._links_dirty = True
            seconds = round(time.monotonic() - started, 3)
            self.log.event(
                "gate", commit=built.commit.short, seconds=seconds, ok=not self._gated[built.build_key]
            )
        failure = self._gated[built.build_key]
        if failure is not None:
            raise failure


def _clear_failure(mem: TargetMemory, sha: str) -> None:
    mem.applied = sha
    mem.failed, mem.error, mem.retryable, mem.failures, mem.retry_at = None, "", False, 0, 0.0
