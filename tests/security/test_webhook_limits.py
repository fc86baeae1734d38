"""The agent's HTTP servers under a flood: bounded threads and files, bounded time, bounded bodies.

Reproduces issue 11, item 6: 300 idle connections made 303 threads, and under a 64-file limit
idle connections starved ``/healthz`` and the agent's tick ("Too many open files").
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import cast

import pytest

from sitedeploy.agent import metrics as metrics_mod
from sitedeploy.agent import webhook as webhook_mod
from sitedeploy.agent.httpserver import BoundedHTTPServer, serve_in_thread
from sitedeploy.agent.log import EventLog
from sitedeploy.agent.metrics import Metrics
from sitedeploy.agent.runner import run_forever
from sitedeploy.agent.triggers import Wakeup
from sitedeploy.config import MetricsConfig
from tests.fixtures.agent import AgentEnv
from tests.security.webhook_helpers import (
    SECRET,
    SECRET_ENV,
    closed_by_server,
    get,
    github,
    idle_flood,
    post,
    raw,
    webhook,
)

SITEDEPLOY = str(Path(sys.executable).with_name("sitedeploy"))
FLOOD = 300
FILE_LIMIT = 64
SERVERS = (
    f'[agent.webhook]\nbind = "127.0.0.1:0"\nsecret_env = "{SECRET_ENV}"\nmax_body = 4096\n'
    '[agent.metrics]\nbind = "127.0.0.1:0"\n'
)
# Runs the CLI with a hard file limit, the way `LimitNOFILE=64` in a systemd unit would.
LIMITED = (
    "import os, resource, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FILE_LIMIT}, {FILE_LIMIT})); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def _wait_for(condition: Callable[[], object], timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


@contextmanager
def _agent_thread(env: AgentEnv, agent: str) -> Iterator[None]:
    """``run_forever`` as the service runs it, in a thread, once v1 is live."""
    wakeup = Wakeup()
    thread = threading.Thread(
        target=run_forever,
        args=(env.config(agent=agent), env.log()),
        kwargs={"wakeup": wakeup, "signals": False},
    )
    thread.start()
    try:
        _wait_for(lambda: env.live_commit() is not None, 20)
        yield
    finally:
        wakeup.stop()
        thread.join(timeout=20)
        assert not thread.is_alive()


def _connection_threads() -> Counter[str]:
    return Counter(t.name for t in threading.enumerate() if t.name.endswith("-conn"))


def _push_and_signal(env: AgentEnv, port: int, version: str) -> str:
    env.remote.static_site(version)
    sha = env.remote.commit_push(version)
    body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
    assert post(port, body, github(body, delivery=f"delivery-{version}")) == 202
    return sha


def test_idle_connections_are_capped_and_healthz_and_pushes_still_get_through(
    agent_env: AgentEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with _agent_thread(env, SERVERS):
        hook_port = env.events("webhook-listening")[0]["port"]
        metrics_port = env.events("metrics-listening")[0]["port"]
        before = threading.active_count()
        with idle_flood(hook_port, FLOOD) as hooks, idle_flood(metrics_port, FLOOD) as scrapes:
            time.sleep(0.5)
            threads = _connection_threads()
            during = threading.active_count()
            status, healthz_seconds = get(metrics_port, "/healthz")
            v2 = _push_and_signal(env, hook_port, "v2")
            deploy_seconds = _wait_for(lambda: env.live_commit() == v2, 15)
            closed = closed_by_server(hooks, 1.0), closed_by_server(scrapes, 1.0)
    print(
        f"\n{2 * FLOOD} idle connections: threads {before} -> {during} ({dict(threads)}), "
        f"/healthz {healthz_seconds * 1000:.0f} ms, push live in {deploy_seconds:.1f} s, "
        f"closed by the servers: {closed[0]} webhook, {closed[1]} metrics"
    )
    assert threads["webhook-conn"] <= webhook_mod.MAX_CONNECTIONS
    assert threads["metrics-conn"] <= metrics_mod.MAX_CONNECTIONS
    assert during - before <= webhook_mod.MAX_CONNECTIONS + metrics_mod.MAX_CONNECTIONS
    assert status == 200 and healthz_seconds < 2
    assert closed[0] >= FLOOD - webhook_mod.MAX_CONNECTIONS
    assert closed[1] >= FLOOD - metrics_mod.MAX_CONNECTIONS


def _port(log: Path, event: str) -> int | None:
    found = re.search(rf"event={event} .*?port=(\d+)", log.read_text())
    return int(found.group(1)) if found else None


def test_under_a_64_file_limit_a_flood_starves_neither_healthz_nor_the_tick(agent_env: AgentEnv) -> None:
    env = agent_env
    config = env.write_config(agent=SERVERS)
    log = env.root / "agent.log"
    command = [sys.executable, "-c", LIMITED, SITEDEPLOY, "--config", str(config)]
    command += ["--state-dir", str(env.root / "state"), "agent"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, stderr=out, stdout=subprocess.DEVNULL, env={**os.environ, SECRET_ENV: SECRET}
        )
    try:
        _wait_for(lambda: "event=deployed" in log.read_text() and _port(log, "metrics-listening"), 30)
        hook_port, metrics_port = _port(log, "webhook-listening"), _port(log, "metrics-listening")
        assert hook_port and metrics_port
        with idle_flood(hook_port, FLOOD), idle_flood(metrics_port, FLOOD):
            time.sleep(0.5)
            tasks = len(os.listdir(f"/proc/{proc.pid}/task"))
            files = len(os.listdir(f"/proc/{proc.pid}/fd"))
            status, healthz_seconds = get(metrics_port, "/healthz")
            v2 = _push_and_signal(env, hook_port, "v2")
            deploy_seconds = _wait_for(lambda: env.live_commit() == v2, 20)
            assert get(metrics_port, "/healthz")[0] == 200  # the tick that deployed was recorded
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    text = log.read_text()
    print(
        f"\nfile limit {FILE_LIMIT}, {2 * FLOOD} idle connections: {tasks} threads, {files} open files, "
        f"/healthz {healthz_seconds * 1000:.0f} ms, push live in {deploy_seconds:.1f} s"
    )
    assert status == 200 and healthz_seconds < 2
    assert tasks <= webhook_mod.MAX_CONNECTIONS + metrics_mod.MAX_CONNECTIONS + 6
    assert "Too many open files" not in text and "internal-error" not in text
    assert "event=stopped" in text


def _slowloris(port: int, head: bytes, drip: bytes, seconds: list[float]) -> None:
    """Send ``head``, then one byte of ``drip`` every half second; record when the server hangs up."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        for byte in drip * 100:
            if select.select([sock], [], [], 0.5)[0]:
                seconds.append(time.monotonic() - started if _hung_up(sock) else -1.0)
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                seconds.append(time.monotonic() - started)
                return
    seconds.append(float("inf"))


