"""Names are validated in one place (:mod:`sitedeploy.names`), on every path they arrive by
(issue 21, findings 6, 10, 11, 15, 16).

Property tests over arbitrary text: whatever is accepted as a site, version, alias or preview
name — from deploy.toml, a commit's tree, git refs or a target's state — is one plain path
segment, and what the family state stores round-trips. The end-to-end tests drive the real
paths: a tree entry ``sites/..`` and a folder ``sites/.lib``, a state naming ``../..`` on a
target, an alias named like a version, and preview refs that would share a slug.
"""

from __future__ import annotations

import json
import os
import posixpath
import string
import unicodedata
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitedeploy import commands, names
from sitedeploy import config as config_mod
from sitedeploy.errors import ConfigError, StateDamaged
from sitedeploy.versions import mike
from sitedeploy.versions import previews as pv
from sitedeploy.versions.naming import branch_slug, versions_from_refs
from sitedeploy.versions.previews import match_previews
from sitedeploy.versions.state import Alias, FamilyState, Line
from tests.fixtures.agent import AgentEnv
from tests.fixtures.git import ContentRepo, write_config

from .helpers import _git

PLAIN = string.ascii_letters + string.digits + "._+-"
hostile = st.one_of(
    st.text(max_size=120),
    st.text(alphabet=PLAIN + "/\\\n\r\t\0 ~%:", max_size=40),
    st.sampled_from(["..", ".", ".lib", "../..", "a/..", "1.0\n", "x\x00y", "index.html", "a" * 101]),
)
plain = st.text(alphabet=PLAIN, min_size=1, max_size=30).filter(names.is_line_name)


def assert_one_segment(name: str) -> None:
    assert name not in ("", ".", "..") and not name.startswith(".")
    assert PurePosixPath(name).parts == (name,) and posixpath.normpath(name) == name
    assert "/" not in name and "\\" not in name and len(name) <= names.MAX_LENGTH
    assert all(unicodedata.category(c)[0] not in "CZ" for c in name), repr(name)  # no control, space
    assert name.isascii()


@given(hostile)
def test_an_accepted_site_name_is_one_plain_segment(name: str) -> None:
    if names.is_name(name):
        assert_one_segment(name)
    else:
        with pytest.raises(ConfigError) as refused:
            names.check_site_folders([name], "deploy.toml: commit 1234abcd")
        assert "\n" not in refused.value.message.replace(repr(name), "")


@given(hostile)
def test_an_accepted_version_alias_or_preview_name_is_one_plain_segment(name: str) -> None:
    if names.is_line_name(name):
        assert_one_segment(name)
        assert name not in names.RESERVED
        assert names.check_line_name(name, "alias") == name
    else:
        with pytest.raises(ConfigError):
            names.check_line_name(name, "alias")


@settings(max_examples=60)
@given(hostile, st.sampled_from(["alias", "default", "site", "target"]))
def test_deploy_toml_accepts_only_plain_names(name: str, key: str) -> None:
    target: dict[str, object] = {"type": "local", "path": "public", "versions": "tag:v*"}
    raw: dict[str, object] = {"targets": {"docs": target}}
    if key == "alias":
        target["aliases"] = {name: "newest"}
    elif key == "default":
        target["default_version"] = name
    elif key == "site":
        raw["sites"] = [{"name": name, "path": "sites/x"}]
    else:
        raw["targets"] = {name: target}
    usable = names.is_line_name(name) if key in ("alias", "default") else names.is_name(name)
    try:
        config_mod.from_dict(raw, Path("/x/deploy.toml"))
    except ConfigError as exc:
        assert not usable, exc.message
        assert "\n" not in exc.message.replace(repr(name), "")
    else:
        assert usable, name


@given(st.text(max_size=80))
def test_a_branch_slug_is_a_plain_name_of_its_own_kind(branch: str) -> None:
    made = branch_slug(branch)
    assert names.is_line_name(made) and made.startswith("br-")
    assert made == branch_slug(branch)  # from the branch alone, not first-come


@given(st.dictionaries(st.text(alphabet=PLAIN + "/", min_size=1, max_size=20), st.just("1" * 40), max_size=8))
def test_versions_from_any_tags_have_plain_names(tags: dict[str, str]) -> None:
    refs = {f"refs/tags/{t}": sha for t, sha in tags.items()}
    for fmt in ("{major}.{minor}", "{version}", "{name}"):
        for name in versions_from_refs(refs, "tag:*", fmt, "{version}"):
            assert_one_segment(name)


branches = st.text(alphabet=string.ascii_letters + string.digits + "/-_.", min_size=1, max_size=12)


