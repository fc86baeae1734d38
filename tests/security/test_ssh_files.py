"""Odd ``ssh_config`` and ``known_hosts`` lines give one clear, non-retryable error naming the
file and the line (issue 11, item 13), against a real sshd: ``Port abc`` was an internal
error, an ``@revoked`` line a retryable "connect failed"."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sitedeploy.cli.main import cli
from sitedeploy.errors import HostKeyError, Misconfigured
from tests.fixtures.sshd import SSHEnv, keygen, open_ssh_target


def test_a_port_that_is_not_a_number_names_the_file_and_line(tmp_path: Path) -> None:
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host web1\n  HostName 127.0.0.1\n  Port abc\n")
    table = {"type": "ssh", "hosts": ["web1"], "path": "site", "ssh_config": str(ssh_config)}
    with pytest.raises(Misconfigured) as caught:
        open_ssh_target("prod", table)
    assert f"{ssh_config} line 3: Port 'abc' (for host 'web1') is not a port number" in caught.value.message
    assert not caught.value.retryable

    deploy_toml = tmp_path / "deploy.toml"
    deploy_toml.write_text(
        f'[source]\nrepo = "."\n[targets.prod]\ntype = "ssh"\nhosts = ["web1"]\npath = "site"\n'
        f'ssh_config = "{ssh_config}"\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(deploy_toml), "status"])
    assert result.exit_code == 1 and "internal error" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "line 3: Port 'abc'" in result.stderr


def key_of(pub: Path) -> str:
    kind, key = pub.read_text().split()[:2]
    return f"{kind} {key}"


def test_a_revoked_host_key_is_refused_naming_the_line(ssh_env: SSHEnv) -> None:
    server = ssh_env.server()
    trusted = ssh_env.known_hosts.read_text()
    revoked = f"@revoked * {key_of(Path(f'{server.host_key}.pub'))}\n"
    for lines, line_no in ((trusted + revoked, 2), (revoked, 1)):  # listed as trusted too, or not
        ssh_env.known_hosts.write_text(lines)
        target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
        with pytest.raises(HostKeyError) as caught:
            target.live_release()
        message = caught.value.message
        assert f"marked @revoked in {ssh_env.known_hosts} line {line_no}; refusing to connect" in message
        assert f"host {server.host}" in message and not caught.value.retryable and "\n" not in message
        target.close()
    assert not (server.home / "site").exists()


def test_marker_lines_for_other_keys_do_not_stop_a_trusted_host(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    other = key_of(Path(f"{keygen(tmp_path / 'old_key')}.pub"))
    ssh_env.known_hosts.write_text(
        f"@revoked * {other}\n@cert-authority *.example.com {other}\n# a comment\n\n"
        + ssh_env.known_hosts.read_text()
    )
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    assert target.live_release() is None  # connected, trusted, nothing deployed yet
    target.close()
    assert server.proc is not None


def test_a_broken_known_hosts_line_is_named(ssh_env: SSHEnv) -> None:
    ssh_env.server()
    ssh_env.known_hosts.write_text(ssh_env.known_hosts.read_text() + "web9 ssh-ed25519 not*base64\n")
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    with pytest.raises(HostKeyError) as caught:
        target.live_release()
    assert f"{ssh_env.known_hosts} line 2: not a valid known_hosts entry" in caught.value.message
    assert not caught.value.retryable
    target.close()
