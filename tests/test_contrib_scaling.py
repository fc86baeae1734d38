"""The shipped CI pipelines and Kubernetes manifests run exactly the commands the manual
describes: each ``sitedeploy …`` line they contain is run here, in their order (CI and the
build Job push; the agents publish from the shared cache without building)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from sitedeploy.config.deploy_toml import from_dict
from tests.fixtures.git import ContentRepo
from tests.fixtures.shared_cache import CacheKeys, machine, run_cli

CONTRIB = Path(__file__).parent.parent / "contrib"


def commands(path: Path) -> list[str]:
    """Every ``sitedeploy …`` line in the file's strings (run: steps, script:, command:)."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)
        elif isinstance(node, str):
            found.extend(line.strip() for line in node.splitlines() if line.strip().startswith("sitedeploy "))

    for document in yaml.safe_load_all(path.read_text()):
        visit(document)
    return found


def run(line: str) -> Any:
    argv = [os.path.expandvars(arg) for arg in shlex.split(line)][1:]  # the shell's job, then drop the name
    config, rest = Path(argv[1]), argv[2:]
    assert argv[0] == "--config"
    if rest == ["agent"]:
        rest = ["agent", "--once"]  # the Deployment's long-running agent, one pass
    return run_cli(config, *rest)


@pytest.fixture
def repo(tmp_path: Path) -> ContentRepo:
    content = ContentRepo(tmp_path / "content")
    for name in ("landing", "blog"):
        content.add_static_site(name)
    content.commit("sites")
    return content


@pytest.mark.parametrize(
    ("pipeline", "commit_var"),
    [("ci/github-actions.yml", "GITHUB_SHA"), ("ci/gitlab-ci.yml", "CI_COMMIT_SHA")],
)
def test_the_ci_pipelines_push_what_a_cache_only_agent_publishes(
    tmp_path: Path,
    repo: ContentRepo,
    cache_keys: CacheKeys,
    pipeline: str,
    commit_var: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = str(tmp_path / "shared")
    ci = machine(tmp_path / "ci", repo.path, cache, cache_keys, sign=cache_keys.ci)
    agent = machine(tmp_path / "agent", repo.path, cache, cache_keys, extra='mode = "cache-only"\n')
    lines = commands(CONTRIB / pipeline)
    assert lines == [f'sitedeploy --config "$SITEDEPLOY_CONFIG" build --commit "${commit_var}" --push']
    monkeypatch.setenv("SITEDEPLOY_CONFIG", str(ci))
    monkeypatch.setenv(commit_var, repo.git("rev-parse", "HEAD"))
    pushed = run(lines[0])
    assert pushed.exit_code == 0, pushed.output
    deployed = run_cli(agent, "deploy")
    assert deployed.exit_code == 0 and "building site" not in deployed.output, deployed.output
    assert deployed.output.count("fetched site") == 2


def test_the_kubernetes_build_job_and_agents_publish_one_site_per_pod(
    tmp_path: Path, repo: ContentRepo, cache_keys: CacheKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = str(tmp_path / "shared")
    builder = machine(tmp_path / "job", repo.path, cache, cache_keys, sign=cache_keys.ci)
    agents = [
        machine(tmp_path / f"agent-{n}", repo.path, cache, cache_keys, extra='mode = "cache-only"\n')
        for n in range(2)
    ]
    (job_line,) = commands(CONTRIB / "kubernetes" / "build-job.yaml")
    (agent_line,) = commands(CONTRIB / "kubernetes" / "agent-deployment.yaml")
    monkeypatch.setenv("COMMIT", repo.git("rev-parse", "HEAD"))
    monkeypatch.setenv("SITEDEPLOY_CONFIG", str(builder))
    for index in range(2):  # the Job's pods, one site each
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
        pod = run(job_line)
        assert pod.exit_code == 0 and pod.output.count("building site") == 1, pod.output
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    past = run(job_line)
    assert past.exit_code != 0 and "--site-index 2: the commit has 2 sites" in past.output
    for config in agents:
        monkeypatch.setenv("SITEDEPLOY_CONFIG", str(config))
        passed = run(agent_line)
        assert passed.exit_code == 0, passed.output
        assert (config.parent / "public" / "current" / "blog" / "index.html").is_file()
        assert not list((config.parent / ".sitedeploy" / "workspaces").glob("*"))  # nothing built here


def test_the_kubernetes_operator_file_is_a_valid_config() -> None:
    (configmap,) = yaml.safe_load_all((CONTRIB / "kubernetes" / "configmap.yaml").read_text())
    import tomllib

    raw = tomllib.loads(configmap["data"]["deploy.toml"])
    config = from_dict(raw, Path("/etc/sitedeploy/deploy.toml"))
    assert config.build.mode == "cache-only" and config.build.cache.startswith("s3://")
