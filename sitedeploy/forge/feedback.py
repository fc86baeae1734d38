"""What the agent posts to the forge, and the promise that posting never fails a deploy.

    deploying a commit      status "pending"  (sitedeploy/<target>)
    deployed / confirmed    status "success", "deployed as <release>", the target's URL
    failed / rolled back    status "failure", the one-line reason
    preview published       status on its commit (sitedeploy/<target>/preview, the preview's URL)
                            and, for a pull/merge request, one comment, found again by its
                            hidden marker and edited in place on every later push

Posts run on one background thread from a small queue, so a slow forge never slows a deploy;
a newer post for the same commit (or request) replaces one still waiting. A failed post is
logged once (``forge-failed``, until a post of that kind succeeds again), counted
(``sitedeploy_forge_failures_total{kind}``), and retried with exponential backoff when the
failure may pass (network, 5xx, rate limit); a 4xx (a wrong token or repository) is not.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .client import ForgeClient, PostFailed
from .pages import MARKER, PageChanges, comment

if TYPE_CHECKING:
    from ..agent.log import EventLog
    from ..config import Config

ATTEMPTS = 5
BACKOFF = 2.0
"""Seconds before the first retry; doubled each time, at most MAX_BACKOFF."""
MAX_BACKOFF = 300.0
QUEUED = 100
"""Posts waiting at most; beyond it the oldest is dropped (and counted)."""
_REQUEST = re.compile(r"(?:pull|merge-requests)/(\d+)")


@dataclass
class _Job:
    kind: str
    post: Callable[[], None]
    due: float
    attempts: int = 0


class Feedback:
    """Posts deploy results; every method returns at once and never raises."""

    def __init__(
        self,
        config: Config,
        client: ForgeClient,
        log: EventLog,
        counted: Callable[[str], None] = lambda kind: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert config.forge is not None
        self.config, self.cfg, self.client, self.log = config, config.forge, client, log
        self.counted, self.clock = counted, clock
        self._jobs: dict[str, _Job] = {}
        self._failing: set[str] = set()
        self._busy = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    # --- what the agent says ---------------------------------------------------------------

    def pending(self, target: str, sha: str) -> None:
        self._status(target, sha, "pending", f"deploying {sha[:8]}", None)

    def success(self, target: str, sha: str, description: str) -> None:
        self._status(target, sha, "success", description, self._url(target))

    def failure(self, target: str, sha: str, reason: str) -> None:
        self._status(target, sha, "failure", reason, self._url(target))

    def preview(
        self, target: str, ref: str, sha: str, url: str | None, pages: PageChanges | None, ok: bool
    ) -> None:
        what = "preview published" if ok else "preview failed"
        name = f"{self.cfg.context}/{target}/preview"
        self._queue(f"status:{name}:{sha}", "status", lambda: self._post_status(sha, ok, what, url, name))
        request = _REQUEST.fullmatch(ref)
        if ok and request and self.cfg.comments:
            number = int(request.group(1))
            body = comment(target, ref, sha, url, pages)
            self._queue(f"comment:{target}:{number}", "comment", lambda: self._upsert(target, number, body))

    def _status(self, target: str, sha: str, state: str, text: str, url: str | None) -> None:
        name = f"{self.cfg.context}/{target}"
        post = lambda: self.client.set_status(sha, state, _one_line(text), url, name)  # noqa: E731
        self._queue(f"status:{name}:{sha}", "status", post)

    def _post_status(self, sha: str, ok: bool, text: str, url: str | None, name: str) -> None:
        self.client.set_status(sha, "success" if ok else "failure", text, url, name)

    def _upsert(self, target: str, number: int, body: str) -> None:
        found = self.client.find_comment(number, MARKER.format(target=target))
        if found is None:
            self.client.create_comment(number, body)
        else:
            self.client.update_comment(number, found, body)

    def _url(self, target: str) -> str | None:
        from ..web.gather import public_url

        cfg = self.config.targets.get(target)
        return public_url(cfg) if cfg else None

    # --- the queue and its thread -----------------------------------------------------------

    def _queue(self, key: str, kind: str, post: Callable[[], None]) -> None:
        with self._cond:
            self._jobs.pop(key, None)  # a newer post replaces one still waiting (and goes last)
            self._jobs[key] = _Job(kind, post, self.clock())
            while len(self._jobs) > QUEUED:
                dropped = self._jobs.pop(next(iter(self._jobs)))
                self.counted(dropped.kind)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="forge", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                key, job = self._next()
                self._busy = True
            try:
                self._run(key, job)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _next(self) -> tuple[str, _Job]:
        while True:
            now = self.clock()
            due = [(k, j) for k, j in self._jobs.items() if j.due <= now]
            if due:
                key, job = due[0]
                del self._jobs[key]
                return key, job
            wait = min((j.due for j in self._jobs.values()), default=now + 3600) - now
            self._cond.wait(timeout=max(wait, 0.01))

    def _run(self, key: str, job: _Job) -> None:
        try:
            job.post()
        except PostFailed as exc:
            self._failed(key, job, exc)
        else:
            if job.kind in self._failing:
                self._failing -= {job.kind}  # (not .discard: the code rules reserve the name for targets)
                self.log.event("forge-recovered", kind=job.kind)

    def _failed(self, key: str, job: _Job, exc: PostFailed) -> None:
        self.counted(job.kind)
        job.attempts += 1
        again = exc.retry and job.attempts < ATTEMPTS
        if job.kind not in self._failing:
            self._failing.add(job.kind)
            self.log.warning("forge-failed", kind=job.kind, error=str(exc), retry=again)
        if again:
            blocked = self.client.blocked_until - time.time()  # the forge's own reset, wall clock
            job.due = self.clock() + max(min(BACKOFF * 2 ** (job.attempts - 1), MAX_BACKOFF), blocked)
            with self._cond:
                self._jobs.setdefault(key, job)  # unless a newer post for it came meanwhile

    def flush(self, timeout: float) -> bool:
        """Wait until every post is done, retries included (``--once`` before it exits); True if so."""
        until = time.monotonic() + timeout
        with self._cond:
            while self._busy or self._jobs:
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.1))
        return True


class NoFeedback:
    """No ``[forge]``: the agent's calls do nothing."""

    def pending(self, target: str, sha: str) -> None: ...
    def success(self, target: str, sha: str, description: str) -> None: ...
    def failure(self, target: str, sha: str, reason: str) -> None: ...
    def preview(
        self, target: str, ref: str, sha: str, url: str | None, pages: PageChanges | None, ok: bool
    ) -> None: ...
    def flush(self, timeout: float) -> bool:
        return True


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 140 else line[:139] + "…"


def feedback_for(
    config: Config, log: EventLog, counted: Callable[[str], None] = lambda kind: None
) -> Feedback | NoFeedback:
    """The agent's poster (a silent one without ``[forge]``); the token must be in the environment."""
    cfg = config.forge
    if cfg is None:
        return NoFeedback()
    token = os.environ.get(cfg.token_env, "")
    if not token:
        raise ConfigError(f"forge.token_env: environment variable {cfg.token_env} is not set")
    return Feedback(config, ForgeClient(cfg, token), log, counted)
