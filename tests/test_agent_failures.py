"""Failures hold the live release: build errors, the link gate, and the check after the switch."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from sitedeploy import commands
from sitedeploy.agent.loop import Agent
from sitedeploy.build import Built
from tests.fixtures.agent import AgentEnv, LiveSite, NotifySink, counting_opener


def test_build_failure_keeps_the_live_release_and_is_not_retried(agent_env: AgentEnv) -> None:
    env = agent_env
    calls: list[str] = []
    agent = Agent(env.config(), env.log(), opener=counting_opener(calls))
    env.remote.mkdocs_site("v1")
    v1 = env.remote.commit_push("docs v1")
    agent.tick()
    assert env.live_commit() == v1

    env.remote.write("sites/docs/mkdocs.yml", "site_name: [unclosed\n")
    bad = env.remote.commit_push("break the docs config")
    report = agent.tick()
    assert report.failed == ["site"]
    assert env.live_commit() == v1
    [failure] = env.events("failed")
    assert failure["commit"] == bad[:12] and failure["kind"] == "BuildError"
    assert "mkdocs build failed" in failure["error"]

    calls.clear()
    assert agent.tick().visited == [] and calls == []  # remembered: not rebuilt every tick
    assert len(env.events("deploying")) == 2

    env.remote.mkdocs_site("v3")
    v3 = env.remote.commit_push("fix the docs config")
    assert agent.tick().deployed == ["site"]
    assert env.live_commit() == v3
    [status] = commands.status(env.config())
    assert status.agent["last_error"] == "" and status.agent["last_applied"] == v3


def test_broken_internal_link_blocks_the_release(agent_env: AgentEnv) -> None:
    env = agent_env
    v1 = env.remote.git("rev-parse", "HEAD")
    agent = Agent(env.config(), env.log())
    agent.tick()
    env.remote.write(
        "sites/web/index.html", '<a href="guide/">g</a><img src="img/logo.png"><a href="about/">a</a>'
    )
    bad = env.remote.commit_push("links to pages that do not exist")
    assert agent.tick().failed == ["site"]
    assert env.live_commit() == v1
    [failure] = env.events("failed")
    assert failure["kind"] == "GateError" and failure["commit"] == bad[:12]
    assert "2 broken internal links" in failure["error"]
    assert "index.html -> guide/" in failure["error"] and "index.html -> img/logo.png" in failure["error"]
    [status] = commands.status(env.config())
    assert status.agent["failed_commit"] == bad and "broken internal links" in status.agent["last_error"]


def test_mkdocs_strict_warnings_block_the_release(agent_env: AgentEnv) -> None:
    env = agent_env
    agent = Agent(env.config(), env.log())
    agent.tick()
    v1 = env.live_commit()
    env.remote.mkdocs_site("v2", strict=True)
    env.remote.write("sites/docs/docs/guide.md", "# Guide\n\n[gone](missing.md)\n")
    env.remote.commit_push("a link MkDocs warns about")
    assert agent.tick().failed == ["site"]
    assert env.live_commit() == v1
    assert "missing.md" in env.events("failed")[0]["error"]


def test_failed_check_after_the_switch_rolls_back(
    agent_env: AgentEnv, live_site: LiveSite, notify_sink: NotifySink, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env
    monkeypatch.setenv("SITEDEPLOY_TEST_NOTIFY_KEY", "n0tify")
    target = f'check_urls = ["{live_site.url}/", "{live_site.url}/about/"]\n'
    agent_table = (
        f'check_attempts = 2\n[[agent.notify]]\nurl = "{notify_sink.url}/hook"\n'
        'secret_env = "SITEDEPLOY_TEST_NOTIFY_KEY"\n'
    )
    config = env.config(target=target, agent=agent_table)
    calls: list[str] = []
    agent = Agent(config, env.log(), opener=counting_opener(calls))
    v1 = env.remote.git("rev-parse", "HEAD")
    assert agent.tick().deployed == ["site"]

    live_site.broken = True
    env.remote.static_site("v2")
    v2 = env.remote.commit_push("v2 breaks the server")
    report = agent.tick()
    assert report.rolled_back == ["site"] and report.deployed == []
    assert env.live_commit() == v1
    last = commands.history(config)["site"][0]
    assert last.action == "rollback" and last.commit == v1
    assert "post-switch check failed" in last.note and "HTTP 500" in last.note
    assert [n["event"] for n in notify_sink.received] == ["deployed", "rolled back"]
    assert "rolled back" in notify_sink.received[-1]["message"]
    assert notify_sink.received[-1]["commit"] == v2
    signed = hmac.new(b"n0tify", notify_sink.bodies[-1], hashlib.sha256).hexdigest()
    assert notify_sink.headers[-1]["X-Sitedeploy-Signature"] == f"sha256={signed}"

    calls.clear()
    live_site.broken = False
    assert agent.tick().visited == [] and calls == []  # the failed commit is not retried
    env.remote.static_site("v3")
    v3 = env.remote.commit_push("v3")
    assert agent.tick().deployed == ["site"]
    assert env.live_commit() == v3
    assert notify_sink.received[-1]["event"] == "deployed"
    assert "recovered" in notify_sink.received[-1]["message"]


def test_marker_naming_another_commit_fails_the_check(agent_env: AgentEnv, live_site: LiveSite) -> None:
    env = agent_env
    marker = f'check_urls = ["{live_site.url}/"]\nmarker_url = "{live_site.url}/about/index.html"\n'
    agent = Agent(env.config(target=marker, agent="check_attempts = 1\n"), env.log())
    report = agent.tick()
    assert report.failed == ["site"] and report.rolled_back == []
    # The first release: nothing to roll back to, so the failure is reported as such.
    assert env.events("failed")[0]["kind"] == "RollbackError"
    assert "not JSON" in env.events("failed")[0]["error"]


def test_a_commit_superseded_while_it_builds_is_abandoned_for_the_newest(agent_env: AgentEnv) -> None:
    env = agent_env
    pushed: list[str] = []

    class PushDuringBuild(Agent):
        """Pushes a newer commit the first time a build finishes, like a busy docs team."""

        def _link_check(self, built: Built) -> None:
            if not pushed and built.commit.subject == "v2":
                env.remote.static_site("v3")
                pushed.append(env.remote.commit_push("v3"))
            super()._link_check(built)

    agent = PushDuringBuild(env.config(), env.log())
    agent.tick()
    env.remote.static_site("v2")
    env.remote.commit_push("v2")
    report = agent.tick()
    assert report.again and report.deployed == [] and report.failed == []
    assert env.events("superseded")[0]["newer"] == pushed[0][:12]
    assert agent.tick().deployed == ["site"]
    assert env.live_commit() == pushed[0]
    assert len(commands.history(env.config())["site"]) == 2  # v2 never went live
