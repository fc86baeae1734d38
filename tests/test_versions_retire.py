"""Removing a version goes through the transaction's retire mode on a real local family: a dry
run changes nothing, a run killed between unlinking a version and retiring its line leaves an
orphan that the next run finds and finishes, and the root's history says who removed what."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_versions import ok, repo, sd, served, versioned

__all__ = ["repo", "versioned"]  # the fixtures this module uses
EXE = str(Path(sys.executable).with_name("sitedeploy"))


def history(deploy_toml: Path) -> list[dict[str, object]]:
    return json.loads(ok(sd(deploy_toml, "--json", "history")).stdout)  # type: ignore[no-any-return]


def names(deploy_toml: Path) -> list[str]:
    return [v["version"] for v in json.loads((served(deploy_toml) / "versions.json").read_text())]


def test_a_dry_run_delete_checks_and_counts_but_changes_nothing(versioned: Path) -> None:
    ok(sd(versioned, "versions", "deploy"))
    before = history(versioned)
    dry = ok(sd(versioned, "versions", "delete", "1.4", "--dry-run"))
    assert "1.4 would be removed (dry run, nothing changed)" in dry.stdout and "file(s)" in dry.stdout
    assert history(versioned) == before and "1.4" in names(versioned)
    assert (versioned.parent / "public/lines/1.4/current").is_symlink()
    refused = sd(versioned, "versions", "delete", "2.1", "--dry-run")  # the rule-made 'latest' names it
    assert refused.exit_code == 1 and "served as latest" in refused.stderr


def test_a_delete_killed_before_the_line_is_retired_is_finished_by_the_next_run(versioned: Path) -> None:
    ok(sd(versioned, "versions", "deploy"))
    env = {**os.environ, "SITEDEPLOY_CRASH_AT": "retire"}
    command = [EXE, "--config", str(versioned), "versions", "delete", "1.4"]
    killed = subprocess.run(command, env=env, capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    line = versioned.parent / "public/lines/1.4"
    assert "1.4" not in names(versioned) and (line / "current").is_symlink()  # an orphan
    ok(sd(versioned, "versions", "deploy"))  # the next run finds it and finishes
    assert not line.exists()
    retired = history(versioned)[0]
    assert retired["action"] == "retire" and str(retired["note"]).startswith("removed version 1.4 (")
    assert "took over the expired lock" in str(retired["note"]) or retired["deployed_by"]


def test_max_delete_refuses_a_delete_before_the_root_changes_and_force_overrides(versioned: Path) -> None:
    versioned.write_text(versioned.read_text() + "max_delete = 1\n")  # [targets.local] is last
    ok(sd(versioned, "versions", "deploy"))
    before = history(versioned)
    refused = sd(versioned, "versions", "delete", "1.4")
    assert refused.exit_code == 1 and "removing version 1.4 deletes" in refused.stderr
    assert "max_delete = 1" in refused.stderr and "--force" in refused.stderr
    assert history(versioned) == before and "1.4" in names(versioned)  # the root still serves it
    ok(sd(versioned, "versions", "delete", "1.4", "--force"))
    assert "1.4" not in names(versioned) and not (versioned.parent / "public/lines/1.4").exists()
