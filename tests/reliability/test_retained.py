"""Retained releases stay as recorded, on every target type (issue 12, "Found" section).

Unchanged files are hard links shared between releases (local, SSH), so an in-place edit of a
live file changes every retained release holding that inode. These tests make that edit for
real (as root, whom ``chmod a-w`` does not stop) and check that: files are read-only once
staged, ``verify`` sees the damage, ``--repair`` restores the live release *and* the retained
ones sharing the inode, and a rollback never switches to a release that differs from its
manifest: it refuses with one line naming the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.config import S3TargetConfig
from sitedeploy.errors import RollbackError, TargetError
from sitedeploy.release.manifest import scan
from sitedeploy.targets import Target, open_target
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server, bucket_tree, publish_dir, rollback_target, write_tree
from tests.fixtures.sshd import SSHEnv, SSHServer, deploy_folder, make_site, open_ssh_target, rollback_to
from tests.reliability import report
from tests.reliability.trees import release_tree_matches

SHARED = "docs/css/base.css"  # MkDocs' theme stylesheet: the same bytes in every release


def three_releases(deploy_toml: Path, content_repo: ContentRepo) -> tuple[config_mod.Config, list[str]]:
    cfg = config_mod.load(deploy_toml)
    ids = []
    for v in ("v1", "v2", "v3"):
        if v != "v1":
            content_repo.add_mkdocs_site(version=v)
            content_repo.commit(v)
        [result] = commands.deploy(cfg)
        assert result.release is not None
        ids.append(result.release)
    return cfg, ids


def test_local_in_place_edit_is_refused_by_rollback_and_repaired_in_every_release(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg, ids = three_releases(deploy_toml, content_repo)
    public = deploy_toml.parent / "public"
    files = [p for p in (public / "releases").rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) & 0o222 == 0 for p in files)  # read-only
    inodes = {(public / "releases" / rid / SHARED).stat().st_ino for rid in ids}
    assert len(inodes) == 1  # one inode shared by all three releases: what the edit damages

    with (public / "current" / SHARED).open("a") as f:  # `echo x >> current/docs/css/base.css`
        f.write("x\n")
    [found] = commands.verify(cfg)
    assert [d.changed for d in found.drift] == [[SHARED]]
    history = commands.history(cfg)["local"]

    with pytest.raises(RollbackError, match=f"changed on the target.*{SHARED}.*deploy --ref"):
        commands.rollback(cfg)
    assert os.readlink(public / "current").endswith(ids[2])  # not switched
    assert commands.history(cfg)["local"] == history  # nothing recorded

    [repaired] = commands.verify(cfg, repair=True)
    assert repaired.repaired
    with open_local(cfg) as t:
        for rid in ids:  # the retained releases sharing the inode were put back too
            assert release_tree_matches(t, rid, public / "releases" / rid)
    [back] = commands.rollback(cfg)
    assert back.release == ids[1]
    report.row("retained", f"local: in-place edit of {SHARED} refused by rollback, repaired in 3 releases")


def test_local_damaged_retained_release_is_never_switched_to(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg, ids = three_releases(deploy_toml, content_repo)
    old = deploy_toml.parent / "public" / "releases" / ids[1]
    (old / "landing" / "style.css").unlink()  # deleted
    (old / "docs" / "extra.html").write_text("<p>added</p>")  # added
    page = old / "docs" / "index.html"  # replaced by rename (as `sed -i` does): the link breaks
    page.unlink()
    page.write_text("<h1>defaced</h1>")
    with pytest.raises(RollbackError) as refused:
        commands.rollback(cfg, to=ids[1])
    message = refused.value.message
    assert "1 missing, 1 changed, 1 extra" in message and "docs/index.html" in message
    assert "\n" not in message
    [back] = commands.rollback(cfg, to=ids[0])  # an intact release still works
    assert back.release == ids[0]
    report.row("retained", "local: a release with a file deleted, added and replaced is refused")


def test_ssh_release_is_read_only_and_a_damaged_one_is_refused_on_the_host_that_has_it(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "build", {"index.html": "<h1>v1</h1>", "a/style.css": "body{}"})
    first, _ = deploy_folder(target, build)
    make_site(build, {"index.html": "<h1>v2</h1>"})
    second, _ = deploy_folder(target, build)
    host = sshd_pair[1]
    releases = host.home / "site" / "releases"
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o222 == 0 for p in releases.rglob("*") if p.is_file())
    with (host.home / "site" / "current" / "a" / "style.css").open("a") as f:
        f.write("x")  # damages both releases on this host (one inode)

    with pytest.raises(RollbackError, match=f"{first.id} was changed.*{host.host}.*a/style.css"):
        rollback_to(target, first.id)
    assert set(target.live_by_host().values()) == {second.id}

    manifest = scan(build)
    drift = target.verify(second.id, manifest)
    assert [d.changed for d in drift] == [[], ["a/style.css"]]
    target.repair(second.id, manifest, build, drift)
    assert all(d.clean for d in target.verify(second.id, manifest))
    assert stat.S_IMODE((releases / second.id / "a" / "style.css").stat().st_mode) & 0o222 == 0
    rollback_to(target, first.id)  # the retained release sharing the inode was repaired too
    assert set(target.live_by_host().values()) == {first.id}
    target.close()
    report.row(
        "retained",
        "ssh: read-only; damaged retained release refused (naming host), repaired with the live one",
    )


def test_s3_rollback_refuses_a_release_whose_kept_bodies_are_gone(
    s3_server: S3Server,
    s3_bucket: str,
    s3_config: Callable[..., S3TargetConfig],
    tmp_path: Path,
    s3_versioned: bool,
) -> None:
    cfg = s3_config()
    client = s3_server.client()
    with S3Target("s3", cfg) as t:
        publish_dir(t, cfg, write_tree(tmp_path / "b", {"index.html": "<p>v1</p>", "a.css": "one"}))
        before = bucket_tree(client, s3_bucket)
        publish_dir(t, cfg, write_tree(tmp_path / "b", {"index.html": "<p>v2</p>", "a.css": "two"}))
        after = bucket_tree(client, s3_bucket)
        if s3_versioned:  # a body v1 needs: the version that kept it
            home = next(iter(t.read_state().homes.values()))
            client.delete_object(Bucket=s3_bucket, Key=home.path, VersionId=home.version_id)
        else:  # a body v1 needs: its copy
            kept = client.list_objects_v2(Bucket=s3_bucket, Prefix=".sitedeploy/objects/")["Contents"]
            client.delete_object(Bucket=s3_bucket, Key=kept[0]["Key"])
        with pytest.raises(RollbackError, match=r"was changed on the target.*1 missing"):
            rollback_target(t, cfg)
        assert bucket_tree(client, s3_bucket) == after  # nothing was touched
    assert before != after
    report.row("retained", "s3: a retained release whose kept body is gone is refused before any write")


def test_two_hosts_sharing_one_folder_fail_at_once_with_one_line(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    with ssh_env.known_hosts.open("a") as f:  # the same machine under a second name
        f.write(server.known_hosts_line().replace("[127.0.0.1]", "[localhost]"))
    shared = tmp_path / "www"
    table = ssh_env.target_table(shared)
    table["hosts"] = [server.host, f"localhost:{server.port}"]
    target = open_ssh_target("prod", table)
    build = make_site(tmp_path / "build", {"index.html": "<h1>v1</h1>"})
    with pytest.raises(TargetError, match="share one folder") as failed:
        deploy_folder(target, build)
    assert "\n" not in failed.value.message
    assert not (shared / ".sitedeploy" / "lock.json.d").exists()  # nothing left to block a fix
    assert not (shared / "current").exists()
    target.close()
    report.row("retained", "ssh: two names for one machine fail at the lock with one line")


def open_local(cfg: config_mod.Config) -> Target:
    return open_target("local", cfg.targets["local"], cfg)
