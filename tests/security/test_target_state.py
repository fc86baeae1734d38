"""Content cannot write a target's own state, and state read back from a target is not trusted.

Issue 11, findings 2 and 7: a site's files under ``.sitedeploy/`` became keys of the same name
on S3 (a forged ``lock.json`` blocked every deploy, a forged ``control.json`` froze the
target); a ``../`` path added to one SSH host's manifest made the next deploy delete a file
outside the release on every host.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sitedeploy.config import S3TargetConfig
from sitedeploy.errors import PlanRefused, StateDamaged
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server, bucket_tree, publish_dir, write_tree
from tests.fixtures.sshd import SSHEnv, SSHServer, deploy_folder, make_site, open_ssh_target
from tests.test_cli import assert_one_line_error, current_target, sd

FORGED = {
    ".sitedeploy/lock.json": '{"owner": "mallory", "pid": 1, "acquired_at": 0, "expires_at": 9e99}',
    ".sitedeploy/control.json": '{"suspended": {"by": "ops", "at": "now", "reason": "forged"}}',
}


def test_a_site_writing_into_the_state_folder_is_refused_at_build(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    assert sd(deploy_toml, "deploy").exit_code == 0
    live = current_target(deploy_toml)
    text = deploy_toml.read_text().replace('mount = "/landing/"', 'mount = "/"')
    deploy_toml.write_text(text)
    content_repo.write("sites/landing/.sitedeploy/lock.json", FORGED[".sitedeploy/lock.json"])
    content_repo.commit("a forged lock")
    assert_one_line_error(sd(deploy_toml, "deploy"), "site 'landing' writes .sitedeploy/lock.json", code=2)
    assert current_target(deploy_toml) == live


def test_s3_never_receives_content_under_its_state_prefix(
    tmp_path: Path, s3_config: Callable[..., S3TargetConfig], s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config()
    target = S3Target("s3", cfg)
    publish_dir(target, cfg, write_tree(tmp_path / "v1", {"index.html": "<p>v1</p>"}))
    before = bucket_tree(s3_server.client(), s3_bucket)
    hostile = write_tree(tmp_path / "v2", {"index.html": "<p>v2</p>", **FORGED})
    with pytest.raises(PlanRefused, match=r"writes \.sitedeploy/"):
        publish_dir(target, cfg, hostile)
    assert bucket_tree(s3_server.client(), s3_bucket) == before
    meta = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix=".sitedeploy/")
    keys = {o["Key"] for o in meta.get("Contents", [])}
    assert ".sitedeploy/lock.json" not in keys and ".sitedeploy/control.json" not in keys
    publish_dir(target, cfg, write_tree(tmp_path / "v3", {"index.html": "<p>v3</p>"}))  # not blocked


def test_a_path_leaving_the_release_in_a_hosts_manifest_is_refused_not_deleted(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    first_host, second_host = sshd_pair
    victims = [server.home / "victim.txt" for server in sshd_pair]
    for victim in victims:
        victim.write_text("not sitedeploy's")
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    first, _ = deploy_folder(target, make_site(tmp_path / "v1", {"index.html": "v1"}))
    manifest = second_host.home / "site/.sitedeploy/manifests" / f"{first.id}.json"
    body = json.loads(manifest.read_text())
    body["files"]["../../../victim.txt"] = ["0" * 64, 1, "text/plain"]
    manifest.write_text(json.dumps(body))
    first_host_manifest = first_host.home / "site/.sitedeploy/manifests" / f"{first.id}.json"
    first_host_manifest.write_text(json.dumps(body))

    with pytest.raises(StateDamaged, match=r"manifests/.*is damaged \(ValueError: unsafe path in a manifest"):
        deploy_folder(target, make_site(tmp_path / "v2", {"index.html": "v2"}))
    assert all(victim.read_text() == "not sitedeploy's" for victim in victims)
    target.close()
