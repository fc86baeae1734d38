"""The long-running agent wakes on a push (watchdog), on SIGHUP and on a signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sitedeploy.agent.runner import run_forever
from sitedeploy.agent.triggers import Wakeup
from tests.fixtures.agent import AgentEnv

SITEDEPLOY = str(Path(sys.executable).with_name("sitedeploy"))


def _wait_for(condition: Callable[[], object], timeout: float) -> float:
    """Seconds until ``condition()`` is true; fails the test after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


@contextmanager
def _agent_thread(env: AgentEnv, **config: str) -> Iterator[Wakeup]:
    wakeup = Wakeup()
    thread = threading.Thread(
        target=run_forever,
        args=(env.config(**config), env.log()),
        kwargs={"wakeup": wakeup, "signals": False},
    )
    thread.start()
    try:
        _wait_for(lambda: env.live_commit() is not None, 20)
        yield wakeup
    finally:
        wakeup.stop()
        thread.join(timeout=20)
        assert not thread.is_alive()


def test_watchdog_deploys_a_push_within_two_seconds(agent_env: AgentEnv) -> None:
    env = agent_env
    with _agent_thread(env, agent="watch = true\n"):
        env.remote.static_site("v2")
        v2 = env.remote.commit_push("v2")
        assert _wait_for(lambda: env.live_commit() == v2, 2.0) < 2.0
    assert any("watch" in e["reasons"] for e in env.events("wake"))


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_webhook_with_a_valid_signature_deploys_and_a_bad_one_gets_401(
    agent_env: AgentEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env
    monkeypatch.setenv("SITEDEPLOY_TEST_HOOK", "s3cret")
    hook = '[agent.webhook]\nbind = "127.0.0.1:0"\nsecret_env = "SITEDEPLOY_TEST_HOOK"\nmax_body = 4096\n'
    with _agent_thread(env, agent=hook):
        port = env.events("webhook-listening")[0]["port"]
        url = f"http://127.0.0.1:{port}/hook"
        v1 = env.live_commit()
        env.remote.static_site("v2")
        v2 = env.remote.commit_push("v2")
        body = json.dumps({"ref": "refs/heads/main", "after": v2}).encode()
        good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        bad = "sha256=" + hmac.new(b"guess", body, hashlib.sha256).hexdigest()

        assert _post(url, body, {"X-Hub-Signature-256": bad}) == 401
        assert _post(url, body, {}) == 401
        assert _post(url, body, {"X-Gitlab-Token": "guess"}) == 401
        assert _post(url, b"x" * 5000, {"X-Hub-Signature-256": good}) == 413
        time.sleep(0.5)
        assert env.live_commit() == v1 and env.events("wake") == []

        assert _post(url, body, {"X-Hub-Signature-256": good}) == 202
        _wait_for(lambda: env.live_commit() == v2, 5)

        env.remote.static_site("v3")
        v3 = env.remote.commit_push("v3")
        assert _post(url, b"{}", {"X-Gitlab-Token": "s3cret"}) == 202
        _wait_for(lambda: env.live_commit() == v3, 5)
    logged = "\n".join(env.lines)
    assert "s3cret" not in logged and good not in logged


def test_sighup_makes_the_agent_deploy_now(agent_env: AgentEnv) -> None:
    env = agent_env
    path = env.write_config()
    log = env.root / "agent.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [SITEDEPLOY, "--config", str(path), "--state-dir", str(env.root / "state"), "agent"],
            stderr=out,
            stdout=subprocess.DEVNULL,
        )
    try:
        _wait_for(lambda: env.live_commit() is not None and "event=deployed" in log.read_text(), 20)
        env.remote.static_site("v2")
        v2 = env.remote.commit_push("v2")
        time.sleep(0.3)
        assert env.live_commit() != v2  # the interval is an hour and nothing is watched
        os.kill(proc.pid, signal.SIGHUP)
        assert _wait_for(lambda: env.live_commit() == v2, 2.0) < 2.0
        assert "reasons=sighup" in log.read_text()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert "event=stopped" in log.read_text()


def test_control_commands_wake_the_agent_and_status_names_the_tip(agent_env: AgentEnv) -> None:
    # The interval is an hour and nothing is watched: only the wake file can make it act now.
    env = agent_env
    path = env.write_config()

    def sd(*args: str) -> str:  # another process, as a person at a terminal
        command = [SITEDEPLOY, "--config", str(path), "--state-dir", str(env.root / "state"), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    with _agent_thread(env):
        env.remote.static_site("v2")
        v2 = env.remote.commit_push("v2")
        sd("mark-bad", v2, "--reason", "typo", "--lock-timeout", "10")  # the agent looks: holds v2
        _wait_for(lambda: any(e["commit"] == v2[:12] for e in env.events("held")), 3.0)
        status = sd("status")
        assert f"tracking: HEAD at {v2[:12]}" in status
        assert f"waiting:  {v2[:12]} is not live: commit {v2[:8]} is marked bad (typo)" in status
        sd("unmark", v2[:8], "--lock-timeout", "10")
        assert _wait_for(lambda: env.live_commit() == v2, 3.0) < 3.0
        sd("suspend", "--reason", "freeze", "--lock-timeout", "10")
        env.remote.static_site("v3")
        v3 = env.remote.commit_push("v3")
        time.sleep(1.0)
        assert env.live_commit() == v2
        sd("resume", "--lock-timeout", "10")
        assert _wait_for(lambda: env.live_commit() == v3, 3.0) < 3.0
    assert any(e.get("reasons") == "control" for e in env.events("wake"))


SLOW_HOOK = "import time\n\n\ndef on_post_build(config, **kwargs):\n    time.sleep(4)\n"


def test_status_says_the_agent_is_deploying_the_tip_while_it_builds(agent_env: AgentEnv) -> None:
    from sitedeploy import commands

    env = agent_env
    with _agent_thread(env) as wakeup:
        env.remote.mkdocs_site("v2")
        env.remote.write("sites/docs/hooks.py", SLOW_HOOK)
        yml = env.remote.work / "sites/docs/mkdocs.yml"
        yml.write_text(yml.read_text() + "hooks:\n  - hooks.py\n")
        v2 = env.remote.commit_push("a slow build")
        wakeup.trigger("test")
        config = env.config()

        def waiting() -> str:
            return commands.status(config)[0].waiting or ""

        _wait_for(lambda: "the agent is deploying it" in waiting(), 4.0)
        assert waiting().startswith(v2[:12])
        _wait_for(lambda: env.live_commit() == v2, 60)
