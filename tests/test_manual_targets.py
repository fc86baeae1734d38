"""The manual's SSH and S3 sessions run as written, against real servers: two OpenSSH
servers on this machine and the S3 API server (moto). Each session runs in a new MkDocs
project whose deploy.toml names the test's servers as ``[targets.prod]``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.s3 import REGION, S3Server, bucket_tree
from tests.fixtures.sshd import SSHEnv, SSHServer
from tests.test_manual import MANUAL, fenced, session_env


def page_session(page: str) -> str:
    (session,) = [s for s in fenced((MANUAL / page).read_text(), "sh") if "--target prod --dry-run" in s]
    return session


def run_session(tmp_path: Path, page: str, target: dict[str, Any]) -> str:
    """A new MkDocs project with ``target`` as [targets.prod], committed; then the page's session."""
    env = session_env(tmp_path)
    subprocess.run(["mkdocs", "new", "site"], cwd=tmp_path, env=env, check=True, capture_output=True)
    repo = tmp_path / "site"
    table = "\n".join(f"{key} = {json.dumps(value)}" for key, value in target.items())
    (repo / "deploy.toml").write_text(f'[source]\nrepo = "."\n\n[targets.prod]\n{table}\n')
    for step in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "docs"]):
        subprocess.run(step, cwd=repo, env=env, check=True)
    command = ["bash", "-euo", "pipefail", "-c", page_session(page)]
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_the_ssh_page_session_runs_against_two_sshd_hosts(
    tmp_path: Path, ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer]
) -> None:
    out = run_session(tmp_path, "targets/ssh.md", ssh_env.target_table(Path("www")))
    assert "rolled back" in out
    for server in sshd_pair:
        live = (server.home / "www/current").resolve()
        assert "More text." not in (live / "index.html").read_text()  # the rollback reached both


@pytest.mark.slow
def test_the_s3_page_session_runs_against_the_s3_server(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    target = {"type": "s3", "bucket": s3_bucket, "endpoint_url": s3_server.url, "region": REGION}
    out = run_session(tmp_path, "targets/s3.md", target)
    assert "rolled back" in out
    assert b"More text." not in bucket_tree(s3_server.client(), s3_bucket)["index.html"]
