"""The REST calls sitedeploy makes to GitHub and GitLab, and nothing more.

    GitHub (api_url https://api.github.com, or https://HOST/api/v3 for Enterprise)
      POST  /repos/{owner}/{repo}/statuses/{sha}            commit status
      GET   /repos/{owner}/{repo}/issues/{n}/comments       find our comment (paged)
      POST  /repos/{owner}/{repo}/issues/{n}/comments       create it
      PATCH /repos/{owner}/{repo}/issues/comments/{id}      edit it
    GitLab (api_url https://gitlab.com/api/v4, or https://HOST/api/v4)
      POST  /projects/{id}/statuses/{sha}                   commit status
      GET   /projects/{id}/merge_requests/{iid}/notes       find our note (paged)
      POST  /projects/{id}/merge_requests/{iid}/notes       create it
      PUT   /projects/{id}/merge_requests/{iid}/notes/{note_id}   edit it

Bounded: each request has ``[forge] timeout`` seconds and a body of at most 1 MiB is read; a
rate-limit answer (429, or 403 with ``X-RateLimit-Remaining: 0``) or any answer saying the
quota is spent blocks further calls until ``Retry-After`` / ``X-RateLimit-Reset``
(``RateLimit-Reset`` on GitLab) instead of hammering. Redirects are not followed (a token must
not travel to another host). The token goes in a header only, and no message here quotes it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from .settings import ForgeConfig

MAX_BODY = 1024 * 1024
PAGES = 10
"""Comment pages of 100 read while looking for our own; a longer thread gets a new comment."""
MAX_WAIT = 3600.0
"""A rate-limit reset further away than this is taken as an hour (a skewed clock)."""


class PostFailed(Exception):
    """One call failed; ``retry``: worth trying again later (network, 5xx, rate limit)."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is raised as an HTTPError: the token stays with the configured host


class ForgeClient:
    def __init__(self, cfg: ForgeConfig, token: str, clock: Callable[[], float] = time.time) -> None:
        self.cfg, self._token, self.clock = cfg, token, clock
        self.blocked_until = 0.0
        self._opener = urllib.request.build_opener(_NoRedirect)
        repo = urllib.parse.quote(cfg.repository, safe="" if cfg.type == "gitlab" else "/")
        self._base = f"/repos/{repo}" if cfg.type == "github" else f"/projects/{repo}"

    # --- the four operations ---------------------------------------------------------------

    def set_status(self, sha: str, state: str, description: str, url: str | None, name: str) -> None:
        """``state``: pending, success or failure (mapped to GitLab's words)."""
        body: dict[str, Any] = {"state": state, "description": description[:140]}
        if self.cfg.type == "github":
            body["context"] = name
        else:
            body |= {"name": name, "state": {"failure": "failed"}.get(state, state)}
        if url:
            body["target_url"] = url
        self.call("POST", f"{self._base}/statuses/{sha}", body)

    def find_comment(self, number: int, marker: str) -> int | None:
        for page in range(1, PAGES + 1):
            found = self.call("GET", f"{self._thread(number)}?per_page=100&page={page}")
            items = found if isinstance(found, list) else []
            for item in items:
                if isinstance(item, dict) and marker in str(item.get("body", "")):
                    return int(item["id"])
            if len(items) < 100:
                return None
        return None

    def create_comment(self, number: int, body: str) -> None:
        self.call("POST", self._thread(number), {"body": body})

    def update_comment(self, number: int, comment_id: int, body: str) -> None:
        if self.cfg.type == "github":
            self.call("PATCH", f"{self._base}/issues/comments/{comment_id}", {"body": body})
        else:
            self.call("PUT", f"{self._thread(number)}/{comment_id}", {"body": body})

    def _thread(self, number: int) -> str:
        if self.cfg.type == "github":
            return f"{self._base}/issues/{number}/comments"
        return f"{self._base}/merge_requests/{number}/notes"

    # --- one bounded request ----------------------------------------------------------------

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        what = f"{method} {path.split('?')[0]}"
        if self.clock() < self.blocked_until:
            raise PostFailed(f"{what}: rate limited until {self.blocked_until:.0f}", retry=True)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.cfg.api_root + path, data, self._headers(), method=method)
        try:
            with self._opener.open(request, timeout=self.cfg.timeout) as response:  # nosec B310: http(s) only
                self._note_quota(response.headers, response.status)
                raw = response.read(MAX_BODY)
        except urllib.error.HTTPError as exc:
            exc.close()  # its body is not needed, and an unclosed one leaks the socket
            self._note_quota(exc.headers, exc.code)
            retry = exc.code >= 500 or exc.code == 429 or self.clock() < self.blocked_until
            raise PostFailed(f"{what}: HTTP {exc.code} {exc.reason}", retry=retry) from None
        except (OSError, ValueError) as exc:  # refused, timed out, TLS: the forge may come back
            raise PostFailed(f"{what}: {type(exc).__name__}: {exc}", retry=True) from None
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise PostFailed(f"{what}: the answer is not JSON", retry=False) from None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "sitedeploy"}
        if self.cfg.type == "github":
            headers |= {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
            headers["Authorization"] = f"Bearer {self._token}"
        else:
            headers["PRIVATE-TOKEN"] = self._token
        return headers

    def _note_quota(self, headers: Any, status: int) -> None:
        """Stop calling until the quota resets when the forge says it is spent."""
        if headers is None:
            return
        remaining = headers.get("X-RateLimit-Remaining") or headers.get("RateLimit-Remaining")
        spent = status == 429 or (remaining is not None and remaining.strip() == "0")
        if not spent:
            return
        now = self.clock()
        wait = _number(headers.get("Retry-After"))
        reset = _number(headers.get("X-RateLimit-Reset") or headers.get("RateLimit-Reset"))
        until = now + wait if wait is not None else reset if reset is not None else now + 60
        self.blocked_until = min(max(until, now), now + MAX_WAIT)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
