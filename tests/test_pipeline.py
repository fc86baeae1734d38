"""The core pipeline end to end: real git, real MkDocs, the local target."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.build.release_tree import MARKER
from tests.fixtures.git import ContentRepo


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def live_dir(deploy_toml: Path) -> Path:
    return (deploy_toml.parent / "public" / "current").resolve()


def test_deploy_then_rollback_restores_the_previous_release_and_pins(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg = config_mod.load(deploy_toml)
    [first] = commands.deploy(cfg)
    tree_a = tree_bytes(live_dir(deploy_toml))
    assert b"Home v1" in tree_a["docs/index.html"]

    content_repo.add_mkdocs_site(version="v2")
    commit_b = content_repo.commit("second version")
    [second] = commands.deploy(cfg)
    assert second.commit.sha == commit_b and second.outcome == "deployed"
    assert b"Home v2" in (live_dir(deploy_toml) / "docs/index.html").read_bytes()

    [back] = commands.rollback(cfg)
    assert back.release == first.release
    assert tree_bytes(live_dir(deploy_toml)) == tree_a

    entries = commands.history(cfg)["local"]
    assert [e.action for e in entries] == ["rollback", "deploy", "deploy"]
    [st] = commands.status(cfg)
    assert st.commit == first.commit.sha and st.pinned is not None
    assert commit_b in st.bad_commits

    commands.resume(cfg)
    [st] = commands.status(cfg)
    assert st.pinned is None


def test_unchanged_files_of_a_new_release_are_hard_links(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg = config_mod.load(deploy_toml)
    [first] = commands.deploy(cfg)
    content_repo.write("sites/landing/index.html", "<!doctype html><h1>changed</h1>\n")
    content_repo.commit("edit the landing page")
    [second] = commands.deploy(cfg)
    assert second.stats is not None and second.stats.files_sent == 2  # the page and the deploy marker
    releases = deploy_toml.parent / "public" / "releases"
    old, new = releases / str(first.release), releases / str(second.release)
    css_old, css_new = (old / "docs/css/extra.css").stat(), (new / "docs/css/extra.css").stat()
    assert css_old.st_ino == css_new.st_ino
    assert (old / "landing/index.html").stat().st_ino != (new / "landing/index.html").stat().st_ino
    assert b"changed" not in (old / "landing/index.html").read_bytes()  # the old release never changes


def test_deploying_the_same_commit_again_changes_nothing(deploy_toml: Path) -> None:
    cfg = config_mod.load(deploy_toml)
    [first] = commands.deploy(cfg)
    [again] = commands.deploy(cfg)
    assert again.outcome == "unchanged" and again.release == first.release
    assert len(commands.history(cfg)["local"]) == 1


def test_building_a_commit_twice_is_byte_identical(deploy_toml: Path, tmp_path: Path) -> None:
    cfg = config_mod.load(deploy_toml)
    first = commands.build(cfg)
    snapshot = tree_bytes(first.root)
    shutil.rmtree(cfg.state_dir)  # no cache: build from scratch
    second = commands.build(cfg)
    assert tree_bytes(second.root) == snapshot
    assert any(name.endswith("sitemap.xml.gz") for name in snapshot)
    assert second.manifest == first.manifest


def test_a_change_under_one_site_does_not_rebuild_the_other(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg = config_mod.load(deploy_toml)
    commands.deploy(cfg)
    content_repo.write("sites/landing/style.css", "h1 { color: blue; }\n")
    content_repo.commit("restyle the landing page")
    built = commands.build(cfg)
    reused = {s.name: s.reused for s in built.sites}
    assert reused == {"docs": True, "landing": False}


def test_uncommitted_changes_never_deploy(deploy_toml: Path, content_repo: ContentRepo) -> None:
    content_repo.write("sites/landing/index.html", "<h1>draft, not committed</h1>")
    commands.deploy(config_mod.load(deploy_toml))
    assert b"draft" not in (live_dir(deploy_toml) / "landing/index.html").read_bytes()


def test_deploy_marker_names_the_commit(deploy_toml: Path, content_repo: ContentRepo) -> None:
    [result] = commands.deploy(config_mod.load(deploy_toml))
    marker = (live_dir(deploy_toml) / MARKER).read_text()
    assert result.commit.sha in marker


def test_dry_run_prints_the_plan_and_changes_nothing(deploy_toml: Path, content_repo: ContentRepo) -> None:
    cfg = config_mod.load(deploy_toml)
    commands.deploy(cfg)
    before = os.readlink(deploy_toml.parent / "public" / "current")
    content_repo.write("sites/landing/new.html", "<p>new</p>")
    content_repo.git("rm", "-q", "sites/landing/style.css")
    content_repo.commit("add and remove")
    [result] = commands.deploy(cfg, dry_run=True)
    assert result.outcome == "dry-run" and result.plan is not None
    assert "upload landing/new.html (new)" in result.plan.lines()
    assert "delete landing/style.css" in result.plan.lines()
    assert os.readlink(deploy_toml.parent / "public" / "current") == before
    assert len(commands.history(cfg)["local"]) == 1


def test_rollback_to_a_commit_that_is_no_longer_kept_rebuilds_it(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg = config_mod.load(deploy_toml)
    [first] = commands.deploy(cfg)
    for n in range(2, 6):  # keep_releases = 3: the first release is pruned
        content_repo.add_mkdocs_site(version=f"v{n}")
        content_repo.commit(f"version {n}")
        commands.deploy(cfg)
    assert first.release not in os.listdir(deploy_toml.parent / "public" / "releases")
    [back] = commands.rollback(cfg, to=first.commit.sha[:10])
    assert back.commit.sha == first.commit.sha
    assert b"Home v1" in (live_dir(deploy_toml) / "docs/index.html").read_bytes()
    assert commands.history(cfg)["local"][0].note == "rebuilt from git"


def test_pruning_keeps_the_live_release_and_the_rollback_candidate(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg = config_mod.load(deploy_toml)
    for n in range(1, 6):
        content_repo.add_mkdocs_site(version=f"v{n}")
        content_repo.commit(f"version {n}")
        commands.deploy(cfg)
    releases = sorted(os.listdir(deploy_toml.parent / "public" / "releases"))
    assert len(releases) == 3
    [st] = commands.status(cfg)
    assert st.release == releases[-1]
    [back] = commands.rollback(cfg)
    assert back.release == releases[-2]


def test_sites_are_discovered_under_sites_when_not_configured(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    ops = tmp_path / "ops2"
    ops.mkdir()
    from tests.fixtures.git import write_config

    cfg = config_mod.load(write_config(ops, content_repo.path, sites=""))
    commands.deploy(cfg)
    current = ops / "public" / "current"
    assert (current / "docs" / "index.html").is_file()
    assert (current / "landing" / "index.html").is_file()


def test_release_tree_matches_a_plain_mkdocs_build(
    deploy_toml: Path, content_repo: ContentRepo, tmp_path: Path
) -> None:
    import subprocess
    import sys

    commands.deploy(config_mod.load(deploy_toml))
    out = tmp_path / "plain"
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(out)],
        cwd=content_repo.path / "sites/docs",
        check=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": "0"},
    )
    cmp = filecmp.dircmp(out, live_dir(deploy_toml) / "docs")
    assert not cmp.left_only and not cmp.right_only


@pytest.mark.parametrize("keep", [1])
def test_keep_releases_below_two_is_refused(tmp_path: Path, keep: int) -> None:
    from sitedeploy.errors import ConfigError

    with pytest.raises(ConfigError, match="keep_releases must be at least 2"):
        config_mod.from_dict(
            {"targets": {"t": {"type": "local", "path": "x", "keep_releases": keep}}},
            tmp_path / "deploy.toml",
        )


def test_rollback_to_a_tag_of_a_kept_release_switches_without_rebuilding(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg = config_mod.load(deploy_toml)
    content_repo.git("tag", "v1")
    [first] = commands.deploy(cfg)
    content_repo.add_mkdocs_site(version="v2")
    content_repo.commit("v2")
    commands.deploy(cfg)
    [back] = commands.rollback(cfg, to="v1")
    assert back.release == first.release and back.stats is None  # switched, nothing staged


def test_the_kept_workspace_always_matches_the_commit(deploy_toml: Path, content_repo: ContentRepo) -> None:
    cfg = config_mod.load(deploy_toml)
    commands.deploy(cfg)
    workspace = cfg.state_dir / "workspaces" / "landing"
    (workspace / "index.html").write_text("<h1>edited behind our back</h1>")
    (workspace / "stray.html").write_text("<p>not in git</p>")
    content_repo.git("rm", "-q", "sites/landing/style.css")
    content_repo.write("sites/landing/new.css", "p {}\n")
    content_repo.commit("swap stylesheets")
    commands.deploy(cfg)
    live = sorted(p.name for p in (live_dir(deploy_toml) / "landing").iterdir())
    assert live == ["index.html", "new.css"]
    assert b"behind our back" not in (live_dir(deploy_toml) / "landing/index.html").read_bytes()
