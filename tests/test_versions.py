"""Versioned docs on a local target, with real git tags and real MkDocs builds.

What a docs team relies on: every matching tag is served at its version's folder, side by side;
publishing one version never touches another's files; aliases and the default are moved in
one atomic step (readers never get an error or a mixed page); each version has its own
history and rollback; a version an alias names cannot be deleted.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sitedeploy.cli.main import cli
from sitedeploy.config import load
from sitedeploy.versions import api
from sitedeploy.versions.naming import branch_slug, order_key, rule_target, tag_fields, versions_from_refs
from tests.fixtures.git import ContentRepo, write_config

SITE = '[[sites]]\nname = "docs"\npath = "sites/docs"\nmount = "/"\n'
VERSIONS = 'versions = "tag:v*"\naliases = { latest = "newest", stable = "newest-stable" }\n'


def sd(deploy_toml: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(deploy_toml), *args])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def tag_version(repo: ContentRepo, tag: str, *, extra_page: bool = False) -> str:
    """Commit the docs as ``tag`` says and tag the commit."""
    repo.add_mkdocs_site(version=tag)
    if extra_page:
        repo.write("sites/docs/docs/new.md", f"# New in {tag}\n")
    sha = repo.commit(f"docs for {tag}")
    repo.git("tag", tag)
    return sha


@pytest.fixture
def repo(tmp_path: Path) -> ContentRepo:
    repo = ContentRepo(tmp_path / "content")
    tag_version(repo, "v1.4.0")
    tag_version(repo, "v2.0.0")
    tag_version(repo, "v2.0.1")  # the newest patch serves 2.0
    tag_version(repo, "v2.1.0-rc.1")
    return repo


@pytest.fixture
def versioned(tmp_path: Path, repo: ContentRepo) -> Path:
    ops = tmp_path / "ops"
    ops.mkdir()
    return write_config(ops, repo.path, sites=SITE, extra=VERSIONS)


def served(deploy_toml: Path) -> Path:
    return deploy_toml.parent / "public" / "current"


def page(deploy_toml: Path, url: str) -> str:
    return (served(deploy_toml) / url.strip("/") / "index.html").read_text()


# --- naming rules (pure) -------------------------------------------------------------------------


def test_tags_become_versions_newest_patch_wins_and_rules_pick_aliases() -> None:
    refs = {
        "refs/tags/v2.1.3": "c213",
        "refs/tags/v2.1.10": "c2110",
        "refs/tags/v2.1.9": "c219",
        "refs/tags/v3.0.0-rc.1": "c3rc",
        "refs/tags/vintage": "x",
        "refs/heads/v9": "branch",
    }
    found = versions_from_refs(refs, "tag:v*", "{major}.{minor}", "Version {version}")
    assert sorted(found) == ["2.1", "3.0"]
    assert found["2.1"].ref == "v2.1.10" and found["2.1"].commit == "c2110"
    assert found["2.1"].title == "Version 2.1" and found["3.0"].prerelease
    assert rule_target("newest", found) == "3.0"
    assert rule_target("newest-stable", found) == "2.1"
    assert rule_target("2.1", found) == "2.1" and rule_target("9.9", found) is None
    patches = versions_from_refs(refs, "tag:v2.*", "{name}", "{version}")
    assert sorted(patches) == ["2.1.10", "2.1.3", "2.1.9"]
    assert tag_fields("release-4")["major"] == "4"
    assert order_key("2.0") > order_key("v1.4.2") and order_key("v2.0.0") > order_key("v2.0.0-rc.1")
    assert branch_slug("Feature/Login_Form") == "br-feature-login-form"
    assert branch_slug("pull/7") == "br-pull-7" and branch_slug("pr-8") == "br-pr-8"


# --- served side by side -------------------------------------------------------------------------


def test_three_versions_and_two_aliases_are_served_side_by_side(versioned: Path) -> None:
    results = json.loads(ok(sd(versioned, "versions", "deploy", "--json")).stdout)
    assert sorted((r["name"], r["ref"], r["outcome"]) for r in results) == [
        ("1.4", "v1.4.0", "deployed"),
        ("2.0", "v2.0.1", "deployed"),
        ("2.1", "v2.1.0-rc.1", "deployed"),
    ]
    assert "Home v1.4.0" in page(versioned, "1.4")
    assert "Home v2.0.1" in page(versioned, "2.0")
    assert "Home v2.1.0-rc.1" in page(versioned, "latest")
    assert "Home v2.0.1" in page(versioned, "stable")  # the newest tag without a pre-release suffix
    assert "Version v2.0.1" in page(versioned, "stable/guide")
    assert json.loads((served(versioned) / "versions.json").read_text()) == [
        {"version": "2.1", "title": "2.1", "aliases": ["latest"]},
        {"version": "2.0", "title": "2.0", "aliases": ["stable"]},
        {"version": "1.4", "title": "1.4", "aliases": []},
    ]
    assert 'url=latest/"' in (served(versioned) / "index.html").read_text()
    listed = json.loads(ok(sd(versioned, "--json", "versions", "list")).stdout)[0]
    assert listed["aliases"] == {"latest": "2.1", "stable": "2.0"} and listed["default"] == "latest"
    assert all(v["commit"] and v["release"] for v in listed["versions"])


def test_a_new_patch_touches_only_its_version_and_nothing_is_rebuilt_otherwise(
    versioned: Path, repo: ContentRepo
) -> None:
    ok(sd(versioned, "versions", "deploy"))
    lines = versioned.parent / "public" / "lines"
    before = {v: os.readlink(lines / v / "current") for v in ("1.4", "2.0", "2.1")}
    old_inode = (lines / "1.4" / "current" / "index.html").stat().st_ino
    again = json.loads(ok(sd(versioned, "--json", "versions", "deploy")).stdout)
    assert {r["outcome"] for r in again} == {"unchanged"}

    tag_version(repo, "v2.0.2", extra_page=True)
    results = json.loads(ok(sd(versioned, "--json", "versions", "deploy")).stdout)
    assert {r["name"]: r["outcome"] for r in results} == {
        "1.4": "unchanged",
        "2.0": "deployed",
        "2.1": "unchanged",
    }
    assert os.readlink(lines / "1.4" / "current") == before["1.4"]
    assert os.readlink(lines / "2.1" / "current") == before["2.1"]
    assert os.readlink(lines / "2.0" / "current") != before["2.0"]
    assert (lines / "1.4" / "current" / "index.html").stat().st_ino == old_inode
    assert "New in v2.0.2" in page(versioned, "stable/new")
    status = json.loads(ok(sd(versioned, "--json", "status")).stdout)[0]
    assert {v["version"]: v["aliases"] for v in status["versions"]["versions"]}["2.0"] == ["stable"]


def test_rollback_of_one_version_leaves_the_others(versioned: Path, repo: ContentRepo) -> None:
    ok(sd(versioned, "versions", "deploy"))
    repo.git("tag", "-f", "v1.4.0", tag_version(repo, "v1.4.1"))
    ok(sd(versioned, "versions", "deploy"))
    assert "Home v1.4.1" in page(versioned, "1.4")
    latest = page(versioned, "latest")
    rolled = ok(sd(versioned, "rollback", "--version", "1.4"))
    assert "pinned" in rolled.stdout
    assert "Home v1.4.0" in page(versioned, "1.4")
    assert page(versioned, "latest") == latest
    listed = json.loads(ok(sd(versioned, "--json", "versions", "list")).stdout)[0]
    assert {v["version"]: v["pinned"] for v in listed["versions"]} == {
        "2.1": False,
        "2.0": False,
        "1.4": True,
    }
    held = json.loads(sd(versioned, "--json", "versions", "deploy", "--version", "1.4").stdout)
    assert held[0]["outcome"] == "held" and "pinned" in held[0]["detail"]


def test_aliases_default_and_delete_rules(versioned: Path) -> None:
    ok(sd(versioned, "versions", "deploy"))
    ok(sd(versioned, "versions", "alias", "lts", "1.4"))
    assert "Home v1.4.0" in page(versioned, "lts")
    refused = sd(versioned, "versions", "delete", "1.4")
    assert refused.exit_code == 1 and "served as lts" in refused.stderr and "Traceback" not in refused.stderr
    rule = sd(versioned, "versions", "alias", "latest", "1.4")
    assert rule.exit_code == 2 and "follows the rule 'newest'" in rule.stderr
    ok(sd(versioned, "versions", "set-default", "stable"))
    assert 'url=stable/"' in (served(versioned) / "index.html").read_text()
    ok(sd(versioned, "versions", "unalias", "lts"))
    ok(sd(versioned, "versions", "delete", "1.4"))
    assert not (served(versioned) / "1.4").exists()
    assert not (versioned.parent / "public" / "lines" / "1.4").exists()
    again = json.loads(ok(sd(versioned, "--json", "versions", "deploy")).stdout)
    assert "1.4" not in {r["name"] for r in again}  # its tag did not move: it stays deleted
    assert [v["version"] for v in json.loads((served(versioned) / "versions.json").read_text())] == [
        "2.1",
        "2.0",
    ]
    history = json.loads(ok(sd(versioned, "--json", "history", "-n", "3")).stdout)
    assert [h["subject"] for h in history] == ["delete 1.4", "delete 1.4", "unalias lts"]  # the root's own
    retired = history[0]  # the line itself went through the transaction: who removed it, when
    assert retired["action"] == "retire" and retired["note"].startswith("removed version 1.4 (")
    assert retired["deployed_by"] and retired["removed"] > 0


# --- an alias moved under concurrent readers -----------------------------------------------------


def _readers(
    root: Path, stop: threading.Event, seen: list[str], errors: list[str]
) -> Iterator[threading.Thread]:
    def read() -> None:
        while not stop.is_set():
            for rel in ("latest/index.html", "latest/guide/index.html"):
                try:
                    text = (root / rel).read_text()
                except OSError as exc:
                    errors.append(f"{rel}: {exc}")
                    continue
                marks = {m for m in ("v1.4.0", "v2.0.1") if m in text}
                if len(marks) != 1 or "</html>" not in text:
                    errors.append(f"{rel}: mixed or partial page {marks}")
                seen.extend(marks)

    for _ in range(3):
        thread = threading.Thread(target=read)
        thread.start()
        yield thread


def test_alias_moves_under_concurrent_readers_without_errors_or_mixed_pages(
    tmp_path: Path, repo: ContentRepo
) -> None:
    ops = tmp_path / "ops2"
    ops.mkdir()
    toml = write_config(
        ops, repo.path, sites=SITE, extra='versions = "tag:v*"\naliases = {}\ndefault_version = "1.4"\n'
    )
    ok(sd(toml, "versions", "deploy"))
    ok(sd(toml, "versions", "alias", "latest", "1.4"))
    stop, seen, errors = threading.Event(), [], []
    threads = list(_readers(served(toml), stop, seen, errors))
    config = load(toml)
    try:
        for i in range(8):
            api.set_alias(config, None, "latest", "2.0" if i % 2 == 0 else "1.4")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert {"v1.4.0", "v2.0.1"} <= set(seen)
    assert "Home v1.4.0" in page(toml, "latest") and "Version v1.4.0" in page(toml, "latest/guide")


def test_versions_commands_on_an_unversioned_config_give_one_line(deploy_toml: Path) -> None:
    result = sd(deploy_toml, "versions", "list")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip() == (
        "error: deploy.toml: no target has a versions key; "
        'add versions = "tag:v*" to a [targets.<name>] table'
    )
    bad = deploy_toml.read_text() + 'versions = "v*"\n'
    deploy_toml.write_text(bad)
    result = sd(deploy_toml, "versions", "list")
    assert result.exit_code == 2 and 'versions must look like "tag:<pattern>"' in result.stderr
    deploy_toml.write_text(bad.replace('versions = "v*"', 'previews = ["branch:*", "pr:12"]'))
    result = sd(deploy_toml, "previews", "list")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert 'previews must look like "branch:<pattern>" or "pull:<pattern>"' in result.stderr


def test_a_plain_deploy_never_publishes_one_commit_over_a_versioned_root(versioned: Path) -> None:
    ok(sd(versioned, "versions", "deploy"))
    before = (served(versioned) / "versions.json").read_text()
    refused = sd(versioned, "deploy", "--target", "local")
    assert (
        refused.exit_code == 1 and "serves versions" in refused.stderr and "versions deploy" in refused.stderr
    )
    skipped = sd(versioned, "deploy")
    assert skipped.exit_code == 0, skipped.output
    assert (served(versioned) / "versions.json").read_text() == before
