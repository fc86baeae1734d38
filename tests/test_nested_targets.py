"""Nested mounts (landing at /, docs at /docs/, blog at /blog/) on the S3 and SSH targets,
through the CLI, with the sites taken from the repo's committed deploy.toml and the target
from an operator file outside the repo."""

from __future__ import annotations

import json
from pathlib import Path

from sitedeploy.build.release_tree import MARKER
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server, bucket_tree
from tests.fixtures.sshd import SSHEnv
from tests.test_layouts import files_of, nested_repo, sd


def operator_file(folder: Path, repo: ContentRepo, target: dict[str, object]) -> Path:
    folder.mkdir()
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in target.items())
    path = folder / "deploy.toml"
    path.write_text(f'[source]\nrepo = "{repo.path}"\n\n[targets.web]\n{lines}')
    return path


def locally_published(repo: ContentRepo) -> dict[str, bytes]:
    assert sd(repo.path / "deploy.toml", "deploy").exit_code == 0
    files = files_of(repo.path / "public" / "current")
    del files[MARKER]
    return files


def test_nested_sites_on_s3(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    repo = nested_repo(tmp_path)
    target = {"type": "s3", "bucket": s3_bucket, "endpoint_url": s3_server.url, "region": "us-east-1"}
    config = operator_file(tmp_path / "ops", repo, target)

    result = sd(config, "deploy")

    assert result.exit_code == 0, result.output
    served = {
        k: v
        for k, v in bucket_tree(s3_server.client(), s3_bucket).items()
        if not k.startswith(".sitedeploy/")
    }
    assert json.loads(served.pop(MARKER))["sites"] == {"landing": "/", "docs": "/docs/", "blog": "/blog/"}
    assert served == locally_published(repo)
    assert "docs/search/search_index.json" in served and "blog/404.html" in served


def test_nested_sites_over_ssh(tmp_path: Path, ssh_env: SSHEnv) -> None:
    server = ssh_env.server()
    repo = nested_repo(tmp_path)
    config = operator_file(tmp_path / "ops", repo, ssh_env.target_table(Path("www")))

    result = sd(config, "deploy")

    assert result.exit_code == 0, result.output
    served = files_of(server.home / "www" / "current")
    del served[MARKER]
    assert served == locally_published(repo)
