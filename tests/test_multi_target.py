"""Commands over several targets: one unreachable target does not hide the others' results.

A good local target beside an S3 endpoint or SSH host on a closed port of 127.0.0.1: every
command that acts on both prints each target's line, exits non-zero, and ``--json`` carries
the failing target's error beside the other's result.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.fixtures.git import ContentRepo, write_config


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


UNREACHABLE = {
    "s3": 'type = "s3"\nbucket = "docs"\nendpoint_url = "http://127.0.0.1:{port}"\nmax_attempts = 1\n',
    "ssh": 'type = "ssh"\nhosts = ["127.0.0.1:{port}"]\npath = "/srv/docs"\nconnect_timeout = 2\n',
}


@pytest.fixture(params=sorted(UNREACHABLE))
def two_targets(
    request: pytest.FixtureRequest, tmp_path: Path, content_repo: ContentRepo, aws_env: None
) -> Path:
    """A good local target, and 'far': an S3 endpoint or SSH host on a port nothing listens on."""
    unreachable = "\n[targets.far]\n" + UNREACHABLE[request.param].replace("{port}", str(closed_port()))
    ops = tmp_path / "ops"
    ops.mkdir()
    return write_config(ops, content_repo.path, extra=unreachable)


def sd(toml: Path, *args: str) -> Result:
    from sitedeploy.cli.main import cli

    return CliRunner().invoke(cli, ["--config", str(toml), *args])


def test_deploy_reports_the_target_it_deployed_and_the_one_that_failed(two_targets: Path) -> None:
    done = sd(two_targets, "deploy")
    assert done.exit_code != 0
    assert "local: deployed" in done.stdout, done.output
    assert "error: target 'far'" in done.stderr
    as_json = json.loads(sd(two_targets, "--json", "deploy").stdout)
    by_target = {entry["target"]: entry for entry in as_json}
    assert by_target["local"]["outcome"] == "unchanged"
    assert by_target["far"]["error"]["kind"] and by_target["far"]["error"]["retryable"] is True


@pytest.mark.parametrize("command", ["status", "history", "verify", "rollback"])
def test_each_command_shows_the_good_target_beside_the_unreachable_one(
    two_targets: Path, content_repo: ContentRepo, command: str
) -> None:
    for n in (1, 2):  # two releases on local, so that rollback has one to go back to
        content_repo.add_static_site(version=f"v{n + 1}")
        content_repo.commit(f"landing v{n + 1}")
        assert sd(two_targets, "deploy", "--target", "local").exit_code == 0
    done = sd(two_targets, command)
    assert done.exit_code != 0, done.output
    assert "local" in done.stdout and "error: target 'far'" in done.stderr, done.output
    as_json = json.loads(sd(two_targets, "--json", command).stdout)
    assert {entry["target"] for entry in as_json} == {"local", "far"}
    assert next(entry for entry in as_json if entry["target"] == "far")["error"]["message"]


def test_status_names_the_tip_and_still_answers_when_the_remote_is_gone(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    assert sd(deploy_toml, "deploy").exit_code == 0
    content_repo.add_static_site(version="v2")
    v2 = content_repo.commit("landing v2")
    shown = sd(deploy_toml, "status")
    assert f"tracking: HEAD at {v2[:12]}" in shown.stdout
    assert f"waiting:  {v2[:12]} is not live: not deployed yet" in shown.stdout
    content_repo.path.rename(content_repo.path.with_name("moved"))
    gone = sd(deploy_toml, "status")
    assert gone.exit_code == 0 and "local (" in gone.stdout
    assert "tracking: HEAD (tip unknown: git: cannot list the refs of" in gone.stdout
