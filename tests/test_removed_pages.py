"""A deploy that removes live pages without a redirect is caught before anything is written:
listed with suggested ``_redirects`` lines (``warn``), refused in one line (``refuse``, with
``--force`` noted in history), on a local and an SSH target; and the SSH target's
``reload_command`` run on the host after the switch."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from sitedeploy.redirects.removed import page_url, suggestions
from sitedeploy.release.manifest import FileEntry, Manifest
from tests.fixtures.git import ContentRepo
from tests.fixtures.sshd import SSHEnv

PAGES = ("index", "guide/install/index", "guide/upgrade/index", "about")


def sd(toml: Path, *args: str) -> Result:
    from sitedeploy.cli.main import cli

    return CliRunner().invoke(cli, ["--config", str(toml), *args])


def site(root: Path) -> ContentRepo:
    repo = ContentRepo(root / "content")
    for page in PAGES:
        repo.write(f"sites/web/{page}.html", f"<!doctype html><title>{page}</title><h1>{page}</h1>\n")
    repo.commit("four pages")
    return repo


def operator_file(folder: Path, repo: ContentRepo, target: dict[str, object]) -> Path:
    folder.mkdir()
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in target.items())
    sites = '[[sites]]\nname = "web"\npath = "sites/web"\nmount = "/"\nbuilder = "static"\n'
    path = folder / "deploy.toml"
    path.write_text(f'[source]\nrepo = "{repo.path}"\n\n{sites}\n[targets.web]\n{lines}')
    return path


def rename_install(repo: ContentRepo) -> None:
    repo.git("mv", "sites/web/guide/install/index.html", "sites/web/guide/installing.html")
    repo.commit("rename the install page")


def test_suggestions_point_at_the_nearest_surviving_page() -> None:
    entry = FileEntry("0" * 64, 1, "text/html")
    manifest = Manifest({"guide/installing.html": entry, "about.html": entry, "index.html": entry})
    assert page_url("guide/install/index.html") == "/guide/install/"
    assert suggestions(["/guide/install/"], manifest) == ["/guide/install/ /guide/installing.html"]


def test_local_warns_by_default_and_a_redirect_silences_it(tmp_path: Path) -> None:
    repo = site(tmp_path)
    toml = operator_file(tmp_path / "ops", repo, {"type": "local", "path": "public"})
    assert sd(toml, "deploy").exit_code == 0
    rename_install(repo)
    result = sd(toml, "deploy")
    assert result.exit_code == 0, result.output
    assert "removes 1 live page(s) that no redirect covers" in result.output
    assert "/guide/install/ /guide/installing.html" in result.output

    repo.git("mv", "sites/web/guide/upgrade/index.html", "sites/web/guide/upgrading.html")
    repo.write("sites/web/_redirects", "/guide/upgrade/ /guide/upgrading.html\n")
    repo.commit("rename with a redirect")
    result = sd(toml, "deploy")
    assert result.exit_code == 0, result.output
    assert "no redirect covers" not in result.output


def test_ssh_refuses_in_one_line_until_forced_and_history_notes_it(tmp_path: Path, ssh_env: SSHEnv) -> None:
    server = ssh_env.server()
    repo = site(tmp_path)
    table = ssh_env.target_table(Path("www"), removed_pages="refuse")
    toml = operator_file(tmp_path / "ops", repo, table)
    assert sd(toml, "deploy").exit_code == 0
    live = (server.home / "www" / "current").resolve()
    rename_install(repo)

    refused = sd(toml, "deploy")
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    line = refused.output.strip().splitlines()[-1]
    assert "/guide/install/ /guide/installing.html" in line and "--force" in line
    assert (server.home / "www" / "current").resolve() == live

    forced = sd(toml, "deploy", "--force")
    assert forced.exit_code == 0, forced.output
    assert (server.home / "www" / "current").resolve() != live
    history = sd(toml, "--json", "history")
    assert "forced: removed 1 live page(s) without redirects" in history.output


def test_ssh_runs_reload_command_on_the_host_after_the_switch_and_reports_a_failure(
    tmp_path: Path, ssh_env: SSHEnv
) -> None:
    server = ssh_env.server()
    repo = site(tmp_path)
    script = "readlink www/current > reloaded-after; test ! -e fail-reload"
    table = ssh_env.target_table(Path("www"), reload_command=["sh", "-c", script])
    toml = operator_file(tmp_path / "ops", repo, table)
    assert sd(toml, "deploy").exit_code == 0
    live = (server.home / "www" / "current").resolve().name
    assert (server.home / "reloaded-after").read_text().strip() == f"releases/{live}"  # after the switch

    (server.home / "fail-reload").write_text("")
    repo.write("sites/web/about.html", "<p>changed</p>")
    repo.commit("change a page")
    failed = sd(toml, "deploy")
    assert failed.exit_code != 0 and "Traceback" not in failed.output
    line = failed.output.strip().splitlines()[-1]
    assert "the new release is live and recorded, but 'sh -c" in line and server.host in line
    assert (server.home / "www" / "current").resolve().name != live


def test_a_new_version_dropping_a_page_of_the_previous_version_is_refused_then_forced(
    tmp_path: Path,
) -> None:
    repo = site(tmp_path)
    repo.git("tag", "v1.0.0")
    target = {"type": "local", "path": "public", "versions": "tag:v*", "removed_pages": "refuse"}
    toml = operator_file(tmp_path / "ops", repo, target)
    assert sd(toml, "versions", "deploy").exit_code == 0
    rename_install(repo)
    repo.git("tag", "v2.0.0")
    held = json.loads(sd(toml, "--json", "versions", "deploy").stdout)
    assert [(r["name"], r["outcome"]) for r in held] == [("1.0", "unchanged"), ("2.0", "held")]
    assert "version 2.0 drops 1 page(s) of version 1.0" in held[1]["detail"]
    assert "/guide/install/ /guide/installing.html" in held[1]["detail"]
    assert not (toml.parent / "public/lines/2.0/current").exists()  # refused before anything was written
    forced = json.loads(sd(toml, "--json", "versions", "deploy", "--force").stdout)
    assert forced[1]["outcome"] == "deployed"
    history = (toml.parent / "public/lines/2.0/.sitedeploy/history.json").read_text()
    assert "forced: version 2.0 drops 1 page(s) of version 1.0 without redirects" in history
    # a version's own line is checked against its live release with the target's rule too
    repo.git("rm", "-q", "sites/web/about.html")
    repo.commit("drop about")
    repo.git("tag", "-f", "v2.0.0")
    again = json.loads(sd(toml, "--json", "versions", "deploy").stdout)
    assert again[1]["outcome"] == "held" and "this deploy removes 1 live page(s)" in again[1]["detail"]
