"""The agent with versions and previews, against a real bare remote with real tags and branches.

A new tag builds its version and nothing else; a moved tag rebuilds its version only; an idle
tick visits nothing; a branch gets a preview with a noindex tag and its URL in the
notification, is updated when pushed again, and removed when deleted or too old.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sitedeploy.agent.loop import Agent
from sitedeploy.versions import previews as pv
from sitedeploy.versions.api import mirror_refs
from sitedeploy.versions.layout import Family
from tests.fixtures.agent import AgentEnv


def tag(env: AgentEnv, version: str, name: str) -> str:
    env.remote.static_site(version)
    sha = env.remote.commit(version)
    env.remote.git("tag", "-f", name)
    env.remote.push("main", "--tags", "--force")
    return sha


def test_agent_builds_new_tags_rebuilds_moved_ones_and_never_the_others(agent_env: AgentEnv) -> None:
    env = agent_env
    tag(env, "one-oh", "v1.0.0")
    agent = Agent(env.config(target='versions = "tag:v*"\n'), env.log())
    agent.tick()
    lines = env.public / "lines"
    assert "one-oh" in (env.public / "current" / "1.0" / "index.html").read_text()
    first = os.readlink(lines / "1.0" / "current")

    assert agent.tick().visited == []  # idle: the tags did not move
    tag(env, "one-one", "v1.1.0")
    report = agent.tick()
    assert report.deployed == ["site/1.1"]
    assert os.readlink(lines / "1.0" / "current") == first
    assert "one-one" in (env.public / "current" / "latest" / "index.html").read_text()

    tag(env, "one-oh fixed", "v1.0.0")  # the tag moved: that version alone is rebuilt
    assert agent.tick().deployed == ["site/1.0"]
    assert "one-oh fixed" in (env.public / "current" / "1.0" / "index.html").read_text()
    assert [e["line"] for e in env.events("version-deployed")] == ["1.0", "1.1", "1.0"]


def test_preview_created_updated_and_removed_with_its_branch(agent_env: AgentEnv) -> None:
    env = agent_env
    keys = 'previews = "branch:feature/*"\npreview_url = "https://preview.example.com/{slug}/"\n'
    config = env.config(target=keys)
    agent = Agent(config, env.log())
    env.remote.git("checkout", "-q", "-b", "feature/Login")
    env.remote.static_site("login draft")
    env.remote.commit("draft")
    env.remote.push("feature/Login")
    agent.tick()
    preview = env.public / "previews" / "current" / "br-feature-login" / "index.html"
    text = preview.read_text()
    assert "login draft" in text and '<meta name="robots" content="noindex, nofollow">' in text
    assert "Disallow: /" in (env.public / "previews" / "current" / "robots.txt").read_text()
    sent = [n.message for n in agent.notifier.sent if "preview" in n.message]
    assert any("https://preview.example.com/br-feature-login/" in m for m in sent)
    assert env.live_commit() is not None  # the target's own site still follows main

    env.remote.static_site("login final")
    env.remote.commit("final")
    env.remote.push("feature/Login")
    agent.tick()
    assert "login final" in preview.read_text()

    env.remote.git("checkout", "-q", "main")
    env.remote.git("push", "-q", "origin", "--delete", "feature/Login")
    agent.tick()
    assert not preview.exists()
    assert not (env.public / "previews" / "lines" / "br-feature-login").exists()


def test_an_old_preview_is_removed_and_comes_back_only_when_its_branch_moves(agent_env: AgentEnv) -> None:
    env = agent_env
    config = env.config(target='previews = "branch:*"\npreview_max_age_days = 1\n')
    env.remote.git("branch", "draft")
    env.remote.push("draft")
    family = Family.of(config, "site", "previews")
    from sitedeploy.commands import synced_source

    source = synced_source(config)
    first = pv.sync_previews(family, source, mirror_refs(source))
    assert {r.name: r.outcome for r in first} == {"br-draft": "deployed", "br-main": "deployed"}
    later = time.time() + 2 * 86400
    expired = pv.sync_previews(family, source, mirror_refs(source), now=later)
    assert {r.name for r in expired if r.outcome == "removed"} == {"br-draft", "br-main"}
    assert pv.sync_previews(family, source, mirror_refs(source), now=later) == []
    env.remote.static_site("draft 2")
    env.remote.git("checkout", "-q", "draft")
    env.remote.commit("draft moves")
    env.remote.push("draft")
    source.sync()
    back = pv.sync_previews(family, source, mirror_refs(source), now=later)
    assert [(r.name, r.outcome) for r in back] == [("br-draft", "deployed")]
    assert Path(env.public / "previews" / "current" / "br-draft" / "index.html").exists()


def test_pull_and_merge_requests_get_previews_from_their_refs(agent_env: AgentEnv) -> None:
    """GitHub keeps a pull request's head at ``refs/pull/N/head``, GitLab a merge request's at
    ``refs/merge-requests/N/head``: made here on the bare remote exactly as those hosts do."""
    env = agent_env
    keys = 'previews = ["branch:feature/*", "pull:*"]\npreview_url = "https://pr.example.com/{slug}/"\n'
    agent = Agent(env.config(target=keys), env.log())
    env.remote.git("checkout", "-q", "-b", "fork-work")  # a fork's branch: not on the remote
    env.remote.static_site("pull request twelve")
    env.remote.commit("from a fork")
    env.remote.push("HEAD:refs/pull/12/head")
    env.remote.static_site("merge request three")
    env.remote.commit("from gitlab")
    env.remote.push("HEAD:refs/merge-requests/3/head")
    agent.tick()
    current = env.public / "previews" / "current"
    assert "pull request twelve" in (current / "pr-12" / "index.html").read_text()
    assert "merge request three" in (current / "mr-3" / "index.html").read_text()
    assert not (current / "fork-work").exists()  # not a branch of the remote, not matched
    sent = " ".join(n.message for n in agent.notifier.sent)
    assert "https://pr.example.com/pr-12/" in sent and "https://pr.example.com/mr-3/" in sent

    env.remote.git("push", "-q", "origin", "--delete", "refs/pull/12/head")  # as when a PR is purged
    agent.tick()
    assert not (current / "pr-12").exists()
    assert (current / "mr-3" / "index.html").exists()


def test_preview_specs_are_matched_by_kind() -> None:
    refs = {
        "refs/heads/feature/a": "1" * 40,
        "refs/heads/main": "2" * 40,
        "refs/pull/7/head": "3" * 40,
        "refs/pull/7/merge": "4" * 40,  # GitHub's test merge: not what the author pushed
        "refs/pull/40/head": "5" * 40,
        "refs/merge-requests/2/head": "6" * 40,
    }
    assert pv.preview_refs(refs, ("pull:*",)) == {
        "pr-7": ("pull/7", "3" * 40),
        "pr-40": ("pull/40", "5" * 40),
        "mr-2": ("merge-requests/2", "6" * 40),
    }
    assert list(pv.preview_refs(refs, ("branch:feature/*", "pull:4*"))) == ["br-feature-a", "pr-40"]


def test_a_preview_removal_obeys_max_delete_dry_run_and_force_and_is_in_history(agent_env: AgentEnv) -> None:
    from sitedeploy.errors import PlanRefused
    from sitedeploy.release.records import read_history
    from sitedeploy.targets.local import LocalTarget

    env = agent_env
    config = env.config(target='previews = "branch:feature/*"\nmax_delete = 1\n')
    agent = Agent(config, env.log())
    env.remote.git("checkout", "-q", "-b", "feature/Login")
    env.remote.static_site("login draft")
    env.remote.commit("draft")
    env.remote.push("feature/Login")
    agent.tick()
    preview = env.public / "previews" / "current" / "br-feature-login" / "index.html"
    assert preview.exists()
    with pytest.raises(
        PlanRefused, match=r"removing preview br-feature-login deletes \d+ files \(max_delete = 1\)"
    ):
        pv.delete_preview(config, None, "br-feature-login", dry_run=True)
    assert (
        pv.delete_preview(config, None, "br-feature-login", dry_run=True, force=True) > 1 and preview.exists()
    )

    env.remote.git("checkout", "-q", "main")
    env.remote.git("push", "-q", "origin", "--delete", "feature/Login")
    agent.tick()  # the branch is gone, but max_delete holds the removal: still served, told
    assert preview.exists()
    assert any("br-feature-login held" in n.message for n in agent.notifier.sent), agent.notifier.sent

    assert pv.delete_preview(config, None, "br-feature-login", force=True) > 1
    assert not preview.exists() and not (env.public / "previews" / "lines" / "br-feature-login").exists()
    entry = read_history(LocalTarget("previews", env.public / "previews"))[-1]
    assert entry.action == "retire" and entry.note.startswith("removed preview br-feature-login (")
