"""Clients for the webhook and metrics servers: signed requests, raw sockets, idle floods."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitedeploy.agent.log import EventLog
from sitedeploy.agent.webhook import WebhookServer, load_secret
from sitedeploy.config import WebhookConfig

SECRET = "canary-webhook-secret-5b1d"
SECRET_ENV = "SITEDEPLOY_TEST_HOOK"


def github(body: bytes, delivery: str | None = None, secret: str = SECRET) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={mac}", **({"X-GitHub-Delivery": delivery} if delivery else {})}


def generic(body: bytes, ts: float | None = None, delivery: str | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if ts is None else ts))
    mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"X-Sitedeploy-Timestamp": stamp, "X-Sitedeploy-Signature": f"sha256={mac}"}
    return {**headers, **({"X-Sitedeploy-Delivery": delivery} if delivery else {})}


def post(
    port: int, body: bytes, headers: dict[str, str], *, method: str = "POST", length: bool = True
) -> int:
    """Send one request as given (no Content-Length unless ``length``); the status answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, "/", skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if length:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        response.read()
        return int(response.status)
    finally:
        conn.close()


def get(port: int, path: str) -> tuple[int, float]:
    """Status of a GET and the seconds it took."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return int(response.status), time.monotonic() - started
    finally:
        conn.close()


def raw(port: int, head: bytes) -> bytes:
    """Send bytes as they are and read the whole answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@contextmanager
def idle_flood(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that never send a byte."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def closed_by_server(socks: list[socket.socket], wait: float) -> int:
    """How many of ``socks`` the server has closed (EOF, reset or a 503) within ``wait`` seconds."""
    closed = 0
    for sock in socks:
        sock.settimeout(wait)
        try:
            data = sock.recv(1024)
            closed += data == b"" or data.startswith(b"HTTP/1.0 503")
        except TimeoutError:
            wait = 0.01  # still open; do not wait again for each of the others
        except OSError:
            closed += 1
    return closed


@dataclass
class Hook:
    server: WebhookServer
    pushes: list[str]
    log: io.StringIO = field(default_factory=io.StringIO)

    @property
    def port(self) -> int:
        return self.server.port

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in map(json.loads, self.log.getvalue().splitlines()) if e["event"] == name]


@contextmanager
def webhook(max_body: int = 4096) -> Iterator[Hook]:
    """A webhook server built the way ``runner._start_services`` builds it (the secret from the
    environment variable SECRET_ENV, which the caller sets)."""
    cfg = WebhookConfig(bind="127.0.0.1:0", secret_env=SECRET_ENV, max_body=max_body)
    pushes: list[str] = []
    stream = io.StringIO()
    secret = load_secret(cfg, Path.cwd())
    server = WebhookServer(cfg, secret, pushes.append, EventLog("json", stream))
    server.start()
    try:
        yield Hook(server, pushes, stream)
    finally:
        server.close()
