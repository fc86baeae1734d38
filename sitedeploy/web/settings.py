"""``[status]``: the status page's machine-local settings (the page itself: :mod:`sitedeploy.web`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.ranges import greater_than
from ..config.schema import setting


@dataclass(frozen=True, kw_only=True)
class StatusConfig:
    token_env: str | None = None
    """Environment variable holding the token the page asks for (HTTP Basic password, or
    ``Authorization: Bearer``); required to serve the page on an address beyond localhost."""
    badges: bool = False
    """Serve ``/badge/<target>.svg`` (in sync / behind / failed) to anyone who can reach the
    server, without the token: for a README. Off: 404."""
    refresh: float = setting(30.0, greater_than(0))
    """Seconds between the page's refreshes in the browser (script, or a meta refresh without it)."""
    cache: float = setting(5.0, greater_than(0))
    """Seconds one gathered report is reused: many readers cost the targets one look."""
