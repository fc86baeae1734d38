"""Sites built side by side (``[build] jobs``): the release is the same whatever the number,
a failure is the earliest site's, and memory caps how many run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from sitedeploy.build.jobs import available_memory_mb, run_all, workers
from sitedeploy.config import BuildConfig
from tests.fixtures.git import ContentRepo, write_config
from tests.fixtures.shared_cache import run_cli


def test_the_release_is_the_same_whatever_the_number_of_jobs(tmp_path: Path) -> None:
    repo = ContentRepo(tmp_path / "content")
    for n in range(6):
        repo.add_static_site(f"s{n}", version=f"v{n}")
    repo.commit("six sites")
    manifests = []
    for jobs in (1, 3):
        (tmp_path / f"jobs-{jobs}").mkdir()
        config = write_config(
            tmp_path / f"jobs-{jobs}", repo.path, sites="", extra=f"\n[build]\njobs = {jobs}\n"
        )
        result = run_cli(config, "--json", "build")
        assert result.exit_code == 0, result.output
        root = Path(json.loads(result.output)["path"])
        manifests.append({str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()})
    assert manifests[0] == manifests[1] and len(manifests[0]) == 13  # 6 sites, 2 files each, and .well-known


def test_results_come_back_in_order_and_the_earliest_failure_wins() -> None:
    assert run_all(lambda n: n * n, list(range(20)), 4) == [n * n for n in range(20)]

    def fail_on_odd(n: int) -> int:
        if n % 2:
            raise ValueError(n)
        return n

    with pytest.raises(ValueError, match=r"^1$"):
        run_all(fail_on_odd, list(range(10)), 3)


def test_memory_caps_the_number_of_jobs() -> None:
    settings = BuildConfig()
    assert workers(dataclasses.replace(settings, jobs=64), sites=3) == 3
    huge = dataclasses.replace(settings, jobs=64, job_memory_mb=available_memory_mb() + 1)
    assert workers(huge, sites=100) == 1
