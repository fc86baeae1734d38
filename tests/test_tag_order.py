"""The one ordering of tags (sitedeploy.source.tag_order): semver.org §11 precedence, property-tested,
and the agent following ``ref = "tag:v*"`` to the final release, not its release candidate."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.agent.loop import Agent
from sitedeploy.agent.refs import parse_tracked, resolve
from sitedeploy.source.tag_order import is_prerelease, newest, tag_key
from sitedeploy.versions.naming import versions_from_refs
from tests.fixtures.agent import AgentEnv
from tests.test_layouts import sd

SPEC = [  # semver.org §11.4, in increasing precedence
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
]

identifier = st.one_of(
    st.integers(0, 30).map(str),
    st.text("abcxyz-", min_size=1, max_size=4).filter(lambda s: not s.isdigit()),
)
semver = st.builds(
    lambda n, pre, v: f"{v}{n[0]}.{n[1]}.{n[2]}" + (f"-{'.'.join(pre)}" if pre else ""),
    st.tuples(*[st.integers(0, 12)] * 3),
    st.lists(identifier, max_size=3),
    st.sampled_from(["", "v"]),
)
any_tag = st.one_of(semver, st.text("abv0123456789.-", min_size=1, max_size=10))


def test_the_specs_examples_are_in_order() -> None:
    for shuffled in itertools.islice(itertools.permutations(SPEC), 0, 40_000, 997):
        assert sorted(shuffled, key=tag_key) == SPEC
    assert sorted(["1.0.0", "2.0.0", "2.1.0", "2.1.1"], key=tag_key) == ["1.0.0", "2.0.0", "2.1.0", "2.1.1"]
    assert tag_key("v1.10.0") > tag_key("v1.9.0") and tag_key("v2.1") > tag_key("v2.0.9")


@given(st.lists(any_tag, min_size=1, max_size=8, unique=True))
def test_the_order_is_total_and_the_same_whatever_the_input_order(tags: list[str]) -> None:
    keys = {t: tag_key(t, "v*") for t in tags}
    assert len(set(keys.values())) == len(tags)  # distinct tags never tie
    assert sorted(tags, key=keys.__getitem__) == sorted(reversed(tags), key=keys.__getitem__)


@given(any_tag, any_tag, any_tag)
def test_the_order_is_transitive(a: str, b: str, c: str) -> None:
    ka, kb, kc = tag_key(a), tag_key(b), tag_key(c)
    if ka <= kb and kb <= kc:
        assert ka <= kc


@given(semver)
def test_a_final_release_is_newer_than_each_of_its_prereleases(tag: str) -> None:
    final = tag.partition("-")[0]
    assert tag_key(final) >= tag_key(tag)
    assert newest([tag, final], "v*", prereleases=True) == final
    assert not is_prerelease(final)


def test_prereleases_are_left_out_unless_asked_for() -> None:
    tags = ["v1.3.0", "v1.4.0-rc.1", "vintage"]
    assert newest(tags, "v*") == "v1.4.0-rc.1"
    assert newest(tags, "v*", prereleases=False) == "v1.3.0"
    assert newest(["docs-1.0.0", "docs-2.0.0-beta"], "docs-*", prereleases=False) == "docs-1.0.0"
    assert newest(["v0.1.0", "vintage", "latest"], "*") == "v0.1.0"  # versions above other names
    assert newest(["build-9", "build-10"], "build-*") == "build-10"
    assert newest(["nightly-a", "nightly-b"], "nightly-*") == "nightly-b"


def test_the_agent_and_versions_pick_the_same_newest_tag() -> None:
    refs = {f"refs/tags/{t}": t for t in ("v1.4.0-rc.1", "v1.4.0", "v1.3.9")}
    assert resolve(parse_tracked("tag:v*", None, prereleases=True), refs) == ("refs/tags/v1.4.0", "v1.4.0")
    found = versions_from_refs(refs, "tag:v*", "{major}.{minor}", "{version}")
    assert found["1.4"].ref == "v1.4.0"


def test_the_agent_follows_the_final_release_after_its_candidate(agent_env: AgentEnv) -> None:
    env = agent_env
    agent = Agent(env.config(target='ref = "tag:v*"\nprereleases = true\n'), env.log())
    env.remote.static_site("rc")
    env.remote.commit("rc")
    env.remote.git("tag", "v1.4.0-rc.1")
    env.remote.push("main", "v1.4.0-rc.1")
    agent.tick()
    assert "rc" in env.live_text()
    env.remote.static_site("final")
    final = env.remote.commit("final")
    env.remote.git("tag", "-a", "-m", "release", "v1.4.0")
    env.remote.push("main", "v1.4.0")
    agent.tick()
    assert env.live_commit() == final


def test_by_default_the_agent_never_deploys_a_release_candidate(agent_env: AgentEnv) -> None:
    env = agent_env
    agent = Agent(env.config(target='ref = "tag:v*"\n'), env.log())
    env.remote.static_site("one")
    one = env.remote.commit("one")
    env.remote.git("tag", "v1.3.0")
    env.remote.static_site("rc")
    env.remote.commit("rc")
    env.remote.git("tag", "v1.4.0-rc.1")
    env.remote.push("main", "v1.3.0", "v1.4.0-rc.1")
    agent.tick()
    assert env.live_commit() == one


def test_status_says_which_tag_is_newest_and_why_it_is_not_live(agent_env: AgentEnv) -> None:
    env = agent_env
    path = env.write_config(target='ref = "tag:v*"\n')
    config = config_mod.load(path, env.root / "state")
    agent = Agent(config, env.log())
    env.remote.static_site("one")
    one = env.remote.commit("one")
    env.remote.git("tag", "v1.3.0")
    env.remote.push("main", "v1.3.0")
    agent.tick()
    env.remote.static_site("rc")
    env.remote.commit("rc")
    env.remote.git("tag", "v1.4.0-rc.1")
    env.remote.push("main", "v1.4.0-rc.1")
    [shown] = commands.status(config)
    assert shown.newest_tag == (
        f"tag:v*: newest tag v1.3.0 ({one[:8]}) is live; v1.4.0-rc.1 is newer but a pre-release "
        "(prereleases = false)"
    )
    env.remote.static_site("final")
    final = env.remote.commit("final")
    env.remote.git("tag", "v1.4.0")
    env.remote.push("main", "v1.4.0")
    [shown] = commands.status(config)
    # the reason is the one status gives for the tip (``waiting``), here: nobody deployed it yet
    assert shown.newest_tag == f"tag:v*: newest tag v1.4.0 ({final[:8]}) is not live: not deployed yet " + (
        "('sitedeploy deploy', or the agent's next tick)"
    )
    assert f"  newest:   tag:v*: newest tag v1.4.0 ({final[:8]}) is not live" in sd(path, "status").output