def _hung_up(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except OSError:
        return True


def test_slow_clients_are_cut_off_after_the_deadline_while_others_are_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    metrics = Metrics(MetricsConfig(bind="127.0.0.1:0"))
    metrics.serve(lambda: True)
    assert metrics.port is not None
    with webhook() as hook:
        body_head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n"
        body_head += "".join(f"{k}: {v}\r\n" for k, v in github(b"a" * 4000).items()).encode() + b"\r\n"
        slow = {
            "webhook headers": (hook.port, b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a"),
            "webhook body": (hook.port, body_head, b"a"),
            "metrics headers": (metrics.port, b"GET /healthz HTTP/1.1\r\nX-Slow: ", b"b"),
        }
        results: dict[str, list[float]] = {name: [] for name in slow}
        threads = [
            threading.Thread(target=_slowloris, args=(*args, results[name])) for name, args in slow.items()
        ]
        for thread in threads:
            thread.start()
        time.sleep(1)
        assert post(hook.port, b"{}", github(b"{}")) == 202  # served meanwhile
        assert get(metrics.port, "/healthz")[0] == 200
        for thread in threads:
            thread.join(timeout=30)
    metrics.close()
    print("\nslow clients cut after: " + ", ".join(f"{k} {v[0]:.1f} s" for k, v in results.items()))
    for name, (seconds,) in results.items():
        assert webhook_mod.DEADLINE - 0.5 <= seconds <= webhook_mod.DEADLINE + 1.5, name
    assert hook.pushes == ["webhook:github"]


def test_bodies_above_max_body_get_413_without_being_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with webhook(max_body=4096) as hook:
        exact, over = b"x" * 4096, b"y" * 4097
        assert post(hook.port, over, github(over)) == 413
        assert post(hook.port, exact, github(exact)) == 202

        started = time.monotonic()
        claimed = raw(hook.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
        assert claimed.startswith(b"HTTP/1.0 413") and time.monotonic() - started < 2  # not waited for

        for length in ("1e9", "-1", "0x10", "99999999999999999999999999", "\N{SUPERSCRIPT TWO}"):
            head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
            assert raw(hook.port, head)[:12] in (b"HTTP/1.0 411", b"HTTP/1.0 413"), length
        assert post(hook.port, exact, github(exact), length=False) == 411
        chunked = {"Transfer-Encoding": "chunked", **github(b"")}
        assert raw(hook.port, _request(chunked, b"0\r\n\r\n")).startswith(b"HTTP/1.0 411")
        assert post(hook.port, exact, github(exact), method="GET") == 405
        assert post(hook.port, exact, github(exact), method="PUT") == 405
    assert hook.pushes == ["webhook:github"]
    refused = hook.events("webhook-refused")
    assert {e["status"] for e in refused} == {405, 411, 413}
    assert SECRET not in hook.log.getvalue()


def _request(headers: dict[str, str], body: bytes) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST / HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode() + body


def test_when_every_connection_is_being_answered_a_newcomer_gets_503_at_once() -> None:
    release, answering = threading.Event(), threading.Semaphore(0)

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            cast(BoundedHTTPServer, self.server).request_read(self.request)
            answering.release()
            release.wait(10)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    stream = io.StringIO()
    log = EventLog("json", stream)
    server = BoundedHTTPServer(("127.0.0.1", 0), Slow, name="slow", max_connections=2, deadline=10, log=log)
    serve_in_thread(server)
    port = int(server.server_address[1])
    statuses: list[int] = []
    busy = [threading.Thread(target=lambda: statuses.append(get(port, "/")[0])) for _ in range(2)]
    for thread in busy:
        thread.start()
    assert answering.acquire(timeout=5) and answering.acquire(timeout=5)
    started = time.monotonic()
    refused = raw(port, b"")
    seconds = time.monotonic() - started
    release.set()
    for thread in busy:
        thread.join(timeout=10)
    server.shutdown()
    server.server_close()
    assert refused.startswith(b"HTTP/1.0 503") and seconds < 1
    assert statuses == [200, 200]
    pressure = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["event"], e["refused"], e["limit"]) for e in pressure] == [("slow-pressure", 1, 2)]
