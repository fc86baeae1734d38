"""Long steps say what they do, and a deploy says where its time went."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner

from sitedeploy.cli.main import cli
from sitedeploy.progress import ANNOUNCE_AFTER, Silent, Timed, stage
from tests.fixtures.git import ContentRepo


class Said(Silent):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)


def test_a_stage_says_what_it_does_only_when_it_runs_long() -> None:
    said = Said()
    timed = Timed(said)
    with stage(timed, "fetch", say="fetching the repo"):
        pass
    assert said.lines == []  # a fast step stays quiet
    with stage(timed, "build docs", say="building docs"), stage(timed, "images docs"):
        time.sleep(ANNOUNCE_AFTER + 0.3)
    assert said.lines == ["building docs"]
    assert [name for name, _, _ in timed.stages] == ["fetch", "build docs", "images docs"]
    summary = timed.summary()
    assert summary.startswith("time: fetch 0.0 s, build docs 1.") and "(images docs 1." in summary


def test_the_deploy_summary_shows_where_the_time_went(deploy_toml: Path, content_repo: ContentRepo) -> None:
    done = CliRunner().invoke(cli, ["--config", str(deploy_toml), "deploy"])
    assert done.exit_code == 0, done.output
    [timings] = [line for line in done.stdout.splitlines() if line.startswith("time: ")]
    assert "build docs" in timings and "publish local" in timings
