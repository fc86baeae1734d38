"""Serve the status page: ``/``, ``/status.json``, ``/static/…`` and ``/badge/<target>.svg``.

The routes run on the agent's bounded HTTP server (:mod:`sitedeploy.agent.httpserver`, next to
``/metrics`` and ``/healthz``) and on the one ``sitedeploy status --serve`` starts; both give
each connection 10 s in all, hold a handful of connections at once and evict idle ones.

Access: on a loopback address anyone on this machine may read the page. Beyond it the page is
served only when ``[status] token_env`` names a token, which every request then carries as
the password of HTTP Basic authentication (any user name; a browser asks once) or as
``Authorization: Bearer <token>``; without one the page answers 403 and says why (``/metrics``
and ``/healthz`` stay as they were). Badges, when ``[status] badges = true``, need no token:
they are meant for a README. The token is compared in constant time and never written to the
page, the JSON or the log.

One report is gathered at a time and reused for ``[status] cache`` seconds, so a crowd of
readers, or a flood of badge requests, costs the targets one look per period.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from ..config import Config
from ..errors import ConfigError, SitedeployError
from . import render
from .model import StatusReport, to_json

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_CONNECTIONS = 8
"""A few readers and a badge or two at once; more is a flood (idle ones are evicted)."""
DEADLINE = 10.0
"""Seconds a connection has for its request and the answer."""
_BADGE = re.compile(r"/badge/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\.svg")


@dataclass(frozen=True)
class Reply:
    code: int
    body: bytes
    kind: str
    headers: dict[str, str] = field(default_factory=dict)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_token(config: Config) -> str | None:
    """The page's token from ``[status] token_env``, or None when none is configured."""
    name = config.status.token_env
    if not name:
        return None
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"status.token_env: environment variable {name} is not set")
    return value


class StatusPages:
    """The page's routes over one cached report; ``answer`` returns None for paths not its own."""

    def __init__(
        self,
        config: Config,
        *,
        host: str,
        agent_here: bool = False,
        gather: Callable[[], StatusReport] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.clock = config, clock
        self.token = load_token(config)
        self.refused = None if self.token or is_loopback(host) else (
            f"the status page is not served on {host} without a token: set [status] token_env "
            "(or bind to 127.0.0.1 behind a reverse proxy that authenticates)"
        )  # fmt: skip
        if gather is None:
            from .gather import gather as gather_report

            self._gather: Callable[[], StatusReport] = lambda: gather_report(config, agent_here=agent_here)
        else:
            self._gather = gather
        self._lock = threading.Lock()
        self._report: tuple[float, StatusReport] | None = None

    def report(self) -> StatusReport:
        with self._lock:  # one gathering at a time; the others wait for it and share it
            now = self.clock()
            if self._report is None or now - self._report[0] >= self.config.status.cache:
                self._report = (now, self._gather())
            return self._report[1]

    def answer(self, path: str, authorization: str | None) -> Reply | None:
        """``authorization``: the request's Authorization header, if any."""
        path = path.split("?", 1)[0]
        badge = _BADGE.fullmatch(path)
        if badge:
            return self._badge(badge.group(1)) if self.config.status.badges else _text(404, "badges are off")
        if path not in ("/", "/index.html", "/status.json") and not path.startswith("/static/"):
            return None
        if self.refused:
            return _text(403, self.refused)
        if not self._authorised(authorization or ""):
            return _text(401, "the status page needs its token", {"WWW-Authenticate": _CHALLENGE})
        try:
            return self._route(path)
        except SitedeployError as exc:
            return _text(503, f"cannot gather the status: {exc.message}")

    def _route(self, path: str) -> Reply | None:
        if path.startswith("/static/"):
            body = render.static(path.removeprefix("/static/"))
            name = path.rsplit("/", 1)[-1]
            return Reply(200, body, render.STATIC[name]) if body is not None else _text(404, "not found")
        report = self.report()
        if path == "/status.json":
            return Reply(200, to_json(report), "application/json")
        return Reply(200, render.page(report, refresh=self.config.status.refresh), "text/html; charset=utf-8")

    def _badge(self, target: str) -> Reply:
        if target not in self.config.targets:
            return _text(404, "no such target")
        try:
            view = self.report().target(target)
        except SitedeployError:
            view = None
        return Reply(200, render.badge(target, view.state if view else "unknown"), "image/svg+xml")

    def _authorised(self, authorization: str) -> bool:
        if self.token is None:
            return True
        given = _credential(authorization)
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


_CHALLENGE = 'Basic realm="sitedeploy status", charset="UTF-8"'


def _credential(header: str) -> str | None:
    """The token in ``Bearer <token>`` or in Basic's password (the user name is ignored)."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    """Write ``reply`` with the page's security headers (no body for a HEAD)."""
    handler.send_response(reply.code)
    for name, value in {**SECURITY_HEADERS, **reply.headers}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", reply.kind)
    handler.send_header("Content-Length", str(len(reply.body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(reply.body)


def handler_for(pages: StatusPages) -> type[BaseHTTPRequestHandler]:
    """The request handler of ``sitedeploy status --serve``: the page's routes and nothing else."""
    from typing import cast

    from ..agent.httpserver import BoundedHTTPServer

    class Handler(BaseHTTPRequestHandler):
        timeout = DEADLINE  # per socket operation; the server also cuts the whole connection

        def do_GET(self) -> None:
            cast(BoundedHTTPServer, self.server).request_read(self.request)  # a GET has no body
            reply = pages.answer(self.path, self.headers.get("Authorization"))
            send(self, reply or _text(404, "not found"))

        do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass  # readers are not logged

    return Handler


def _text(code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(code, message.encode() + b"\n", "text/plain; charset=utf-8", headers or {})
