"""The S3 target end to end: a git repo, deploy.toml, the real command line, the S3 server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from sitedeploy import config as config_mod
from sitedeploy.release.lock import locked
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server, bucket_tree


def s3_toml(directory: Path, repo: Path, url: str, bucket: str) -> Path:
    path = directory / "deploy.toml"
    path.write_text(
        f'[source]\nrepo = "{repo}"\n\n'
        '[[sites]]\nname = "docs"\npath = "sites/docs"\nmount = "/docs/"\n\n'
        '[[sites]]\nname = "landing"\npath = "sites/landing"\nmount = "/landing/"\n\n'
        "[images]\nenabled = false\n\n"
        f'[targets.s3]\ntype = "s3"\nbucket = "{bucket}"\nendpoint_url = "{url}"\nregion = "us-east-1"\n'
        'max_attempts = 2\n[targets.s3.cache_control]\n"*.css" = "public, max-age=120"\n'
    )
    return path


def sd(toml: Path, *args: str) -> Result:
    from sitedeploy.cli.main import cli

    return CliRunner().invoke(cli, ["--config", str(toml), *args])


def test_deploy_status_rollback_verify_through_the_cli(
    tmp_path: Path, content_repo: ContentRepo, s3_server: S3Server, s3_bucket: str
) -> None:
    toml = s3_toml(tmp_path, content_repo.path, s3_server.url, s3_bucket)
    first = sd(toml, "deploy", "--target", "s3")
    assert first.exit_code == 0, first.output
    client = s3_server.client()
    v1 = bucket_tree(client, s3_bucket)
    assert "docs/index.html" in v1 and b"v1" in v1["landing/index.html"]
    assert (
        client.head_object(Bucket=s3_bucket, Key="landing/style.css")["CacheControl"] == "public, max-age=120"
    )

    content_repo.add_static_site("landing", version="v2")
    sha = content_repo.commit("landing v2")
    assert sd(toml, "deploy", "--target", "s3").exit_code == 0
    status = json.loads(sd(toml, "--json", "status", "--target", "s3").stdout)
    assert status[0]["commit"] == sha
    assert b"v2" in bucket_tree(client, s3_bucket)["landing/index.html"]

    rolled = sd(toml, "rollback", "--target", "s3")
    assert rolled.exit_code == 0, rolled.output
    now = bucket_tree(client, s3_bucket)
    assert {k: now[k] for k in v1} == v1
    history = json.loads(sd(toml, "--json", "history", "--target", "s3").stdout)
    assert [h["action"] for h in history] == ["rollback", "deploy", "deploy"]

    client.delete_object(Bucket=s3_bucket, Key="docs/guide/index.html")
    drift = sd(toml, "verify", "--target", "s3")
    assert drift.exit_code == 1 and "missing docs/guide/index.html" in drift.stdout, drift.output
    assert f"s3://{s3_bucket}/: 1 missing" in drift.stdout
    repaired = sd(toml, "verify", "--target", "s3", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert bucket_tree(client, s3_bucket)["docs/guide/index.html"] == v1["docs/guide/index.html"]
    assert sd(toml, "verify", "--target", "s3").exit_code == 0


def test_a_second_process_fails_naming_the_lock_holder(
    tmp_path: Path, content_repo: ContentRepo, s3_server: S3Server, s3_bucket: str
) -> None:
    toml = s3_toml(tmp_path, content_repo.path, s3_server.url, s3_bucket)
    cfg = config_mod.load(toml).targets["s3"]
    holder = S3Target("s3", cfg)  # type: ignore[arg-type]
    with locked(holder, "s3", purpose="deploy"):
        other = subprocess.run(
            [
                str(Path(sys.executable).parent / "sitedeploy"),
                "--config",
                str(toml),
                "deploy",
                "--target",
                "s3",
            ],
            capture_output=True,
            text=True,
            env=os.environ,
            timeout=120,
        )
    assert other.returncode != 0
    errors = [line for line in other.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"pid {os.getpid()}" in errors[0] and "locked by" in errors[0], other.stderr
    assert S3Target("s3", cfg).live_release() is None  # type: ignore[arg-type]
    assert sd(toml, "deploy", "--target", "s3").exit_code == 0  # released: the next one proceeds
