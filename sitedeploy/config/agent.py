"""The ``[agent]`` table: how ``sitedeploy agent`` polls, checks, notifies and reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .ranges import at_least, bind_address, fraction, greater_than, http_url
from .schema import required, setting


@dataclass(frozen=True, kw_only=True)
class WebhookConfig:
    bind: str = setting("127.0.0.1:8787", bind_address)
    """Where the webhook receiver listens; put TLS (a reverse proxy) in front of it."""
    secret_env: str | None = None
    """Environment variable holding the shared secret that signs deliveries."""
    secret_file: str | None = None
    """Or: a file holding it (e.g. ``/etc/sitedeploy/webhook.secret``)."""
    max_body: int = setting(1024 * 1024, greater_than(0))
    """Larger bodies are answered 413 without being read."""
    header: str = "X-Sitedeploy-Signature"
    """The generic HMAC header (``sha256=<hex>`` of the body), besides GitHub's and GitLab's."""


@dataclass(frozen=True, kw_only=True)
class NotifyConfig:
    url: str = required(http_url)
    """Where notifications are POSTed."""
    format: Literal["json", "slack"] = "json"
    """``json``: ``{"event", "target", "commit", "message", "at"}``; ``slack``: ``{"text"}``
    (Slack, Mattermost, Rocket.Chat)."""
    secret_env: str | None = None
    """Env var holding the HMAC key for the ``X-Sitedeploy-Signature`` header."""


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    bind: str | None = setting(None, bind_address)
    """Serve ``/metrics`` (Prometheus) and ``/healthz`` here; unset: no server."""
    textfile: str | None = None
    """Also write the metrics to this file, for node_exporter's textfile collector (``--once`` under cron)."""


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    interval: float = setting(60.0, greater_than(0))
    """Seconds between polls of the remote (each tick is one ``git ls-remote`` when idle)."""
    jitter: float = setting(0.1, fraction)
    """Spread of ``interval``, as a fraction, so agents polling one remote do not align."""
    watch: bool = True
    """Watch a content repo on this machine and deploy a push within seconds."""
    drift_every: int = setting(10, at_least(0))
    """Check every target for drift every N ticks (0 = never)."""
    repeat_failure_after: float = setting(3600.0, at_least(0))
    """Seconds before a persisting failure or drift is notified again."""
    link_check: bool = True
    """Gate: refuse a release with an internal href/src that resolves to no file."""
    check_attempts: int = setting(3, greater_than(0))
    """Post-switch check: tries before rolling back (caches and CDNs may lag)."""
    check_delay: float = setting(2.0, at_least(0))
    """Seconds between post-switch check attempts."""
    check_timeout: float = setting(10.0, greater_than(0))
    """Seconds each post-switch check request may take."""
    webhook: WebhookConfig | None = None
    notify: tuple[NotifyConfig, ...] = ()
    metrics: MetricsConfig | None = None
