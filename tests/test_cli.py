"""The command line as a user meets it: output, --json, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sitedeploy.cli.main import cli
from tests.fixtures.git import ContentRepo, write_config


def sd(deploy_toml: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(deploy_toml), *args])


def current_target(deploy_toml: Path) -> str:
    return os.readlink(deploy_toml.parent / "public" / "current")


def assert_one_line_error(result: Result, *fragments: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_deploy_status_history_rollback_resume_json(deploy_toml: Path, content_repo: ContentRepo) -> None:
    first = sd(deploy_toml, "deploy")
    assert first.exit_code == 0, first.output
    assert "served from" in first.stdout
    content_repo.add_static_site(version="v2")
    sha_b = content_repo.commit("landing v2")
    assert sd(deploy_toml, "deploy").exit_code == 0

    status = json.loads(sd(deploy_toml, "--json", "status").stdout)
    assert status[0]["target"] == "local" and status[0]["commit"] == sha_b
    assert set(status[0]) >= {"target", "commit", "release", "deployed_at", "pinned"}
    assert status[0]["pinned"] is False

    rolled = sd(deploy_toml, "rollback")
    assert rolled.exit_code == 0 and "pinned" in rolled.stdout
    hist = json.loads(sd(deploy_toml, "--json", "history", "-n", "5").stdout)
    assert [h["action"] for h in hist] == ["rollback", "deploy", "deploy"]
    assert {"action", "commit", "release", "deployed_at", "deployed_by"} <= set(hist[0])
    assert json.loads(sd(deploy_toml, "--json", "status").stdout)[0]["pinned"] is True
    text = sd(deploy_toml, "status").stdout
    assert "PINNED" in text
    assert sd(deploy_toml, "resume").exit_code == 0
    assert json.loads(sd(deploy_toml, "--json", "status").stdout)[0]["pinned"] is False


def test_dry_run_lists_uploads(deploy_toml: Path) -> None:
    result = sd(deploy_toml, "deploy", "--dry-run")
    assert result.exit_code == 0
    assert "upload docs/index.html (new)" in result.stdout
    assert not (deploy_toml.parent / "public" / "current").exists()


def test_init_scaffolds_a_working_project(tmp_path: Path) -> None:
    repo = ContentRepo(tmp_path / "new")
    result = CliRunner().invoke(cli, ["init", str(repo.path)])
    assert result.exit_code == 0, result.output
    repo.commit("start")
    deployed = CliRunner().invoke(cli, ["--config", str(repo.path / "deploy.toml"), "deploy"])
    assert deployed.exit_code == 0, deployed.output
    assert (repo.path / "public" / "current" / "index.html").is_file()
    again = CliRunner().invoke(cli, ["init", str(repo.path)])
    assert_one_line_error(again, "already exists", code=2)


def test_the_installed_command_runs(deploy_toml: Path) -> None:
    exe = Path(sys.executable).with_name("sitedeploy")
    proc = subprocess.run([str(exe), "--config", str(deploy_toml), "deploy"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "deployed" in proc.stdout


# --- bad input: one line naming the file or key, non-zero exit, live release untouched ------


@pytest.fixture
def live(deploy_toml: Path) -> str:
    assert sd(deploy_toml, "deploy").exit_code == 0
    return current_target(deploy_toml)


def test_toml_syntax_error_names_the_line(deploy_toml: Path, live: str) -> None:
    deploy_toml.write_text(deploy_toml.read_text() + "\n[targets.local\n")
    result = sd(deploy_toml, "deploy")
    assert_one_line_error(result, "deploy.toml", "line", code=2)
    assert current_target(deploy_toml) == live


def test_unknown_key_suggests_the_right_one(deploy_toml: Path, live: str) -> None:
    deploy_toml.write_text(deploy_toml.read_text().replace("keep_releases", "keep_relases"))
    result = sd(deploy_toml, "deploy")
    assert result.exit_code == 2
    assert "targets.local.keep_relases: unknown key (did you mean 'keep_releases'?)" in result.stderr
    assert current_target(deploy_toml) == live


def test_missing_required_key(deploy_toml: Path, live: str) -> None:
    deploy_toml.write_text(deploy_toml.read_text().replace('path = "public"', ""))
    assert_one_line_error(sd(deploy_toml, "deploy"), "targets.local.path: required", code=2)
    assert current_target(deploy_toml) == live


def test_every_config_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "deploy.toml"
    path.write_text(
        '[[sites]]\nname = "a"\npath = "x"\n[[sites]]\nname = "a"\npath = "y"\nmount = "/"\n'
        '[targets.t]\ntype = "local"\n[targets.u]\ntype = "ftp"\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 2
    assert "sites[1].name: 'a' is also sites[0]" in result.stderr
    assert "targets.t.path: required" in result.stderr
    assert "targets.u.type: unknown type 'ftp'" in result.stderr


def test_secrets_are_refused_in_the_config(deploy_toml: Path) -> None:
    deploy_toml.write_text(deploy_toml.read_text() + 'aws_secret_access_key = "x"\n')
    result = sd(deploy_toml, "status")
    assert result.exit_code == 2 and "secrets never go in deploy.toml" in result.stderr
    assert '"x"' not in result.stderr


def test_site_path_without_mkdocs_yml_or_files(deploy_toml: Path, live: str) -> None:
    deploy_toml.write_text(
        deploy_toml.read_text().replace('path = "sites/landing"', 'path = "sites/nothing"')
    )
    assert_one_line_error(sd(deploy_toml, "deploy"), "site 'landing'", "sites/nothing", code=2)
    assert current_target(deploy_toml) == live


def test_failing_mkdocs_build_shows_the_error_and_publishes_nothing(
    deploy_toml: Path, content_repo: ContentRepo, live: str
) -> None:
    content_repo.write(
        "sites/docs/mkdocs.yml", "site_name: Broken\nnav:\n  - Home: missing.md\nstrict: true\n"
    )
    content_repo.commit("break the nav")
    result = sd(deploy_toml, "deploy")
    assert_one_line_error(result, "site 'docs'", "mkdocs build failed")
    assert "missing.md" in result.stderr
    assert current_target(deploy_toml) == live
    verbose = sd(deploy_toml, "-v", "deploy")
    assert "build log" in verbose.stderr


def test_unknown_ref(deploy_toml: Path, live: str) -> None:
    assert_one_line_error(
        sd(deploy_toml, "deploy", "--ref", "no-such-branch"), "unknown ref 'no-such-branch'"
    )
    assert current_target(deploy_toml) == live


def test_unwritable_target_path(tmp_path: Path, content_repo: ContentRepo) -> None:
    ops = tmp_path / "ops3"
    ops.mkdir()
    (ops / "blocker").write_text("a file where a folder should be")
    config = write_config(ops, content_repo.path, target_path="blocker/public")
    assert_one_line_error(sd(config, "deploy"), "target 'local'", "blocker")


def test_symlink_out_of_the_repo_is_refused(deploy_toml: Path, content_repo: ContentRepo, live: str) -> None:
    (content_repo.path / "sites/landing/passwd").symlink_to("/etc/passwd")
    content_repo.commit("sneaky link")
    result = sd(deploy_toml, "deploy")
    assert_one_line_error(result, "sites/landing/passwd", "points outside")
    assert current_target(deploy_toml) == live
    state = deploy_toml.parent / ".sitedeploy"
    assert not any(
        p.name == "passwd" and p.read_text().startswith("root:")
        for p in state.rglob("passwd")
        if not p.is_symlink()
    )


def test_relative_symlink_escaping_the_repo_is_refused(deploy_toml: Path, content_repo: ContentRepo) -> None:
    (content_repo.path / "sites/landing/up").symlink_to("../../../../../../etc/hostname")
    content_repo.commit("sneaky relative link")
    assert_one_line_error(sd(deploy_toml, "deploy"), "sites/landing/up", "points outside")


def test_unknown_target_name(deploy_toml: Path) -> None:
    assert_one_line_error(
        sd(deploy_toml, "status", "--target", "locl"), "no target 'locl' (did you mean 'local'?)", code=2
    )


def test_rollback_with_nothing_deployed(deploy_toml: Path) -> None:
    assert_one_line_error(sd(deploy_toml, "rollback"), "no live release")


def test_missing_config_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.toml"), "status"])
    assert_one_line_error(result, "nope.toml", "sitedeploy init", code=2)