@given(st.lists(branches, max_size=8), st.lists(st.integers(1, 50), max_size=4))
def test_every_preview_ref_gets_a_namespaced_slug_or_a_named_clash(
    heads: list[str], pulls: list[int]
) -> None:
    refs = {f"refs/heads/{b}": "1" * 40 for b in heads}
    refs |= {f"refs/pull/{n}/head": "2" * 40 for n in pulls}
    matched = match_previews(refs, ("branch:*", "pull:*"))
    for slug, (label, _) in matched.wanted.items():
        assert names.is_line_name(slug)
        assert slug == (f"pr-{label[5:]}" if label.startswith("pull/") else branch_slug(label))
    assert set(matched.wanted).isdisjoint(matched.clashes)
    for slug, clashing in matched.clashes.items():
        assert len(clashing) > 1 and all(branch_slug(r.removeprefix("refs/heads/")) == slug for r in clashing)
    assert {f"pr-{n}" for n in pulls} <= set(matched.wanted)  # a branch never takes a request's URL


def test_branches_named_like_requests_and_like_each_other() -> None:
    refs = {
        "refs/heads/pr-8": "a" * 40,
        "refs/heads/pull/7": "b" * 40,
        "refs/pull/7/head": "c" * 40,
        "refs/pull/8/head": "d" * 40,
        "refs/heads/Feature/X": "e" * 40,
        "refs/heads/feature-x": "f" * 40,
    }
    matched = match_previews(refs, ("branch:*", "pull:*"))
    assert matched.wanted["pr-7"] == ("pull/7", "c" * 40) and matched.wanted["pr-8"] == ("pull/8", "d" * 40)
    assert matched.wanted["br-pr-8"] == ("pr-8", "a" * 40)
    assert matched.wanted["br-pull-7"] == ("pull/7", "b" * 40)
    assert matched.clashes == {"br-feature-x": ("refs/heads/Feature/X", "refs/heads/feature-x")}


# --- state read back from a target ------------------------------------------------------------


@settings(max_examples=200)
@given(st.lists(plain, max_size=5, unique=True), st.lists(plain, max_size=3, unique=True))
def test_a_family_state_round_trips(versions: list[str], aliases: list[str]) -> None:
    aliases = [a for a in aliases if a not in versions]
    lines = tuple(Line(v, f"title {v}", f"v{v}") for v in versions)
    pointed = tuple(Alias(a, versions[0]) for a in aliases) if versions else ()
    state = FamilyState("versions", lines, pointed, versions[0] if versions else None)
    assert FamilyState.from_json(state.to_json()) == state


@settings(max_examples=50)
@given(st.lists(plain, min_size=1, max_size=4, unique=True), plain)
def test_a_family_state_round_trips_through_a_real_target(versions: list[str], alias: str) -> None:
    import tempfile

    from sitedeploy.targets.local import LocalTarget
    from sitedeploy.versions.state import read_state, write_state

    aliases = () if alias in versions else (Alias(alias, versions[-1], "newest"),)
    state = FamilyState("previews", tuple(Line(v, v, f"feature/{v}") for v in versions), aliases)
    with tempfile.TemporaryDirectory() as folder:
        target = LocalTarget("docs", Path(folder))
        write_state(target, "r1", state)
        assert read_state(target, "r1", "previews") == state


@given(hostile, st.sampled_from(["line", "alias", "alias target", "default"]))
def test_a_state_naming_anything_else_is_refused(name: str, where: str) -> None:
    raw = {"kind": "versions", "lines": [{"name": "1.0", "title": "1.0"}], "aliases": [], "default": None}
    if where == "line":
        raw["lines"] = [{"name": name, "title": "x"}]
    elif where == "alias":
        raw["aliases"] = [{"name": name, "version": "1.0"}]
    elif where == "alias target":
        raw["aliases"] = [{"name": "latest", "version": name}]
    else:
        raw["default"] = name
    data = json.dumps(raw).encode()
    if names.is_line_name(name) and not (where == "alias" and name == "1.0"):
        FamilyState.from_json(data)
    else:
        with pytest.raises(ValueError):
            FamilyState.from_json(data)


def test_an_alias_never_takes_a_versions_name() -> None:
    state = FamilyState("versions", (Line("1.0", "1.0"), Line("2.0", "2.0")))
    with pytest.raises(ConfigError, match=r"alias '1\.0' .*has the name of a version"):
        state.with_alias(Alias("1.0", "2.0"))
    with pytest.raises(ConfigError, match="has the name of a version"):
        state.with_alias(Alias("latest", "2.0")).with_line(Line("latest", "latest"))


def test_state_damaged_is_one_line_naming_target_file_and_entry(tmp_path: Path) -> None:
    from sitedeploy.targets.local import LocalTarget
    from sitedeploy.versions.state import read_state

    t = LocalTarget("docs", tmp_path / "t")
    t.write_meta(
        "family/r1.json",
        json.dumps({"kind": "previews", "lines": [{"name": "../..", "title": "x"}]}).encode(),
    )
    with pytest.raises(StateDamaged) as refused:
        read_state(t, "r1", "previews")
    message = refused.value.message
    assert "\n" not in message and "target 'docs'" in message and "family/r1.json" in message
    assert "'../..'" in message


# --- end to end: a commit's tree, a target's state, a mike branch, preview refs ------------------


