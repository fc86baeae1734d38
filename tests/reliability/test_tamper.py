"""Tampering and drift: live files edited in place, deleted, added; state files truncated or
deleted. ``verify`` reports it, ``--repair`` and the agent's ``drift = "repair"`` restore
exactly the manifest (retained releases included), and every damaged state file gives one
line naming it instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.agent.loop import Agent
from sitedeploy.config import S3TargetConfig
from sitedeploy.errors import TargetError
from sitedeploy.release.manifest import scan
from sitedeploy.release.records import read_manifest
from sitedeploy.targets import open_target
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.agent import AgentEnv
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server, bucket_tree, publish_dir, write_tree
from tests.fixtures.sshd import SSHEnv, SSHServer, deploy_folder, make_site, open_ssh_target
from tests.reliability import report
from tests.reliability.trees import bytes_digests, digests, release_tree_matches, tree_digests


def tamper(current: Path) -> None:
    """Edit in place (through the hard link), delete, add."""
    with (current / "docs" / "css" / "base.css").open("a") as f:
        f.write("/* x */")
    (current / "landing" / "style.css").unlink()
    (current / "docs" / "evil.html").write_text("<p>added</p>")


def test_local_edit_delete_add_are_reported_and_repaired_exactly(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg = config_mod.load(deploy_toml)
    commands.deploy(cfg)
    content_repo.add_mkdocs_site(version="v2")
    content_repo.commit("v2")
    [live] = commands.deploy(cfg)
    current = deploy_toml.parent / "public" / "current"
    tamper(current)
    [found] = commands.verify(cfg)
    [drift] = found.drift
    assert (drift.changed, drift.missing, drift.extra) == (
        ["docs/css/base.css"],
        ["landing/style.css"],
        ["docs/evil.html"],
    )
    commands.verify(cfg, repair=True)
    with open_target("local", cfg.targets["local"], cfg) as t:
        manifest = read_manifest(t, str(live.release))
        assert manifest is not None and tree_digests(current) == digests(manifest)
        for rid in t.list_releases():  # the retained release sharing base.css was put back too
            assert release_tree_matches(t, rid, deploy_toml.parent / "public" / "releases" / rid)
    assert all(d.clean for d in commands.verify(cfg)[0].drift)
    report.row("tamper", "local: edit in place + delete + add -> reported, repaired exactly (all releases)")


def test_agent_drift_repair_restores_the_manifest(agent_env: AgentEnv) -> None:
    env = agent_env
    agent = Agent(env.config(target='drift = "repair"\n', agent="drift_every = 1\n"), env.log())
    agent.tick()
    current = env.public / "current"
    before = tree_digests(current)
    with (current / "index.html").open("a") as f:
        f.write("defaced")
    (current / "about" / "index.html").unlink()
    (current / "extra.html").write_text("x")
    agent.tick()
    assert tree_digests(current) == before
    report.row("tamper", "agent drift=repair: edit + delete + add restored exactly in one tick")


def test_damaged_or_deleted_state_files_give_one_line_and_the_next_deploy_heals(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg = config_mod.load(deploy_toml)
    [first] = commands.deploy(cfg)
    meta = deploy_toml.parent / "public" / ".sitedeploy"
    history = meta / "history.json"
    history.write_bytes(history.read_bytes()[:20])  # truncated
    with pytest.raises(TargetError, match=r"\.sitedeploy/history\.json on the target is damaged") as failed:
        commands.deploy(cfg)
    assert "\n" not in failed.value.message
    history.unlink()  # what the message says to do
    commands.deploy(cfg)  # same commit: records the live release in a new history
    assert [e.release for e in commands.history(cfg)["local"]] == [first.release]

    (meta / "manifests" / f"{first.release}.json").unlink()  # deleted
    with pytest.raises(TargetError, match="has no manifest"):
        commands.verify(cfg)
    [again] = commands.deploy(cfg)  # publishes and records a new release of the same commit
    assert again.outcome == "deployed" and again.release != first.release
    assert all(d.clean for d in commands.verify(cfg)[0].drift)
    (meta / "control.json").write_text("{")
    with pytest.raises(TargetError, match=r"control\.json on the target is damaged.*pins"):
        commands.status(cfg)
    report.row("tamper", "local: history/control truncated, manifest deleted -> one line; next deploy heals")


def test_ssh_drift_on_each_host_is_reported_per_host_and_repaired(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "b", {"index.html": "<h1>v1</h1>", "a.css": "x", "p/index.html": "p"})
    record, _ = deploy_folder(target, build)
    one, two = (s.home / "site" / "current" for s in sshd_pair)
    with (one / "a.css").open("a") as f:
        f.write("y")
    (two / "p" / "index.html").unlink()
    (two / "extra.js").write_text("evil()")
    manifest = scan(build)
    drift = target.verify(record.id, manifest)
    assert [(d.changed, d.missing, d.extra) for d in drift] == [
        (["a.css"], [], []),
        ([], ["p/index.html"], ["extra.js"]),
    ]
    target.repair(record.id, manifest, build, drift)
    assert tree_digests(one) == tree_digests(two) == digests(manifest)
    target.close()
    report.row("tamper", "ssh: edit on host 1, delete + add on host 2 -> reported per host, repaired")


def test_s3_overwritten_deleted_and_added_keys_are_reported_and_repaired(
    s3_server: S3Server, s3_bucket: str, s3_config: Callable[..., S3TargetConfig], tmp_path: Path
) -> None:
    cfg = s3_config()
    client = s3_server.client()
    build = write_tree(tmp_path / "b", {"index.html": "<p>v1</p>", "a.css": "one", "p/index.html": "p"})
    with S3Target("s3", cfg) as t:
        result = publish_dir(t, cfg, build)
        client.put_object(Bucket=s3_bucket, Key="a.css", Body=b"evil")
        client.delete_object(Bucket=s3_bucket, Key="p/index.html")
        client.put_object(Bucket=s3_bucket, Key="extra.html", Body=b"evil")
        manifest = scan(build)
        [drift] = t.verify(str(result.release), manifest)
        assert (drift.changed, drift.missing, drift.extra) == (["a.css"], ["p/index.html"], ["extra.html"])
        t.repair(str(result.release), manifest, build, [drift])
        assert bytes_digests(bucket_tree(client, s3_bucket)) == digests(manifest)
        client.put_object(Bucket=s3_bucket, Key=".sitedeploy/live.json", Body=b'{"version": 1, "rel')
        with pytest.raises(TargetError, match=r"live\.json is damaged"):
            t.live_release()
    report.row("tamper", "s3: overwritten, deleted, added keys repaired; live.json cut -> one line")
