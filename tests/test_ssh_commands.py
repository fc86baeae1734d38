"""End to end: deploy.toml with an SSH target of two hosts, through ``sitedeploy.commands`` and
the CLI -- deploy, a one-page change, status (hosts that disagree), rollback, verify --repair."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner, Result

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.cli.main import cli
from tests.fixtures.agent import Remote
from tests.fixtures.sshd import SSHEnv, SSHServer


def write_config(tmp_path: Path, remote: Remote, ssh_env: SSHEnv) -> Path:
    table = ssh_env.target_table(Path("site"))
    lines = [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    text = f'[source]\nrepo = "{remote.bare}"\n\n[images]\nenabled = false\n\n[targets.prod]\n'
    path = tmp_path / "deploy.toml"
    path.write_text(text + "\n".join(lines) + "\n")
    return path


def new_remote(tmp_path: Path) -> Remote:
    (tmp_path / "repo").mkdir()
    return Remote(tmp_path / "repo")


def run(deploy_toml: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(deploy_toml), *args])


def live_on(server: SSHServer) -> str:
    return os.path.basename(os.readlink(server.home / "site/current"))


def test_deploy_change_status_rollback_verify_through_the_cli(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    remote = new_remote(tmp_path)
    for i in range(20):
        remote.write(f"sites/web/docs/p{i}/index.html", f"<!doctype html><p>page {i}</p>\n")
    remote.static_site("v1")
    remote.commit_push("v1")
    deploy_toml = write_config(tmp_path, remote, ssh_env)

    first = run(deploy_toml, "--json", "deploy")
    assert first.exit_code == 0, first.output
    first_release = json.loads(first.output)[0]["release"]
    assert {live_on(s) for s in sshd_pair} == {first_release}

    remote.static_site("v2")  # edits index.html and about/index.html
    remote.commit_push("v2")
    config = config_mod.load(deploy_toml, tmp_path / "state")
    [result] = commands.deploy(config)
    assert result.outcome == "deployed" and result.plan is not None and result.stats is not None
    sent_per_host = len(result.plan.uploads)
    assert not [u for u in result.plan.uploads if u.path.startswith("docs/")]
    assert result.stats.files_sent == 2 * sent_per_host and sent_per_host <= 3  # 2 pages (+ a marker)
    assert result.stats.files_linked == 2 * len(result.plan.unchanged)
    assert {live_on(s) for s in sshd_pair} == {result.release}

    status = json.loads(run(deploy_toml, "--json", "status").output)[0]
    assert status["hosts"] == {s.host: result.release for s in sshd_pair}
    assert status["hosts_disagree"] is False

    back = run(deploy_toml, "rollback")
    assert back.exit_code == 0, back.output
    assert {live_on(s) for s in sshd_pair} == {first_release}
    history = json.loads((sshd_pair[1].home / "site/.sitedeploy/history.json").read_text())
    assert [h["action"] for h in history] == ["deploy", "deploy", "rollback"]

    page = sshd_pair[1].home / "site/current/index.html"
    page.unlink()
    page.write_text("defaced")
    drifted = run(deploy_toml, "verify")
    assert drifted.exit_code == 1 and "changed index.html" in drifted.output
    assert sshd_pair[1].host in drifted.output
    repaired = run(deploy_toml, "verify", "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "v1" in page.read_text()
    assert run(deploy_toml, "verify").exit_code == 0


def test_status_flags_hosts_that_disagree(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    remote = new_remote(tmp_path)
    remote.static_site("v1")
    remote.commit_push("v1")
    deploy_toml = write_config(tmp_path, remote, ssh_env)
    old = json.loads(run(deploy_toml, "--json", "deploy").output)[0]["release"]
    remote.static_site("v2")
    remote.commit_push("v2")
    assert run(deploy_toml, "deploy").exit_code == 0
    stray = sshd_pair[1].home / "site/current"
    stray.unlink()
    stray.symlink_to(f"releases/{old}")  # someone switched one host by hand

    [status] = commands.status(config_mod.load(deploy_toml, tmp_path / "state"))
    assert status.hosts_disagree and status.hosts is not None
    assert status.hosts[sshd_pair[1].host] == old
    status_text = run(deploy_toml, "status").output
    assert old in status_text

    remote.static_site("v3")
    remote.commit_push("v3")
    again = run(deploy_toml, "--json", "deploy")  # the next deploy converges: one release everywhere
    assert again.exit_code == 0, again.output
    assert {live_on(s) for s in sshd_pair} == {json.loads(again.output)[0]["release"]}
