"""``agent --once``: a push deploys; an idle tick asks the remote and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sitedeploy import commands
from sitedeploy.agent.loop import Agent
from sitedeploy.agent.runner import run_once
from tests.fixtures.agent import AgentEnv, counting_opener

SITEDEPLOY = str(Path(sys.executable).with_name("sitedeploy"))


def test_push_deploys_and_idle_ticks_make_no_target_request(agent_env: AgentEnv) -> None:
    env = agent_env
    config = env.config()
    v1 = env.remote.git("rev-parse", "HEAD")
    calls: list[str] = []
    assert run_once(config, env.log(), opener=counting_opener(calls)) == 0
    assert env.live_commit() == v1
    assert calls  # the first run had to look at the target

    calls.clear()
    for _ in range(3):
        assert run_once(config, env.log(), opener=counting_opener(calls)) == 0
    assert calls == []  # idle: one ls-remote, no request to any target

    env.remote.static_site("v2")
    v2 = env.remote.commit_push("v2")
    assert run_once(config, env.log(), opener=counting_opener(calls)) == 0
    assert env.live_commit() == v2
    assert "v2" in env.live_text()
    assert [e["commit"] for e in env.events("deployed")] == [v1[:8], v2[:8]]


def test_idle_tick_in_a_long_running_agent_is_one_ref_query(agent_env: AgentEnv) -> None:
    env = agent_env
    calls: list[str] = []
    agent = Agent(env.config(), env.log(), opener=counting_opener(calls))
    agent.tick()
    calls.clear()
    report = agent.tick()
    assert calls == [] and report.visited == []


def test_status_shows_what_the_agent_applied_and_attempted(agent_env: AgentEnv) -> None:
    env = agent_env
    config = env.config()
    run_once(config, env.log())
    [status] = commands.status(config)
    head = env.remote.git("rev-parse", "HEAD")
    assert status.agent["last_applied"] == head and status.agent["last_attempted"] == head
    assert status.agent["last_error"] == ""


def test_cli_once_runs_and_overlapping_runs_leave_cleanly(agent_env: AgentEnv) -> None:
    env = agent_env
    path = env.write_config()
    base = [SITEDEPLOY, "--config", str(path), "--state-dir", str(env.root / "state")]
    done = subprocess.run([*base, "agent", "--once", "--log-format", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line)["event"] for line in done.stderr.splitlines()]
    assert "deployed" in events
    status = subprocess.run([*base, "status"], capture_output=True, text=True)
    assert "agent:    applied" in status.stdout

    from sitedeploy.agent.memory import ProcessLock

    lock = ProcessLock(env.root / "state")
    lock.acquire()
    try:
        again = subprocess.run([*base, "agent", "--once"], capture_output=True, text=True)
    finally:
        lock.release()
    assert again.returncode == 0
    assert "event=skipped" in again.stderr and "another sitedeploy agent" in again.stderr


def test_once_writes_the_metrics_textfile_even_when_idle(agent_env: AgentEnv) -> None:
    env = agent_env
    textfile = env.root / "sitedeploy.prom"
    config = env.config(agent=f'[agent.metrics]\ntextfile = "{textfile}"\n')
    run_once(config, env.log())
    textfile.unlink()
    run_once(config, env.log())  # nothing new: the live commit comes from the agent's memory
    head = env.remote.git("rev-parse", "HEAD")
    assert f'sitedeploy_live_commit_info{{commit="{head}",target="site"}} 1.0' in textfile.read_text()