def _commit_sites(repo: ContentRepo, folders: list[bytes]) -> str:
    """A commit whose ``sites/`` holds a static site under each name, made with ``git mktree``
    (a hostile server accepts a tree entry ``..``; git's own index would not)."""
    blob = _git(repo, ["hash-object", "-w", "--stdin"], b"<!doctype html><title>x</title><p>x</p>\n")
    site = _git(repo, ["mktree", "-z"], b"100644 blob " + blob + b"\tindex.html\0")
    sites = _git(
        repo, ["mktree", "-z"], b"".join(b"040000 tree " + site + b"\t" + f + b"\0" for f in folders)
    )
    root = _git(repo, ["mktree", "-z"], b"040000 tree " + sites + b"\tsites\0")
    head = _git(repo, ["rev-parse", "HEAD"], b"")
    commit = _git(repo, ["commit-tree", root.decode(), "-p", head.decode(), "-m", "hostile"], b"")
    _git(repo, ["update-ref", "refs/heads/main", commit.decode()], b"")
    return commit.decode()


@pytest.mark.parametrize("folder", [b"..", b".lib"])
def test_a_site_folder_that_is_not_a_name_is_refused(
    tmp_path: Path, content_repo: ContentRepo, folder: bytes
) -> None:
    ops = tmp_path / "ops"
    ops.mkdir()
    config = config_mod.load(write_config(ops, content_repo.path, sites=""), tmp_path / "state")
    assert commands.deploy(config)[0].outcome == "deployed"  # sites/docs and sites/landing
    kept = sorted(p.relative_to(tmp_path) for p in (tmp_path / "state").rglob("*"))
    sha = _commit_sites(content_repo, [folder, b"docs"])
    with pytest.raises(ConfigError) as refused:
        commands.deploy(config)
    message = refused.value.message
    assert "\n" not in message and f"commit {sha[:8]}" in message
    assert f"sites/{folder.decode()!r} cannot be a site" in message
    after = {p.relative_to(tmp_path) for p in (tmp_path / "state").rglob("*")}
    assert set(kept) <= after  # nothing of the state folder was removed


def test_previews_deploy_refuses_a_state_that_names_a_folder_outside(agent_env: AgentEnv) -> None:
    env = agent_env
    config = env.config(target='previews = "branch:feature/*"\n')
    env.remote.static_site("a")
    env.remote.commit("a")
    env.remote.git("branch", "feature/a")
    env.remote.push("main", "feature/a")
    assert [r.outcome for r in pv.deploy_previews(config)] == ["deployed"]
    root = env.public / "previews"
    victim = env.root / "victim"
    (victim / "keep").mkdir(parents=True)
    name = os.path.relpath(victim, root / "lines")  # ../../../victim
    live = os.readlink(root / "current").rsplit("/", 1)[-1]
    state_file = root / ".sitedeploy" / "family" / f"{live}.json"
    state = json.loads(state_file.read_text())
    state["lines"].append({"name": name, "title": "x", "ref": "gone", "added_at": "", "updated_at": ""})
    state_file.write_text(json.dumps(state))

    with pytest.raises(StateDamaged) as refused:
        pv.deploy_previews(config)
    message = refused.value.message
    assert "\n" not in message and "target 'site:previews'" in message and repr(name) in message
    assert (victim / "keep").is_dir()


def test_import_mike_refuses_an_alias_named_like_a_version(agent_env: AgentEnv) -> None:
    env = agent_env
    env.remote.git("checkout", "-q", "--orphan", "gh-pages")
    env.remote.git("rm", "-rfq", "--ignore-unmatch", ".")
    listed = [{"version": "2.0", "title": "2.0", "aliases": ["1.0"]}, {"version": "1.0", "title": "1.0"}]
    env.remote.write("versions.json", json.dumps(listed))
    for version in ("1.0", "2.0"):
        env.remote.write(
            f"{version}/index.html", f"<!doctype html><title>{version}</title><p>{version}</p>\n"
        )
    env.remote.commit("mike deploy")
    env.remote.push("gh-pages")
    config = env.config(target='versions = "tag:v*"\n')
    with pytest.raises(ConfigError) as refused:
        mike.import_mike(config)
    message = refused.value.message
    assert "\n" not in message and "alias '1.0' of version '2.0' is also the name of a version" in message
    assert not (env.public / "lines").exists()


def test_previews_deploy_names_both_refs_of_a_clash_and_keeps_requests_apart(agent_env: AgentEnv) -> None:
    env = agent_env
    config = env.config(target='previews = ["branch:*", "pull:*"]\n')
    env.remote.static_site("main")
    env.remote.commit("main")
    for branch in ("Feature/X", "feature-x", "pr-8"):
        env.remote.git("branch", branch)
    env.remote.push("main", "Feature/X", "feature-x", "pr-8", "HEAD:refs/pull/8/head")
    results = {r.name: r for r in pv.deploy_previews(config)}
    assert {n: r.outcome for n, r in results.items()} == {
        "br-main": "deployed",
        "br-pr-8": "deployed",
        "pr-8": "deployed",
        "br-feature-x": "failed",
    }
    detail = results["br-feature-x"].detail
    assert "refs/heads/Feature/X and refs/heads/feature-x both make the preview slug" in detail
    assert not (env.public / "previews" / "lines" / "br-feature-x").exists()
