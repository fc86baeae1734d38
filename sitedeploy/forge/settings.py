"""``[forge]``: where deploy results are posted (the posting: :mod:`sitedeploy.forge`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config.ranges import greater_than, http_url
from ..config.schema import required, setting

DEFAULT_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}


@dataclass(frozen=True, kw_only=True)
class ForgeConfig:
    type: Literal["github", "gitlab"] = required()
    """The forge's API: ``github`` (GitHub, GitHub Enterprise) or ``gitlab`` (GitLab, self-hosted)."""
    repository: str = required()
    """``owner/name`` on GitHub; the project's path (``group/sub/name``) or numeric id on GitLab."""
    token_env: str = required()
    """Environment variable holding the API token (never written in deploy.toml, never logged)."""
    api_url: str | None = setting(None, http_url)
    """The API root; unset: ``https://api.github.com`` or ``https://gitlab.com/api/v4``. GitHub
    Enterprise: ``https://HOST/api/v3``; self-hosted GitLab: ``https://HOST/api/v4``."""
    context: str = "sitedeploy"
    """The commit status's name (``sitedeploy/<target>``)."""
    comments: bool = True
    """Comment on pull/merge requests with their preview's URL and pages changed (one comment,
    edited in place)."""
    timeout: float = setting(10.0, greater_than(0))
    """Seconds one API request may take."""

    @property
    def api_root(self) -> str:
        return (self.api_url or DEFAULT_API[self.type]).rstrip("/")
