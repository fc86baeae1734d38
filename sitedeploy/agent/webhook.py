"""The webhook receiver (``[agent.webhook]``): a push notification wakes the agent at once.

Accepted senders, signatures compared in constant time (``hmac.compare_digest``):

    GitHub   X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body, keyed by the secret>
             X-GitHub-Delivery: <id>               remembered: a second use gets 409
    GitLab   X-Gitlab-Token: <the secret>
             X-Gitlab-Event-UUID, Idempotency-Key  remembered: a second use gets 409
    generic  X-Sitedeploy-Timestamp: <unix seconds, within ±300 s of this machine's clock>
             <header, default X-Sitedeploy-Signature>: sha256=<hex HMAC-SHA256 of
                 "<timestamp>." followed by the body>   (the timestamp is signed with the body)
             X-Sitedeploy-Delivery: <id>           optional; remembered: a second use gets 409

A generic sender in shell::

    ts=$(date +%s); body='{"ref": "refs/heads/main"}'
    sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.* //')
    curl -sS -X POST --data "$body" -H "X-Sitedeploy-Timestamp: $ts" \\
         -H "X-Sitedeploy-Signature: sha256=$sig" -H "X-Sitedeploy-Delivery: $(uuidgen)" \\
         http://127.0.0.1:8787/

Answers: 202 accepted (the agent wakes); 401 a missing, wrong or stale signature (a generic one
without its timestamp, or outside the window); 409 a replay: one of its delivery ids, or the
very same signed message, was accepted in the last hour; 405 not a POST; 411 no Content-Length
(or chunked); 413 a body above ``max_body`` (not read); 503 every connection is being answered.
Only a 202 wakes the agent.

Replays: every accepted request is remembered (at most 10,000 for an hour, in memory) by its
delivery ids and by the digest of what its signature covers. A generic request cannot be
replayed at all (its timestamp leaves the window before it is forgotten); a GitHub or GitLab one,
whose senders sign no time, could be replayed after an hour or an agent restart — and then it
only wakes the agent, which still asks git what moved: at worst one idle tick.

Connections are bounded (:mod:`.httpserver`): 16 at once, 10 s each for the whole request.
The secret comes from ``secret_env`` or ``secret_file``, never from deploy.toml.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, cast

from ..config import WebhookConfig
from ..errors import ConfigError
from .httpserver import BoundedHTTPServer, linger, serve_in_thread
from .log import EventLog
from .metrics import split_bind

TIMESTAMP_HEADER = "X-Sitedeploy-Timestamp"
DELIVERY_HEADER = "X-Sitedeploy-Delivery"
WINDOW = 300.0
"""A generic request's timestamp may be this many seconds off this machine's clock."""
REPLAY_TTL = 3600.0
"""How long an accepted delivery is remembered; more than twice WINDOW, so a generic one never
outlives its memory."""
REMEMBERED = 10_000
MAX_CONNECTIONS = 16
DEADLINE = 10.0
"""Seconds a connection has for its whole request (line, headers, body) and the answer."""
REFUSALS_LOGGED = 20
"""Refused requests logged per minute; the rest are counted in the next line (a flood of bad
requests must not flood the log)."""

_DELIVERY_IDS = {
    "github": ("x-github-delivery",),
    "gitlab": ("x-gitlab-event-uuid", "idempotency-key"),
    "generic": (DELIVERY_HEADER.lower(),),
}
_UNIX_SECONDS = re.compile(r"\d{1,12}")


def load_secret(cfg: WebhookConfig, base: Path) -> bytes:
    if cfg.secret_env:
        value = os.environ.get(cfg.secret_env)
        if not value:
            raise ConfigError(f"agent.webhook.secret_env: environment variable {cfg.secret_env} is not set")
        return value.encode()
    if cfg.secret_file:
        path = (base / Path(cfg.secret_file).expanduser()).resolve()
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"agent.webhook.secret_file: cannot read {path} ({exc.strerror})") from None
        if secret:
            return secret
    raise ConfigError("agent.webhook: set secret_env or secret_file; an unauthenticated webhook is refused")


# --- deciding on one request (pure, apart from the replay memory) --------------------------


@dataclass(frozen=True)
class Verdict:
    code: int
    reason: str
    sender: str | None = None


def signed_message(sender: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """What the sender's signature covers: the body, and for the generic scheme its timestamp."""
    if sender == "generic":
        return headers.get(TIMESTAMP_HEADER.lower(), "").strip().encode() + b"." + body
    return body


