"""The check after the switch: the live site answers, and it serves the commit just deployed.

Fetches each ``check_urls`` entry (any 2xx passes) and the deploy marker
(``/.well-known/sitedeploy.json``, written into every release by the build), whose ``commit``
must be the one deployed. Caches and CDNs may lag, so the check is tried a few times; the
marker request carries a cache-busting query. A failure returns the reason, and the agent
rolls back.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urljoin

from ..build.release_tree import MARKER
from ..config import AgentConfig, TargetConfig
from .log import scrub


@dataclass(frozen=True)
class CheckSettings:
    attempts: int = 3
    delay: float = 2.0
    timeout: float = 10.0

    @classmethod
    def of(cls, agent: AgentConfig) -> CheckSettings:
        return cls(max(1, agent.check_attempts), agent.check_delay, agent.check_timeout)


def marker_url(cfg: TargetConfig) -> str | None:
    if cfg.marker_url:
        return cfg.marker_url
    return urljoin(cfg.check_urls[0], "/" + MARKER) if cfg.check_urls else None


def check_live(cfg: TargetConfig, commit: str, settings: CheckSettings) -> str | None:
    """None when every URL answers and the marker names ``commit``; else why not."""
    problem: str | None = None
    for attempt in range(settings.attempts):
        if attempt:
            time.sleep(settings.delay)
        problem = _check_once(cfg, commit, settings.timeout)
        if problem is None:
            return None
    return problem


def _check_once(cfg: TargetConfig, commit: str, timeout: float) -> str | None:
    for url in cfg.check_urls:
        status, _ = _get(url, timeout)
        if not 200 <= status < 300:
            return f"{scrub(url)} answered {_describe(status)}"
    marker = marker_url(cfg)
    if marker is None:
        return None
    status, body = _get(f"{marker}?sitedeploy={commit[:12]}", timeout)
    if status != 200:
        return f"deploy marker {scrub(marker)} answered {_describe(status)}"
    try:
        live = json.loads(body).get("commit")
    except (ValueError, AttributeError):
        return f"deploy marker {scrub(marker)} is not JSON"
    if live != commit:
        return f"deploy marker {scrub(marker)} names {str(live)[:12]}, not the deployed {commit[:12]}"
    return None


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, headers={"Cache-Control": "no-cache", "User-Agent": "sitedeploy-agent"}
    )
    if not url.lower().startswith(("http://", "https://")):
        return 0, b""  # never file:// or a custom scheme, whatever the config says
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310: scheme checked
            return int(response.status), bytes(response.read(1024 * 1024))
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (urllib.error.URLError, OSError, ValueError):
        return 0, b""


def _describe(status: int) -> str:
    return f"HTTP {status}" if status else "no connection"
