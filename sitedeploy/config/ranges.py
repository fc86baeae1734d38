"""Range and format checks for config values, used as ``setting(default, check, ...)``.

Each check takes a value that already has the right type and returns None when it is fine,
or what is wrong with it, phrased to follow the key path: ``agent.interval: must be a finite
number greater than 0, got nan``. TOML can spell ``nan`` and ``inf``, so every float check
refuses them first.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], "str | None"]


def _number(value: float) -> str | None:
    return None if math.isfinite(value) else f"must be a finite number, got {value!r}"


def greater_than(low: float) -> Check:
    def check(value: float) -> str | None:
        return _number(value) or (None if value > low else f"must be greater than {low:g}, got {value!r}")

    return check


def at_least(low: float) -> Check:
    def check(value: float) -> str | None:
        return _number(value) or (None if value >= low else f"must be at least {low:g}, got {value!r}")

    return check


def fraction(value: float) -> str | None:
    """A share of something: 0 to 1 (a jitter of 1 could make an interval of 0)."""
    return _number(value) or (
        None if 0 <= value < 1 else f"must be a fraction from 0 to below 1, got {value!r}"
    )


def permission_mode(allowed: int) -> Check:
    """A file or folder mode with no bits outside ``allowed`` (setuid never: content is untrusted)."""

    def check(value: int) -> str | None:
        if value >= 0 and not value & ~allowed:
            return None
        return f"must be a permission mode such as 0o644 (at most {allowed:#o}), got {value:#o}"

    return check


def http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname:
        return None
    return f"must be an http:// or https:// URL with a host, got {value!r}"


def http_urls(values: tuple[str, ...]) -> str | None:
    problems = [p for p in map(http_url, values) if p]
    return problems[0] if problems else None


def bind_address(value: str | None) -> str | None:
    """``host:port``. ``:9108`` is refused: it would mean every interface, which should be said."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if sep and host and port.isdigit() and int(port) < 65536:  # 0: any free port
        return None
    hint = f" (write '0.0.0.0:{port}' for every interface or '127.0.0.1:{port}' for this machine)"
    return f"must be 'host:port', got {value!r}" + (hint if not host and port.isdigit() else "")
