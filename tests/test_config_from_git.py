"""Git decides: the build settings of a release come from the deploy.toml of its commit.

Machine settings (source, targets, agent, state folder) come from the file sitedeploy runs
with, which may live outside the repository (an operator's ``/etc/sitedeploy/deploy.toml``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner, Result

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.agent.loop import Agent
from sitedeploy.build.release_tree import MARKER
from sitedeploy.cli.main import cli
from sitedeploy.config.from_git import build_config_at, differing_keys, with_build_tables
from tests.fixtures.agent import AgentEnv
from tests.fixtures.git import ContentRepo

SITES = (
    '[[sites]]\nname = "docs"\npath = "sites/docs"\nmount = "{docs}"\n\n'
    '[[sites]]\nname = "landing"\npath = "sites/landing"\nmount = "/"\n\n'
    "[images]\nenabled = false\n"
)
MACHINE = '[source]\nrepo = "{repo}"\n\n[targets.local]\ntype = "local"\npath = "public"\nkeep_releases = 3\n'


def sd(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def live_marker(public: Path) -> dict[str, object]:
    return json.loads((public / "current" / MARKER).read_text())  # type: ignore[no-any-return]


def in_repo_config(content_repo: ContentRepo, docs_mount: str = "/docs/") -> Path:
    path = content_repo.write("deploy.toml", MACHINE.format(repo=".") + SITES.format(docs=docs_mount))
    content_repo.commit(f"docs at {docs_mount}")
    return path


def test_an_uncommitted_config_edit_is_not_deployed_and_is_named(content_repo: ContentRepo) -> None:
    config = in_repo_config(content_repo)
    config.write_text(config.read_text().replace('mount = "/docs/"', 'mount = "/handbook/"'))

    result = sd(config, "deploy")

    assert result.exit_code == 0, result.output
    public = content_repo.path / "public"
    assert live_marker(public)["sites"] == {"docs": "/docs/", "landing": "/"}
    assert (public / "current/docs/guide/index.html").is_file()
    [warning] = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert "uncommitted build settings (sites[0].mount)" in warning
    assert "deploy.toml at commit" in warning


def test_uncommitted_page_edits_are_named_not_silently_ignored(content_repo: ContentRepo) -> None:
    config = in_repo_config(content_repo)
    assert sd(config, "deploy").exit_code == 0
    content_repo.write("sites/docs/docs/index.md", "# Edited, not committed\n")
    content_repo.write("sites/landing/new.html", "<p>untracked</p>\n")
    content_repo.write("notes.txt", "outside the sites' paths: not counted\n")

    again = sd(config, "deploy")

    assert again.exit_code == 0 and "is already live" in again.stdout, again.output
    [warning] = [line for line in again.stderr.splitlines() if "uncommitted changes" in line]
    assert "in 2 file(s)" in warning and "sites/docs/docs/index.md" in warning
    assert "only commits do" in warning


def test_an_operator_file_outside_the_repo_keeps_machine_settings_only(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    in_repo_config(content_repo, docs_mount="/guide-book/")
    operator = tmp_path / "etc" / "deploy.toml"
    operator.parent.mkdir()
    operator.write_text(MACHINE.format(repo=content_repo.path).replace('"public"', f'"{tmp_path / "www"}"'))

    result = sd(operator, "deploy")

    assert result.exit_code == 0, result.output
    assert live_marker(tmp_path / "www")["sites"] == {"docs": "/guide-book/", "landing": "/"}
    assert not (tmp_path / "etc" / "public").exists()
    assert "warning:" not in result.stderr  # the operator file sets no build settings


def test_a_committed_config_change_deploys_and_old_commits_rebuild_with_their_own(
    content_repo: ContentRepo,
) -> None:
    config_path = in_repo_config(content_repo, "/docs/")
    old = content_repo.git("rev-parse", "HEAD")
    assert sd(config_path, "deploy").exit_code == 0
    in_repo_config(content_repo, "/handbook/")

    assert sd(config_path, "deploy").exit_code == 0
    assert live_marker(content_repo.path / "public")["sites"] == {"docs": "/handbook/", "landing": "/"}

    config = config_mod.load(config_path)
    rebuilt = commands.build(config, ref=old)  # as a rollback to a pruned release does
    assert (rebuilt.root / "docs/guide/index.html").is_file()
    assert not (rebuilt.root / "handbook").exists()
    assert rebuilt.build_config["origin"] == f"deploy.toml at commit {old[:8]}"
    again = with_build_tables(config, rebuilt.build_config["tables"], "the release record")
    assert again.sites == build_config_at(config, commands.open_source(config), rebuilt.commit).sites


def test_a_broken_committed_config_fails_with_its_commit_named(content_repo: ContentRepo) -> None:
    config = in_repo_config(content_repo)
    assert sd(config, "deploy").exit_code == 0
    live = os.readlink(content_repo.path / "public/current")
    good = config.read_text()
    config.write_text(good + '[[sites]]\nname = "docs"\npath = "sites/landing"\nmounts = "/x/"\n')
    sha = content_repo.commit("a typo")
    config.write_text(good)  # the working copy is fine again; the commit is not

    result = sd(config, "deploy")

    assert result.exit_code == 2
    assert (
        f"deploy.toml at commit {sha[:8]}: sites[2].mounts: unknown key (did you mean 'mount'?)"
        in result.stderr
    )
    assert os.readlink(content_repo.path / "public/current") == live


def test_differing_keys_are_named_by_path() -> None:
    old = {"sites": [{"name": "a", "mount": "/"}], "images": {"widths": [480]}}
    new = {"sites": [{"name": "a", "mount": "/a/"}, {"name": "b"}], "images": {"widths": [480]}}
    assert differing_keys(old, new) == ["sites[0].mount", "sites[1].name"]


def test_the_running_agent_deploys_a_committed_config_change(agent_env: AgentEnv) -> None:
    env = agent_env
    agent = Agent(env.config(), env.log())  # the operator file: no build settings at all
    agent.tick()
    assert (env.public / "current/index.html").is_file()  # sites/web alone: mounted at /

    env.remote.write(
        "deploy.toml",
        '[[sites]]\nname = "web"\npath = "sites/web"\nmount = "/web/"\n[images]\nenabled = false\n',
    )
    sha = env.remote.commit_push("serve the site under /web/")
    report = agent.tick()

    assert report.deployed == ["site"], env.lines
    assert env.live_commit() == sha
    assert "v1" in env.live_text("web/index.html")
    assert not (env.public / "current/index.html").exists()
    assert agent.tick().visited == []  # applied, and remembered as applied
