"""Versions on an SSH target (a real sshd): lines and root on the host, an alias moved by the
switch of ``current``, a version deleted from the host."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner, Result

from sitedeploy.cli.main import cli
from tests.fixtures.git import ContentRepo
from tests.fixtures.sshd import SSHEnv

SITE = '[[sites]]\nname = "web"\npath = "sites/web"\nmount = "/"\n'


def sd(toml: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--config", str(toml), *args])
    assert result.exit_code == 0, result.output
    return result


def test_versions_and_an_alias_move_on_an_ssh_host(tmp_path: Path, ssh_env: SSHEnv) -> None:
    server = ssh_env.server()
    repo = ContentRepo(tmp_path / "content")
    for tag in ("v1.0.0", "v1.1.0"):
        repo.write("sites/web/index.html", f"<!doctype html><h1>home {tag}</h1>\n")
        repo.commit(tag)
        repo.git("tag", tag)
    table = ssh_env.target_table(Path("site"))
    keys = "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
    toml = tmp_path / "deploy.toml"
    toml.write_text(
        f'[source]\nrepo = "{repo.path}"\n\n{SITE}\n[images]\nenabled = false\n\n[targets.prod]\n{keys}\n'
        'versions = "tag:v*"\n'
    )
    sd(toml, "versions", "deploy")
    served = server.home / "site" / "current"
    assert "home v1.0.0" in (served / "1.0" / "index.html").read_text()
    assert "home v1.1.0" in (served / "latest" / "index.html").read_text()
    assert [v["version"] for v in json.loads((served / "versions.json").read_text())] == ["1.1", "1.0"]

    sd(toml, "versions", "alias", "lts", "1.0")
    before = os.readlink(served)
    sd(toml, "versions", "alias", "lts", "1.1")
    assert os.readlink(served) != before  # the alias moved with the switch of current
    assert os.readlink(served / "lts") == "../../lines/1.1/current"
    assert "home v1.1.0" in (served / "lts" / "index.html").read_text()
    sd(toml, "versions", "delete", "1.0")
    assert not (served / "1.0").exists() and not (server.home / "site" / "lines" / "1.0").exists()
