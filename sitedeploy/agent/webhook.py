"""The webhook receiver (``[agent.webhook]``): a push notification wakes the agent at once.

Accepted, compared in constant time (``hmac.compare_digest``):

    GitHub   X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body, keyed by the secret>
    GitLab   X-Gitlab-Token: <the secret>
    generic  <header, default X-Sitedeploy-Signature>: sha256=<HMAC-SHA256 of the body>

Anything else (no signature, a wrong one) gets 401 and triggers nothing; a body larger than
``max_body`` gets 413 without being read. The request says only "something changed": the
agent still asks git what moved, so a forged payload could at most cause one idle tick.
The secret comes from ``secret_env`` or ``secret_file``, never from deploy.toml.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..config import WebhookConfig
from ..errors import ConfigError
from .log import EventLog
from .metrics import split_bind


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


def authentic(headers: dict[str, str], body: bytes, secret: bytes, generic: str) -> str | None:
    """Which sender's signature is valid (``github``, ``gitlab``, ``generic``), or None."""
    mac = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    github = headers.get("x-hub-signature-256")
    if github is not None:
        return "github" if hmac.compare_digest(github.strip().encode(), mac.encode()) else None
    gitlab = headers.get("x-gitlab-token")
    if gitlab is not None:
        return "gitlab" if hmac.compare_digest(gitlab.encode(), secret) else None
    signed = headers.get(generic.lower())
    if signed is not None:
        value = signed.strip()
        value = value if value.startswith("sha256=") else "sha256=" + value
        return "generic" if hmac.compare_digest(value.encode(), mac.encode()) else None
    return None


class WebhookServer:
    def __init__(
        self, cfg: WebhookConfig, secret: bytes, on_push: Callable[[str], None], log: EventLog
    ) -> None:
        self.cfg = cfg
        self._server = ThreadingHTTPServer(split_bind(cfg.bind), _handler(cfg, secret, on_push, log))
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(
    cfg: WebhookConfig, secret: bytes, on_push: Callable[[str], None], log: EventLog
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self._reply(411, b"Content-Length required\n")
            if length < 0 or length > cfg.max_body:
                log.warning(
                    "webhook-refused", reason="body too large", bytes=length, peer=self.client_address[0]
                )
                self.close_connection = True
                return self._reply(413, b"body too large\n")
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            sender = authentic(headers, body, secret, cfg.header)
            if sender is None:
                log.warning("webhook-refused", reason="bad or missing signature", peer=self.client_address[0])
                return self._reply(401, b"bad or missing signature\n")
            log.event("webhook", sender=sender, peer=self.client_address[0])
            on_push(f"webhook:{sender}")
            return self._reply(202, b"accepted\n")

        def _reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are logged as events, without their headers

    return Handler
