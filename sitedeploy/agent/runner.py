"""Run the agent: once (cron, systemd timer) or for good (systemd service).

Both take the local process lock first, so a cron run that overlaps a slow one, or a cron
run beside the service, leaves at once with a message instead of racing it.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import LockHeld, SitedeployError
from ..source import is_url
from ..web.pulse import Pulse
from .log import EventLog
from .loop import Agent, Opener, TickReport
from .memory import ProcessLock
from .metrics import Metrics, split_bind
from .triggers import RepoWatcher, WakeFileWatcher, Wakeup, install_signal_handlers, jittered

if TYPE_CHECKING:
    from ..web.server import StatusPages

MAX_CATCH_UP = 5
"""Ticks in a row while builds keep being superseded by newer pushes."""
FORGE_FLUSH = 30.0
"""Seconds ``--once`` waits for its posts to the forge (retries past that are dropped)."""


def run_once(
    config: Config, log: EventLog, *, target: str | None = None, opener: Opener | None = None
) -> int:
    """One reconcile pass; exit status 1 when something failed in this run, else 0."""
    lock = ProcessLock(config.state_dir)
    try:
        lock.acquire()
    except LockHeld as exc:
        log.event("skipped", reason=exc.message)
        return 0
    pulse = _pulse(config, log, "once")
    try:
        agent = _agent(config, log, target, opener)
        report = TickReport(again=True)
        for _ in range(MAX_CATCH_UP):
            if not report.again:
                break
            report = agent.tick()
        for name, mem in agent.memory.targets.items():
            if mem.applied and name in agent.targets:
                agent.metrics.known_live(name, mem.applied)
        agent.forge.flush(FORGE_FLUSH)  # a cron run posts its results before it leaves
        agent.metrics.write_textfile()
        pulse.ticked(None)
        return 1 if report.failed or report.rolled_back else 0
    finally:
        log.listeners.remove(pulse.listen)
        lock.release()


def run_forever(
    config: Config,
    log: EventLog,
    *,
    target: str | None = None,
    opener: Opener | None = None,
    wakeup: Wakeup | None = None,
    signals: bool = True,
) -> None:
    """Tick on every trigger until SIGTERM/SIGINT (or ``wakeup.stop()``)."""
    lock = ProcessLock(config.state_dir)
    lock.acquire()
    wakeup = wakeup or Wakeup()
    pulse = _pulse(config, log, "service")
    agent = _agent(config, log, target, opener)
    services = _start_services(config, agent, wakeup, log)
    if config.agent.link_check:  # read the link index now, not when a push is waiting for it
        threading.Thread(target=agent.link_index, name="link-index", daemon=True).start()
    if signals:
        install_signal_handlers(wakeup)
    settings = config.agent
    log.event("started", targets=",".join(agent.targets), interval=settings.interval, watch=settings.watch)
    try:
        full = True  # the first tick looks at every target once
        while not wakeup.stopped:
            report = _safe_tick(agent, log, full)
            agent.metrics.write_textfile()
            if report.again:
                wakeup.trigger("superseded")
            delay = jittered(settings.interval, settings.jitter)
            pulse.ticked(delay)
            reasons, full = wakeup.wait(delay)
            if not wakeup.stopped and reasons != ["interval"]:
                log.event("wake", reasons=",".join(sorted(set(reasons))), full=full)
    finally:
        for stop in services:
            stop()
        lock.release()
        log.event("stopped")
        pulse.stopped()
        log.listeners.remove(pulse.listen)


def _safe_tick(agent: Agent, log: EventLog, full: bool) -> TickReport:
    try:
        return agent.tick(full=full)
    except SitedeployError as exc:
        log.error("tick-failed", error=exc.message)
    except Exception as exc:  # a bug must not stop the agent; it is logged with its place
        where = traceback.extract_tb(exc.__traceback__)[-1]
        log.error(
            "internal-error", error=f"{type(exc).__name__}: {exc}", at=f"{where.filename}:{where.lineno}"
        )
    return TickReport(failed=["*"])


def _pulse(config: Config, log: EventLog, mode: str) -> Pulse:
    """The heartbeat and activity the status page reads (:mod:`sitedeploy.web.pulse`)."""
    pulse = Pulse(config.state_dir, mode=mode, interval=config.agent.interval)
    log.listeners.append(pulse.listen)
    return pulse


def _agent(config: Config, log: EventLog, target: str | None, opener: Opener | None) -> Agent:
    metrics = Metrics(config.agent.metrics)
    if opener is None:
        return Agent(config, log, target=target, metrics=metrics)
    return Agent(config, log, target=target, metrics=metrics, opener=opener)


def _start_services(config: Config, agent: Agent, wakeup: Wakeup, log: EventLog) -> list[Callable[[], None]]:
    """Watcher, webhook and metrics servers; returns their stop functions."""
    stops: list[Callable[[], None]] = []
    waker = WakeFileWatcher(config.state_dir, wakeup)  # resume, unmark, mark-bad: tick now
    waker.start()
    stops.append(waker.stop)
    if config.agent.watch and not is_url(config.source.repo):
        watcher = RepoWatcher(config.resolve(config.source.repo), wakeup, log)
        watcher.start()
        stops.append(watcher.stop)
    if config.agent.webhook is not None:
        from .webhook import WebhookServer, load_secret

        hook = WebhookServer(
            config.agent.webhook,
            load_secret(config.agent.webhook, config.base_dir),
            lambda reason: wakeup.trigger(reason, full=False),
            log,
        )
        hook.start()
        log.event("webhook-listening", bind=config.agent.webhook.bind, port=hook.port)
        stops.append(hook.close)
    if agent.metrics.enabled:
        interval = config.agent.interval
        healthy = lambda: agent.clock() - agent.last_tick_at < 3 * interval + 60  # noqa: E731
        agent.metrics.serve(healthy, log, _status_pages(config, log))
        if agent.metrics.port:
            log.event("metrics-listening", port=agent.metrics.port)
        stops.append(agent.metrics.close)
    return stops


def _status_pages(config: Config, log: EventLog) -> StatusPages | None:
    """The status page on the metrics server (``/``), unless that is bound beyond localhost
    without a token: then the page answers 403, and this says so once."""
    from ..web.server import StatusPages

    metrics = config.agent.metrics
    if metrics is None or not metrics.bind:
        return None  # metrics as a textfile only: no server to put the page on
    pages = StatusPages(config, host=split_bind(metrics.bind)[0], agent_here=True)
    if pages.refused:
        log.warning("status-page-refused", reason=pages.refused)
    return pages
