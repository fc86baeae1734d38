"""Text a build chose reaches a chat service as text: a hostile commit subject and a hostile
build error, posted through the agent's real notify path to a webhook server, carry no Slack
control sequence, no disguised link and no Mattermost/Rocket.Chat mention."""

from __future__ import annotations

import re

from sitedeploy.agent.loop import Agent
from tests.fixtures.agent import AgentEnv, NotifySink

HOSTILE = (
    "<!channel> <!here|here> <@U024BE7LH> see <https://evil.example/|the docs> "
    "@all @here [docs](https://evil.example/) & more"
)


def assert_inert(text: str) -> None:
    """No Slack control sequence or link, no Markdown link, no live @-mention."""
    assert "<" not in text and ">" not in text, text
    assert not re.search(r"&(?!amp;|lt;|gt;)", text), text
    assert not re.search(r"@\w", text), text
    assert not re.search(r"\]\s*\(", text), text


def test_a_hostile_commit_subject_and_build_error_reach_slack_as_text(
    agent_env: AgentEnv, notify_sink: NotifySink
) -> None:
    env = agent_env
    notify = f'[[agent.notify]]\nurl = "{notify_sink.url}/hook"\nformat = "slack"\n'
    agent = Agent(env.config(agent=notify), env.log())
    env.remote.static_site("v1")
    env.remote.commit_push(HOSTILE)
    assert agent.tick().deployed == ["site"]
    # a config error quotes the hostile site name back
    env.remote.write("deploy.toml", f'[[sites]]\nname = "{HOSTILE}"\npath = "nowhere"\n')
    env.remote.commit_push("break the config")
    assert agent.tick().failed == ["site"]

    texts = [n["text"] for n in notify_sink.received]
    assert len(texts) == 2 and "deployed" in texts[0] and "not deployed" in texts[1]
    for text in texts:
        assert_inert(text)
    assert "&lt;!channel&gt;" in texts[1]  # the config error quoted the hostile name
    assert "&lt;!channel&gt;" in texts[0] and "&lt;https://evil.example/|the docs&gt;" in texts[0]
    assert "@\u200ball" in texts[0] and "]\u200b(https://evil.example/)" in texts[0]


def test_chat_text_keeps_plain_messages_readable() -> None:
    from sitedeploy.agent.notify import chat_text

    plain = "site: deployed 1a2b3c4d (Fix typo) as 20260101T000000Z-1a2b3c4d"
    assert chat_text(plain) == plain
    assert chat_text("a -> b & c") == "a -&gt; b &amp; c"
    assert chat_text("mail ada@example.com") == "mail ada@\u200bexample.com"
