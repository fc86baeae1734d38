"""Versions and previews on an SSH target (a real sshd): lines and root on the host, three
versions and two aliases side by side, an alias moved by the switch of ``current`` while
readers read through it, a version deleted from the host, a preview's whole life."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
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


def ssh_toml(tmp_path: Path, ssh_env: SSHEnv, repo: ContentRepo, keys: str) -> Path:
    table = ssh_env.target_table(Path("site"))
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
    toml = tmp_path / "deploy.toml"
    toml.write_text(
        f'[source]\nrepo = "{repo.path}"\n\n{SITE}\n[images]\nenabled = false\n\n[targets.prod]\n{lines}\n'
        + keys
    )
    return toml


def page(version: str) -> str:
    return f"<!doctype html><h1>home {version}</h1>{'x' * 20000}</html>\n"


def test_versions_and_an_alias_move_on_an_ssh_host(tmp_path: Path, ssh_env: SSHEnv) -> None:
    server = ssh_env.server()
    repo = ContentRepo(tmp_path / "content")
    for tag in ("v1.0.0", "v1.1.0", "v2.0.0-rc.1"):
        repo.write("sites/web/index.html", page(tag))
        repo.commit(tag)
        repo.git("tag", tag)
    keys = 'versions = "tag:v*"\naliases = { latest = "newest", stable = "newest-stable" }\n'
    toml = ssh_toml(tmp_path, ssh_env, repo, keys)
    sd(toml, "versions", "deploy")
    served = server.home / "site" / "current"
    assert "home v1.0.0" in (served / "1.0" / "index.html").read_text()
    assert "home v2.0.0-rc.1" in (served / "latest" / "index.html").read_text()
    assert "home v1.1.0" in (served / "stable" / "index.html").read_text()
    listed = json.loads((served / "versions.json").read_text())
    assert [(v["version"], v["aliases"]) for v in listed] == [
        ("2.0", ["latest"]),
        ("1.1", ["stable"]),
        ("1.0", []),
    ]

    sd(toml, "versions", "alias", "lts", "1.0")
    before = os.readlink(served)
    errors = read_while(served / "lts" / "index.html", lambda: sd(toml, "versions", "alias", "lts", "1.1"))
    assert errors == []
    assert os.readlink(served) != before  # the alias moved with the switch of current
    assert os.readlink(served / "lts") == "../../lines/1.1/current"
    assert "home v1.1.0" in (served / "lts" / "index.html").read_text()
    sd(toml, "versions", "delete", "1.0")
    assert not (served / "1.0").exists() and not (server.home / "site" / "lines" / "1.0").exists()


def read_while(path: Path, change: Callable[[], object]) -> list[str]:
    """Read ``path`` in two threads while ``change`` runs: every read must be a whole page."""
    stop, errors = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            try:
                text = path.read_text()
            except OSError as exc:
                errors.append(str(exc))
                continue
            if not text.endswith("</html>\n") or text.count("home v") != 1:
                errors.append(text[:80])

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        change()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return errors


def test_a_preview_on_an_ssh_host_is_created_updated_and_removed_with_its_branch(
    tmp_path: Path, ssh_env: SSHEnv
) -> None:
    server = ssh_env.server()
    repo = ContentRepo(tmp_path / "content")
    repo.write("sites/web/index.html", page("main"))
    repo.commit("main")
    repo.git("checkout", "-q", "-b", "feature/Search")
    repo.write("sites/web/index.html", page("draft"))
    repo.commit("draft")
    toml = ssh_toml(tmp_path, ssh_env, repo, 'previews = "branch:feature/*"\n')
    sd(toml, "previews", "deploy")
    preview = server.home / "site" / "previews" / "current" / "br-feature-search" / "index.html"
    assert "home draft" in preview.read_text()
    assert '<meta name="robots" content="noindex, nofollow">' in preview.read_text()

    repo.write("sites/web/index.html", page("final"))
    repo.commit("final")
    sd(toml, "previews", "deploy")
    assert "home final" in preview.read_text()

    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "feature/Search")
    sd(toml, "previews", "deploy")
    assert not preview.exists()
    assert not (server.home / "site" / "previews" / "lines" / "br-feature-search").exists()
