"""Prometheus metrics and a health endpoint (``[agent.metrics]``).

``bind = "127.0.0.1:9108"`` serves ``/metrics`` and ``/healthz`` (200 while ticks keep
happening, 503 when the loop has stalled); ``textfile = "/var/lib/node_exporter/sitedeploy.prom"``
writes the same metrics for node_exporter's textfile collector, for ``--once`` under cron.
prometheus-client is imported only when one of them is configured. The server is bounded like
the webhook's (:mod:`.httpserver`): 8 connections at once, 10 s each, idle ones evicted for new
ones, so a flood of idle connections cannot keep ``/healthz`` from answering.

    sitedeploy_live_commit_info{target,commit}            the commit the agent last saw live
    sitedeploy_last_success_timestamp_seconds{target}     last deploy or confirmation
    sitedeploy_deploy_duration_seconds{target}            histogram: build to checked
    sitedeploy_failures_total{target}                     failed attempts
    sitedeploy_drift_files{target}                        files differing at the last check
    sitedeploy_last_tick_timestamp_seconds
    sitedeploy_forge_failures_total{kind}                 failed posts to GitHub/GitLab ([forge])

The same server serves the status page (``/``, ``/status.json``, badges: :mod:`sitedeploy.web`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from ..web.server import StatusPages
    from .httpserver import BoundedHTTPServer
    from .log import EventLog

from ..config import MetricsConfig

MAX_CONNECTIONS = 8
"""A scraper and a health check or two; more at once is a flood."""
DEADLINE = 10.0
"""Seconds a connection has for its request and the answer."""


class Metrics:
    def __init__(self, cfg: MetricsConfig | None) -> None:
        self.cfg = cfg
        self.enabled = cfg is not None and bool(cfg.bind or cfg.textfile)
        self._server: BoundedHTTPServer | None = None
        if self.enabled:
            self._create()

    def _create(self) -> None:
        import prometheus_client as prom

        self._prom = prom
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.live = prom.Info("sitedeploy_live_commit", "Commit live on the target", ["target"], registry=r)
        self.success = prom.Gauge(
            "sitedeploy_last_success_timestamp_seconds", "Last deploy or confirmation", ["target"], registry=r
        )
        self.duration = prom.Histogram(
            "sitedeploy_deploy_duration_seconds",
            "Deploy duration, build to checked",
            ["target"],
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.failures = prom.Counter("sitedeploy_failures", "Failed attempts", ["target"], registry=r)
        self.drift = prom.Gauge(
            "sitedeploy_drift_files", "Files differing at the last check", ["target"], registry=r
        )
        self.tick_at = prom.Gauge("sitedeploy_last_tick_timestamp_seconds", "Last tick", registry=r)
        self.forge = prom.Counter(
            "sitedeploy_forge_failures", "Failed posts to the forge", ["kind"], registry=r
        )

    def set_live(self, target: str, commit: str) -> None:
        if self.enabled:
            self.live.labels(target).info({"commit": commit})
            self.success.labels(target).set(time.time())

    def known_live(self, target: str, commit: str) -> None:
        """What the agent remembers as live (a ``--once`` run that visited nothing)."""
        if self.enabled:
            self.live.labels(target).info({"commit": commit})

    def deployed(self, target: str, commit: str, seconds: float) -> None:
        if self.enabled:
            self.set_live(target, commit)
            self.duration.labels(target).observe(seconds)

    def failed(self, target: str) -> None:
        if self.enabled:
            self.failures.labels(target).inc()

    def drifted(self, target: str, files: int) -> None:
        if self.enabled:
            self.drift.labels(target).set(files)

    def forge_failed(self, kind: str) -> None:
        """A post to the forge failed (``status`` or ``comment``); the deploy did not."""
        if self.enabled:
            self.forge.labels(kind).inc()

    def ticked(self) -> None:
        if self.enabled:
            self.tick_at.set(time.time())

    def exposition(self) -> bytes:
        return bytes(self._prom.generate_latest(self.registry)) if self.enabled else b""

    def write_textfile(self) -> None:
        if self.enabled and self.cfg and self.cfg.textfile:
            self._prom.write_to_textfile(self.cfg.textfile, self.registry)

    def serve(
        self, healthy: Callable[[], bool], log: EventLog | None = None, pages: StatusPages | None = None
    ) -> None:
        """``pages``: the status page's routes (:mod:`sitedeploy.web.server`), served here too."""
        if not (self.enabled and self.cfg and self.cfg.bind):
            return
        from .httpserver import BoundedHTTPServer, serve_in_thread

        self._server = BoundedHTTPServer(
            split_bind(self.cfg.bind),
            _handler(self, healthy, pages),
            name="metrics",
            max_connections=MAX_CONNECTIONS,
            deadline=DEADLINE,
            log=log,
        )
        serve_in_thread(self._server)

    @property
    def server(self) -> BoundedHTTPServer | None:
        return self._server

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server else None

    def close(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def split_bind(bind: str) -> tuple[str, int]:
    """``127.0.0.1:9108`` / ``[::1]:9108`` / ``:9108`` → (host, port)."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)  # nosec B104: the operator wrote ":PORT"


def _handler(
    metrics: Metrics, healthy: Callable[[], bool], pages: StatusPages | None = None
) -> type[BaseHTTPRequestHandler]:
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        timeout = DEADLINE  # per socket operation; the server also cuts the whole connection

        def do_GET(self) -> None:
            cast("BoundedHTTPServer", self.server).request_read(self.request)  # a GET has no body
            if self.path == "/metrics":
                self._reply(200, metrics.exposition(), metrics._prom.CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = healthy()
                self._reply(200 if ok else 503, b"ok\n" if ok else b"stalled\n", "text/plain")
            else:
                self._page()

        def _page(self) -> None:
            reply = pages.answer(self.path, self.headers.get("Authorization")) if pages else None
            if reply is None:
                self._reply(404, b"not found\n", "text/plain")
                return
            from ..web.server import send

            send(self, reply)

        def _reply(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the agent logs events, not every scrape

    return Handler