def authentic(headers: Mapping[str, str], body: bytes, secret: bytes, generic: str) -> str | None:
    """Which sender's signature is valid (``github``, ``gitlab``, ``generic``), or None.

    ``headers`` have lower-case names. Freshness and replays are :func:`judge`'s business.
    """
    github = headers.get("x-hub-signature-256")
    if github is not None:
        return "github" if _same(github.strip(), _mac(secret, body)) else None
    gitlab = headers.get("x-gitlab-token")
    if gitlab is not None:
        return "gitlab" if hmac.compare_digest(gitlab.encode(), secret) else None
    signed = headers.get(generic.lower())
    if signed is not None and TIMESTAMP_HEADER.lower() in headers:
        value = signed.strip()
        value = value if value.startswith("sha256=") else "sha256=" + value
        return "generic" if _same(value, _mac(secret, signed_message("generic", headers, body))) else None
    return None


def judge(
    headers: Mapping[str, str],
    body: bytes,
    secret: bytes,
    generic: str,
    replays: ReplayGuard,
    now: float,
) -> Verdict:
    """The answer to one complete request; only a 202 may wake the agent."""
    sender = authentic(headers, body, secret, generic)
    if sender is None:
        if generic.lower() in headers and TIMESTAMP_HEADER.lower() not in headers:
            return Verdict(401, f"{generic} needs {TIMESTAMP_HEADER}, signed with the body")
        return Verdict(401, "bad or missing signature")
    if sender == "generic":
        stale = _stale(headers[TIMESTAMP_HEADER.lower()], now)
        if stale:
            return Verdict(401, stale, sender)
    if not replays.first_time(replay_keys(sender, headers, body), now):
        return Verdict(409, "replayed delivery (already accepted)", sender)
    return Verdict(202, "accepted", sender)


def replay_keys(sender: str, headers: Mapping[str, str], body: bytes) -> list[str]:
    """The digest of the signed message, and of each delivery id the sender gave."""
    found = [f"signed:{hashlib.sha256(signed_message(sender, headers, body)).hexdigest()}"]
    found += [
        f"{name}:{headers[name].strip()}" for name in _DELIVERY_IDS[sender] if headers.get(name, "").strip()
    ]
    return [hashlib.sha256(f"{sender}|{key}".encode()).hexdigest() for key in found]


class ReplayGuard:
    """Accepted deliveries of the last ``ttl`` seconds, at most ``size`` of them (oldest go first)."""

    def __init__(self, ttl: float = REPLAY_TTL, size: int = REMEMBERED) -> None:
        self.ttl, self.size = ttl, size
        self._until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, keys: Iterable[str], now: float) -> bool:
        """True, and remember ``keys``, unless one of them was seen and has not expired."""
        keys = list(keys)
        with self._lock:
            while self._until and next(iter(self._until.values())) <= now:
                self._until.popitem(last=False)
            if any(key in self._until for key in keys):
                return False
            for key in keys:
                self._until[key] = now + self.ttl
            while len(self._until) > self.size:
                self._until.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._until)


def _mac(secret: bytes, message: bytes) -> str:
    return "sha256=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _stale(stamp: str, now: float) -> str | None:
    if not _UNIX_SECONDS.fullmatch(stamp.strip()):
        return f"{TIMESTAMP_HEADER} must be unix seconds"
    if abs(now - int(stamp)) > WINDOW:
        return f"{TIMESTAMP_HEADER} is more than {WINDOW:.0f} s off this machine's clock (replay or skew)"
    return None


