"""Decisions, without servers: the agent's (deploy, hold, back off, remember a refusal) and the
versions' and previews' (aliases, the default, retiring a line, expiry), on the in-memory
target (:mod:`sitedeploy.targets.memory`).

The real-server suites (``test_agent_*``, ``test_versions*``) cover the same paths on local,
SSH and S3 targets; these pin the logic down in milliseconds per case. The agent still reads a
real git repository (a bare "remote" on disk) and builds plain static sites (a copy).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sitedeploy import config as config_mod
from sitedeploy.agent.loop import Agent
from sitedeploy.config import Config, TargetConfig
from sitedeploy.errors import ConfigError, PlanRefused, TargetError
from sitedeploy.release import control as ctl
from sitedeploy.release.records import read_control, read_history
from sitedeploy.release.transaction import Rules, Transaction
from sitedeploy.targets import Target
from sitedeploy.targets.dryrun import DryRun
from sitedeploy.targets.memory import MemoryTarget
from sitedeploy.versions.layout import Family
from sitedeploy.versions.previews import DAY, _expired, match_previews
from sitedeploy.versions.publish import follow_rules
from sitedeploy.versions.state import FamilyState, Line, read_state, root_files, write_state
from tests.fixtures.agent import AgentEnv
from tests.test_transaction import publish, site

# --- the agent's decisions -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def on_memory(target: MemoryTarget) -> object:
    """An opener that hands the agent the same in-memory target on every tick."""

    def opener(name: str, cfg: TargetConfig, config: Config) -> Target:
        return target

    return opener


def served_text(target: MemoryTarget, rel: str = "index.html") -> str:
    return target.served()[rel].decode()


@pytest.fixture
def memory_agent(agent_env: AgentEnv) -> tuple[AgentEnv, MemoryTarget, Agent, Clock]:
    target, clock = MemoryTarget(name="site"), Clock()
    agent = Agent(agent_env.config(), agent_env.log(), opener=on_memory(target), clock=clock)  # type: ignore[arg-type]
    return agent_env, target, agent, clock


def test_the_agent_deploys_a_new_commit_once_and_an_idle_tick_writes_nothing(
    memory_agent: tuple[AgentEnv, MemoryTarget, Agent, Clock],
) -> None:
    env, target, agent, _ = memory_agent
    assert agent.tick().deployed == ["site"]
    assert "v1" in served_text(target)
    writes = list(target.log)
    report = agent.tick()
    assert report.visited == [] and report.deployed == [] and target.log == writes

    env.remote.static_site("v2")
    v2 = env.remote.commit_push("v2")
    assert agent.tick().deployed == ["site"]
    assert "v2" in served_text(target)
    assert read_control(target).agent["last_applied"] == v2


def test_a_suspended_target_holds_the_commit_until_resumed(
    memory_agent: tuple[AgentEnv, MemoryTarget, Agent, Clock],
) -> None:
    env, target, agent, _ = memory_agent
    agent.tick()
    ctl.update_control(target, target.name, ctl.suspended("release freeze"))
    env.remote.static_site("v2")
    v2 = env.remote.commit_push("v2")
    assert agent.tick().deployed == []
    assert "v1" in served_text(target)
    [held] = env.events("held")
    assert held["commit"] == v2[:12] and "release freeze" in held["reason"]
    assert agent.tick().visited == []  # remembered as held: not looked at every tick
    assert len(env.events("held")) == 1

    ctl.update_control(target, target.name, ctl.resumed())
    assert agent.tick(full=True).deployed == ["site"]  # the next full tick (drift_every) sees it
    assert "v2" in served_text(target)


def test_a_commit_marked_bad_is_held_and_a_newer_one_deploys(
    memory_agent: tuple[AgentEnv, MemoryTarget, Agent, Clock],
) -> None:
    env, target, agent, _ = memory_agent
    agent.tick()
    env.remote.static_site("v2")
    v2 = env.remote.commit_push("v2")
    ctl.update_control(target, target.name, ctl.marked_bad(v2, "breaks the search"))
    assert agent.tick().deployed == [] and "v1" in served_text(target)
    env.remote.static_site("v3")
    env.remote.commit_push("v3")
    assert agent.tick().deployed == ["site"] and "v3" in served_text(target)


def test_a_retryable_failure_backs_off_and_is_retried_when_due(
    memory_agent: tuple[AgentEnv, MemoryTarget, Agent, Clock],
) -> None:
    env, target, agent, clock = memory_agent
    agent.tick()
    env.remote.static_site("v2")
    env.remote.commit_push("v2")
    target.fail_at.add("switch")
    assert agent.tick().failed == ["site"]
    assert "v1" in served_text(target)  # the failed switch left the live release
    [failed] = env.events("failed")
    assert failed["retry"] is True and failed["kind"] == "TargetError"

    target.fail_at.clear()
    assert agent.tick().visited == []  # not due yet: the back-off is one interval
    clock.now += agent.config.agent.interval
    assert agent.tick().deployed == ["site"] and "v2" in served_text(target)
    assert read_control(target).agent["last_error"] == ""


def test_a_refusal_is_remembered_until_a_newer_commit(
    memory_agent: tuple[AgentEnv, MemoryTarget, Agent, Clock],
) -> None:
    env, target, agent, clock = memory_agent
    agent.tick()
    env.remote.write("sites/web/index.html", '<!doctype html><a href="missing/">gone</a>\n')
    env.remote.commit_push("link to a page that does not exist")
    assert agent.tick().failed == ["site"]
    [failed] = env.events("failed")
    assert failed["kind"] == "GateError" and failed["retry"] is False
    clock.now += 10 * agent.config.agent.interval
    assert agent.tick().visited == []  # a refusal is not retried, however long it waits
    assert "v1" in served_text(target)
    env.remote.static_site("v3")
    env.remote.commit_push("v3")
    assert agent.tick().deployed == ["site"] and "v3" in served_text(target)


# --- versions: aliases and the default ----------------------------------------------------------


def family(tmp_path: Path, kind: str = "versions", **keys: object) -> Family:
    table: dict[str, object] = {
        "type": "local",
        "path": "public",
        kind: "tag:v*" if kind == "versions" else "branch:*",
    }
    config = config_mod.from_dict(
        {"source": {"repo": "."}, "targets": {"docs": {**table, **keys}}}, tmp_path / "deploy.toml"
    )
    return Family.of(config, "docs", kind)  # type: ignore[arg-type]


def versions(*tags: str) -> FamilyState:
    state = FamilyState()
    for tag in tags:
        name = tag.removeprefix("v")
        state = state.with_line(Line(name, name, tag))
    return state


def test_alias_rules_follow_the_newest_and_the_newest_stable_version(tmp_path: Path) -> None:
    fam = family(tmp_path, aliases={"latest": "newest", "stable": "newest-stable", "lts": "1.4"})
    state = follow_rules(fam)(versions("v1.4", "v2.0", "v2.1-rc.1"))
    assert {a.name: a.version for a in state.aliases} == {"latest": "2.1-rc.1", "stable": "2.0", "lts": "1.4"}
    assert state.default == "latest"  # no default_version: 'latest' when there is one
    assert state.resolve("stable") == "2.0" and state.aliases_of("1.4") == ["lts"]

    released = follow_rules(fam)(state.with_line(Line("2.1", "2.1", "v2.1")))
    assert {a.name: a.version for a in released.aliases} == {"latest": "2.1", "stable": "2.1", "lts": "1.4"}


def test_an_alias_whose_version_is_gone_is_dropped_and_the_default_moves(tmp_path: Path) -> None:
    fam = family(tmp_path, aliases={"lts": "1.4"}, default_version="lts")
    state = follow_rules(fam)(versions("v1.4", "v2.0"))
    assert state.default == "lts" and b'href="lts/"' in root_files(state)["index.html"]
    after = follow_rules(fam)(state.without_line("1.4"))
    assert after.alias("lts") is None
    assert b'href="2.0/"' in root_files(after)["index.html"]  # a default naming nothing: the newest


def test_an_alias_cannot_take_a_versions_name(tmp_path: Path) -> None:
    fam = family(tmp_path, aliases={"2.0": "newest"})
    with pytest.raises(ConfigError, match=r"2\.0"):
        follow_rules(fam)(versions("v1.4", "v2.0"))


def test_the_root_lists_every_version_newest_first_with_its_aliases(tmp_path: Path) -> None:
    state = follow_rules(family(tmp_path))(versions("v1.10", "v1.9", "v1.2"))
    listed = root_files(state)["versions.json"].decode()
    assert listed.index('"1.10"') < listed.index('"1.9"') < listed.index('"1.2"')  # not text order
    assert '"aliases": [\n      "latest"\n    ]' in listed


def test_the_state_a_root_release_records_reads_back_and_a_tampered_one_is_refused(tmp_path: Path) -> None:
    root = MemoryTarget(name="docs")
    state = follow_rules(family(tmp_path))(versions("v1.4", "v2.0"))
    write_state(root, "r1", state)
    assert read_state(root, "r1", "versions") == state
    assert read_state(root, None, "versions") == FamilyState()  # before the first root release
    text = root.meta["family/r1.json"].decode().replace('"version": "2.0"', '"version": "../../etc"')
    root.meta["family/r1.json"] = text.encode()
    with pytest.raises(TargetError, match=r"family/r1\.json"):
        read_state(root, "r1", "versions")


# --- previews: which refs, and expiry -------------------------------------------------------------


def test_preview_refs_are_namespaced_and_clashing_branches_are_left_alone() -> None:
    refs = {
        "refs/heads/main": "a" * 40,
        "refs/heads/Feature/X": "b" * 40,
        "refs/heads/feature-x": "c" * 40,
        "refs/heads/pr-8": "d" * 40,
        "refs/pull/8/head": "e" * 40,
    }
    found = match_previews(refs, ("branch:*", "pull:*"))
    assert found.wanted["pr-8"] == ("pull/8", "e" * 40)  # a branch named pr-8 never takes it
    assert found.wanted["br-pr-8"] == ("pr-8", "d" * 40)
    assert "br-feature-x" not in found.wanted
    assert found.clashes["br-feature-x"] == ("refs/heads/Feature/X", "refs/heads/feature-x")


def test_previews_expire_when_their_branch_is_gone_or_they_are_too_old(tmp_path: Path) -> None:
    fam = family(tmp_path, "previews", preview_max_age_days=14)
    fresh, stale = "2023-11-14T00:00:00Z", "2023-10-01T00:00:00Z"
    state = FamilyState(
        "previews", (Line("br-a", "a", updated_at=fresh), Line("br-b", "b", updated_at=stale))
    )
    state = state.with_line(Line("br-gone", "gone", updated_at=fresh))
    now = 1_699_920_000.0 + DAY  # 2023-11-15
    wanted = {"br-a": ("a", "1" * 40), "br-b": ("b", "2" * 40)}
    assert sorted(_expired(fam, state, wanted, now)) == ["br-b", "br-gone"]
    never = family(tmp_path, "previews", preview_max_age_days=0)
    assert _expired(never, state, wanted, now) == ["br-gone"]


# --- retiring a line: the transaction's retire mode ----------------------------------------------


@pytest.fixture
def root_and_line(tmp_path: Path) -> tuple[MemoryTarget, MemoryTarget]:
    root, line = MemoryTarget(name="docs"), MemoryTarget(name="docs/1.4")
    publish(root, site(tmp_path, "root"))
    publish(line, site(tmp_path, "v1.4", {"index.html": "<p>1.4</p>", "a.css": "a", "b.css": "b"}))
    return root, line


def retire(root: Target, line: Target, rules: Rules | None = None) -> int:
    with Transaction(root, rules or Rules(), "retire") as tx:
        return tx.retire(line, "version 1.4")


def test_retiring_a_line_empties_it_and_the_roots_history_says_who_removed_what(
    root_and_line: tuple[MemoryTarget, MemoryTarget],
) -> None:
    root, line = root_and_line
    served = root.served()
    assert retire(root, line) == 3  # the files the line served
    assert line.live is None and line.releases == {} and line.meta == {}
    assert root.served() == served  # the root's own release is untouched
    entry = read_history(root)[-1]
    assert entry.action == "retire" and entry.removed == 3
    assert entry.note.startswith("removed version 1.4 (3 files)") and entry.deployed_by


def test_retiring_obeys_max_delete_and_a_held_root_unless_forced(
    root_and_line: tuple[MemoryTarget, MemoryTarget],
) -> None:
    root, line = root_and_line
    before = (dict(line.releases), dict(line.meta), line.live)
    with pytest.raises(PlanRefused, match=r"removing version 1.4 deletes 3 files \(max_delete = 2\)"):
        retire(root, line, Rules(max_delete=2))
    ctl.update_control(root, root.name, ctl.suspended("release freeze"))
    with pytest.raises(PlanRefused, match=r"release freeze.*--force to remove version 1\.4"):
        retire(root, line)
    assert (dict(line.releases), dict(line.meta), line.live) == before
    retire(root, line, Rules(force=True))
    assert line.live is None and read_history(root)[-1].action == "retire"


def test_a_dry_run_retire_changes_nothing_and_a_crash_is_finished_by_the_next_run(
    root_and_line: tuple[MemoryTarget, MemoryTarget],
) -> None:
    root, line = root_and_line
    before = (dict(line.releases), dict(line.meta), line.live, dict(root.meta))
    retire(DryRun(root), DryRun(line))
    assert (dict(line.releases), dict(line.meta), line.live, dict(root.meta)) == before

    line.fail_at.add("retire")  # the delete dies halfway: the line is still there
    with pytest.raises(TargetError, match="injected failure at retire"):
        retire(root, line)
    assert line.live is not None and read_history(root)[-1].action != "retire"
    line.fail_at.clear()
    retire(root, line)  # the next run finds it and finishes
    assert line.live is None and read_history(root)[-1].action == "retire"
