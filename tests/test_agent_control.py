"""Pins, bad-commit marks and suspensions hold the agent; drift is found, healed, told once."""

from __future__ import annotations

from sitedeploy import commands
from sitedeploy.agent.loop import Agent
from tests.fixtures.agent import AgentEnv, NotifySink, counting_opener


def test_the_agent_honours_a_rollback_pin_and_never_redeploys_the_bad_commit(agent_env: AgentEnv) -> None:
    env = agent_env
    config = env.config()
    agent = Agent(config, env.log())
    v1 = env.remote.git("rev-parse", "HEAD")
    agent.tick()
    env.remote.static_site("v2")
    v2 = env.remote.commit_push("v2")
    agent.tick()
    assert env.live_commit() == v2

    commands.rollback(config)  # a person: "v2 is bad" → v1 live, target pinned, v2 marked bad
    assert env.live_commit() == v1
    for full in (False, True):
        agent.tick(full=full)
        assert env.live_commit() == v1

    env.remote.static_site("v3")
    v3 = env.remote.commit_push("v3")
    agent.tick()
    assert env.live_commit() == v1  # pinned: held, not deployed
    assert "pinned" in env.events("held")[-1]["reason"]

    commands.resume(config)
    env.remote.git("reset", "-q", "--hard", v2)
    env.remote.git("push", "-q", "--force", "origin", "main")  # the branch points at the bad commit again
    agent.tick(full=True)
    assert env.live_commit() == v1
    assert "marked bad" in env.events("held")[-1]["reason"]

    env.remote.git("reset", "-q", "--hard", v3)
    env.remote.push()
    agent.tick()
    assert env.live_commit() == v3


def test_a_suspended_target_is_held_with_its_reason(agent_env: AgentEnv) -> None:
    env = agent_env
    config = env.config()
    agent = Agent(config, env.log())
    agent.tick()
    commands.suspend(config, reason="freeze for the release")
    env.remote.static_site("v2")
    v2 = env.remote.commit_push("v2")
    agent.tick()
    assert env.live_commit() != v2
    assert "freeze for the release" in env.events("held")[-1]["reason"]
    [status] = commands.status(config)
    assert status.suspended is not None and status.suspended.reason == "freeze for the release"
    assert status.agent["held_commit"] == v2

    calls: list[str] = []
    idle = Agent(config, env.log(), opener=counting_opener(calls))
    idle.tick()
    assert calls == []  # held commits are not re-examined on every tick

    commands.resume(config)
    agent.tick(full=True)  # what SIGHUP does after a resume
    assert env.live_commit() == v2


def test_drift_is_repaired_and_notified_once(agent_env: AgentEnv, notify_sink: NotifySink) -> None:
    env = agent_env
    notify = f'drift_every = 1\n[[agent.notify]]\nurl = "{notify_sink.url}/"\nformat = "slack"\n'
    agent = Agent(env.config(target='drift = "repair"\n', agent=notify), env.log())
    agent.tick()
    page = env.public / "current" / "index.html"
    original = page.read_text()
    page.write_text("defaced")  # behind sitedeploy's back
    for _ in range(3):
        agent.tick()
    assert page.read_text() == original
    texts = [n["text"] for n in notify_sink.received]
    assert len(texts) == 2 and "deployed" in texts[0]
    assert "drift found and repaired" in texts[1] and "1 changed" in texts[1]


def test_drift_alert_notifies_once_then_recovery(agent_env: AgentEnv, notify_sink: NotifySink) -> None:
    env = agent_env
    notify = f'drift_every = 1\n[[agent.notify]]\nurl = "{notify_sink.url}/"\n'
    config = env.config(agent=notify)
    agent = Agent(config, env.log())
    agent.tick()
    (env.public / "current" / "extra.html").write_text("left by hand")
    for _ in range(3):
        agent.tick()
    assert [n["event"] for n in notify_sink.received] == ["deployed", "drift"]
    assert "1 extra" in notify_sink.received[-1]["message"]
    (env.public / "current" / "extra.html").unlink()
    agent.tick()
    agent.tick()
    assert [n["event"] for n in notify_sink.received] == ["deployed", "drift", "recovered"]


def test_a_target_following_tags_deploys_the_newest_matching_tag(agent_env: AgentEnv) -> None:
    env = agent_env
    agent = Agent(env.config(target='ref = "tag:v*"\n'), env.log())
    assert agent.tick().visited == []  # no tag yet: nothing to follow
    assert env.events("ref-missing")[0]["ref"] == "tag:v*"
    env.remote.git("tag", "-a", "-m", "release", "v1.9")
    v1_9 = env.remote.git("rev-parse", "HEAD")
    env.remote.static_site("v2")
    v1_10 = env.remote.commit("v2")
    env.remote.git("tag", "v1.10")
    env.remote.static_site("v3")
    env.remote.commit("v3, not tagged")
    env.remote.push("main", "v1.9")
    agent.tick()
    assert env.live_commit() == v1_9  # an annotated tag deploys the commit it points at
    env.remote.push("main", "v1.10")
    agent.tick()
    assert env.live_commit() == v1_10  # v1.10 is newer than v1.9; the untagged tip is ignored