def body_length(headers: Mapping[str, str], max_body: int) -> int | Verdict:
    """The body's declared length, or the refusal (no length, chunked, too large)."""
    if "transfer-encoding" in headers:
        return Verdict(411, "send the body with a Content-Length, not chunked")
    text = headers.get("content-length", "").strip()
    if not text.isdigit() or not text.isascii():
        return Verdict(411, "Content-Length required")
    if len(text) > 15 or int(text) > max_body:
        return Verdict(413, f"body too large (max_body = {max_body} bytes)")
    return int(text)


# --- the server ------------------------------------------------------------------------------


class WebhookServer:
    def __init__(
        self, cfg: WebhookConfig, secret: bytes, on_push: Callable[[str], None], log: EventLog
    ) -> None:
        self.cfg = cfg
        self.replays = ReplayGuard()
        handler = _handler(cfg, secret, on_push, log, self.replays)
        self._server = BoundedHTTPServer(
            split_bind(cfg.bind),
            handler,
            name="webhook",
            max_connections=MAX_CONNECTIONS,
            deadline=DEADLINE,
            log=log,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def server(self) -> BoundedHTTPServer:
        return self._server

    def start(self) -> None:
        serve_in_thread(self._server)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _RefusalLog:
    """At most REFUSALS_LOGGED lines a minute; the number left out goes into the next one."""

    def __init__(self, log: EventLog) -> None:
        self.log, self._lock = log, threading.Lock()
        self._minute, self._lines, self._skipped = 0, 0, 0

    def refused(self, verdict: Verdict, peer: str) -> None:
        with self._lock:
            minute = int(time.monotonic() // 60)
            if minute != self._minute:
                self._minute, self._lines = minute, 0
            if self._lines >= REFUSALS_LOGGED:
                self._skipped += 1
                return
            self._lines += 1
            skipped, self._skipped = self._skipped, 0
        self.log.warning(
            "webhook-refused", status=verdict.code, reason=verdict.reason, peer=peer, skipped=skipped or None
        )


def _handler(
    cfg: WebhookConfig,
    secret: bytes,
    on_push: Callable[[str], None],
    log: EventLog,
    replays: ReplayGuard,
) -> type[BaseHTTPRequestHandler]:
    refusals = _RefusalLog(log)

    class Handler(BaseHTTPRequestHandler):
        timeout = DEADLINE  # per socket operation; the server also cuts the whole connection
        unread_body = False

        def do_POST(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            length = body_length(headers, cfg.max_body)
            if isinstance(length, Verdict):
                self.close_connection = self.unread_body = True  # no second request on this one
                return self._answer(length)
            body = self.rfile.read(length)
            if len(body) < length:
                self.close_connection = True  # the client left, or its time ran out
                return
            cast(BoundedHTTPServer, self.server).request_read(self.request)
            verdict = judge(headers, body, secret, cfg.header, replays, time.time())
            if verdict.code == 202:
                log.event("webhook", sender=verdict.sender, peer=self.client_address[0])
                on_push(f"webhook:{verdict.sender}")
            return self._answer(verdict)

        def not_allowed(self) -> None:
            self.close_connection = self.unread_body = True
            self._answer(Verdict(405, "POST only"))

        do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = not_allowed

        def _answer(self, verdict: Verdict) -> None:
            if verdict.code != 202:
                refusals.refused(verdict, str(self.client_address[0]))
            body = verdict.reason.encode() + b"\n"
            self.send_response(verdict.code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            if verdict.code == 405:
                self.send_header("Allow", "POST")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def finish(self) -> None:
            super().finish()
            if self.unread_body:
                linger(self.connection)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are logged as events, without their headers

    return Handler
