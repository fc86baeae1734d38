"""What a new docs team runs into first: ``init`` in a real repo, no git, no commits, a
subfolder, options after the subcommand, ``--json`` errors, ``serve`` flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sitedeploy.cli.main import cli, hoist_global_options
from tests.fixtures.git import ContentRepo

SITEDEPLOY = str(Path(sys.executable).with_name("sitedeploy"))


def run_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, run from ``folder`` like a person in a terminal."""
    return subprocess.run([SITEDEPLOY, *args], cwd=folder, capture_output=True, text=True, timeout=300)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def mkdocs_repo(tmp_path: Path) -> Iterator[ContentRepo]:
    """A repo as a team has it: ``mkdocs new .``, a .gitignore of its own, a first commit."""
    repo = ContentRepo(tmp_path / "handbook")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "new", "."], cwd=repo.path, check=True, capture_output=True
    )
    repo.write(".gitignore", "site/\n*.pyc")  # no final newline, as editors sometimes leave it
    repo.commit("docs")
    yield repo


def test_init_adopts_a_repo_with_a_root_mkdocs_yml_and_a_gitignore(mkdocs_repo: ContentRepo) -> None:
    result = run_in(mkdocs_repo.path, "init")

    assert result.returncode == 0, result.stderr
    assert "found: root mkdocs.yml" in result.stdout
    assert "appended sitedeploy's lines to .gitignore" in result.stdout
    assert (mkdocs_repo.path / ".gitignore").read_text().splitlines()[:2] == ["site/", "*.pyc"]
    assert {".sitedeploy/", "public/"} <= set((mkdocs_repo.path / ".gitignore").read_text().splitlines())
    assert not (mkdocs_repo.path / "sites").exists()  # no second, example site
    assert 'path = "."' in (mkdocs_repo.path / "deploy.toml").read_text()

    mkdocs_repo.commit("adopt sitedeploy")
    deployed = run_in(mkdocs_repo.path, "deploy")
    assert deployed.returncode == 0, deployed.stderr
    assert (mkdocs_repo.path / "public/current/index.html").is_file()
    assert (mkdocs_repo.path / "public/current/404.html").is_file()
    assert mkdocs_repo.git("status", "--porcelain") == ""


def test_init_writes_one_site_per_folder_under_sites(tmp_path: Path) -> None:
    repo = ContentRepo(tmp_path / "mono")
    repo.add_mkdocs_site("docs")
    repo.add_static_site("landing")
    result = CliRunner().invoke(cli, ["--json", "init", str(repo.path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["layout"] == "2 site(s) under sites/" and data["git_repo"] is True
    text = (repo.path / "deploy.toml").read_text()
    assert 'path = "sites/docs"\nmount = "/docs/"' in text and 'mount = "/landing/"' in text


def test_init_outside_git_says_to_run_git_init(tmp_path: Path) -> None:
    result = run_in(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert "run 'git init'" in result.stdout
    assert (tmp_path / "sites/docs/mkdocs.yml").is_file()


def test_not_a_git_repo_and_no_commits_yet_get_plain_answers(tmp_path: Path) -> None:
    run_in(tmp_path, "init")
    not_repo = run_in(tmp_path, "deploy")
    assert not_repo.returncode == 1
    [line] = error_lines(not_repo.stderr)
    assert "is not a git repository; run 'git init'" in line

    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    empty = run_in(tmp_path, "deploy")
    [line] = error_lines(empty.stderr)
    assert "has no commits yet; commit your files" in line


def test_commands_run_from_a_subfolder_find_deploy_toml_above(mkdocs_repo: ContentRepo) -> None:
    assert run_in(mkdocs_repo.path, "init").returncode == 0
    mkdocs_repo.commit("adopt")
    deep = mkdocs_repo.path / "docs"

    deployed = run_in(deep, "deploy")
    assert deployed.returncode == 0, deployed.stderr
    assert (mkdocs_repo.path / "public/current/index.html").is_file()
    assert not (deep / "public").exists() and not (deep / ".sitedeploy").exists()
    status = run_in(deep, "status", "--json")  # a global option after the subcommand
    assert json.loads(status.stdout)[0]["commit"] == mkdocs_repo.git("rev-parse", "HEAD")


def test_a_subfolder_of_a_repo_without_deploy_toml_stops_at_the_repo_root(mkdocs_repo: ContentRepo) -> None:
    result = run_in(mkdocs_repo.path / "docs", "status")
    assert result.returncode == 2
    [line] = error_lines(result.stderr)
    assert f"up to the repository's root {mkdocs_repo.path}" in line and "sitedeploy init" in line


def test_errors_are_json_under_json(tmp_path: Path) -> None:
    result = run_in(tmp_path, "status", "--json", "--target", "nope")
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "ConfigError" and error["exit_code"] == 2 and error["retryable"] is False
    assert "no deploy.toml" in error["message"]


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (["status", "--json"], ["--json", "status"]),
        (["deploy", "-v", "--target", "t", "-q"], ["-v", "-q", "deploy", "--target", "t"]),
        (["--debug", "history", "-vv", "-n", "3"], ["--debug", "-vv", "history", "-n", "3"]),
        (
            ["--config", "a.toml", "rollback", "--config=b.toml"],
            ["--config", "a.toml", "--config=b.toml", "rollback"],
        ),
        (["suspend", "--reason", "x", "--", "--json"], ["suspend", "--reason", "x", "--", "--json"]),
        (["--json"], ["--json"]),
    ],
)
def test_global_options_are_accepted_after_the_subcommand(given: list[str], parsed: list[str]) -> None:
    assert hoist_global_options(given) == parsed


def test_serve_validates_its_port_and_names_non_local_targets(tmp_path: Path) -> None:
    (tmp_path / "deploy.toml").write_text('[targets.cdn]\ntype = "s3"\nbucket = "b"\n')
    bad_port = CliRunner().invoke(cli, ["--config", str(tmp_path / "deploy.toml"), "serve", "-p", "70000"])
    assert bad_port.exit_code == 2 and "70000 is not in the range 1<=x<=65535" in bad_port.output
    not_local = CliRunner().invoke(cli, ["--config", str(tmp_path / "deploy.toml"), "serve"])
    assert not_local.exit_code == 2
    assert "'cdn' (s3) is not one" in not_local.stderr


def test_serve_help_does_not_promise_previews_it_does_not_serve() -> None:
    shown = CliRunner().invoke(cli, ["serve", "--help"]).stdout
    assert "(previews)" not in shown and "previews are not" in " ".join(shown.split())
    listed = CliRunner().invoke(cli, ["--help"]).stdout
    assert "(previews)" not in listed


def test_serve_refuses_a_busy_port_in_one_line(tmp_path: Path) -> None:
    import socket

    (tmp_path / "public" / "current").mkdir(parents=True)
    (tmp_path / "deploy.toml").write_text("")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result: Result = CliRunner().invoke(
            cli, ["--config", str(tmp_path / "deploy.toml"), "serve", "-p", str(port)]
        )
    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line
    assert os.path.isdir(tmp_path / "public" / "current")
