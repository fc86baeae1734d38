"""MkDocs runs the content repo's code: it must not see publishing credentials, and sites
may pin their own plugins without touching sitedeploy's environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.progress import Silent
from tests.fixtures.git import ContentRepo

HOOK = """
import json, os
def on_post_build(config, **kwargs):
    path = os.path.join(config["site_dir"], "env.json")
    with open(path, "w") as f:
        json.dump({"keys": sorted(os.environ), "home": os.environ.get("HOME", "")}, f)
"""


def test_the_build_sees_no_credentials(
    deploy_toml: Path, content_repo: ContentRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    monkeypatch.setenv("SITEDEPLOY_WEBHOOK_SECRET", "do-not-leak")
    content_repo.write("sites/docs/hooks.py", HOOK)
    content_repo.write(
        "sites/docs/mkdocs.yml",
        content_repo.path.joinpath("sites/docs/mkdocs.yml").read_text() + "hooks:\n  - hooks.py\n",
    )
    content_repo.commit("a hook that reports its environment")
    built = commands.build(config_mod.load(deploy_toml))
    seen = json.loads((built.root / "docs" / "env.json").read_text())
    assert not [k for k in seen["keys"] if k.startswith(("AWS_", "SSH_", "SITEDEPLOY"))]
    assert seen["home"] != str(Path.home())
    assert "SOURCE_DATE_EPOCH" in seen["keys"]


def test_a_site_with_requirements_builds_in_its_own_venv(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    probe = subprocess.run([sys.executable, "-c", "import mkdocs_redirects"], capture_output=True)
    assert probe.returncode != 0, "the plugin must not be in sitedeploy's own environment for this test"
    content_repo.write("sites/docs/requirements.txt", "mkdocs==1.6.1\nmkdocs-redirects==1.2.3\n")
    content_repo.write(
        "sites/docs/mkdocs.yml",
        content_repo.path.joinpath("sites/docs/mkdocs.yml").read_text()
        + "plugins:\n  - redirects:\n      redirect_maps:\n        old.md: guide.md\n",
    )
    content_repo.commit("pin a plugin")
    cfg = config_mod.load(deploy_toml)
    said = Said()
    built = commands.build(cfg, progress=said)
    assert "guide/" in (built.root / "docs" / "old" / "index.html").read_text()
    venvs = [p for p in (cfg.state_dir / "venvs" / "docs").glob("mkdocs-*") if p.is_dir()]
    assert len(venvs) == 1  # one per site: never shared
    # The completion marker is beside the venv, where pip's code cannot write.
    assert venvs[0].with_name(venvs[0].name + ".complete").is_file()
    # The long first step (pip installing the requirements) says what it is doing.
    assert "site 'docs': installing sites/docs/requirements.txt in a new venv" in said.lines


class Said(Silent):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)
