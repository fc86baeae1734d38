"""``verify_signatures`` holds on every release line (finding 9): a plain deploy, ``versions
deploy``, ``previews deploy``, ``import-mike`` and the agent's versions/previews tick each refuse
an unsigned commit with one line, before building it, and publish nothing; ``--force`` publishes
and history says it was forced."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy.agent.loop import Agent
from sitedeploy.config import Config
from sitedeploy.errors import SignatureError
from sitedeploy.versions import api, mike
from sitedeploy.versions import previews as pv
from tests.fixtures.agent import AgentEnv

BOTH = 'versions = "tag:v*"\npreviews = "branch:feature/*"\npreview_path = "previews"\n'


@pytest.fixture
def signed_config(agent_env: AgentEnv, tmp_path: Path) -> tuple[AgentEnv, str]:
    key = tmp_path / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"ada@example.com {key.with_suffix('.pub').read_text()}")
    env = agent_env
    env.remote.static_site("v1")
    env.remote.commit("unsigned")
    env.remote.git("tag", "v1.0.0")
    env.remote.git("branch", "feature/x")
    env.remote.push("main", "feature/x", "--tags")
    return env, f'verify_signatures = "ssh"\nallowed_signers = "{allowed}"\n'


def one_line(message: str, sha: str) -> None:
    assert "\n" not in message and f"commit {sha[:12]} is not signed" in message, message


def test_a_plain_deploy_refuses_an_unsigned_commit(signed_config: tuple[AgentEnv, str]) -> None:
    env, source = signed_config
    head = env.remote.git("rev-parse", "HEAD")
    with pytest.raises(SignatureError) as refused:
        commands.deploy(env.config(source=source))
    one_line(refused.value.message, head)
    assert env.live_commit() is None


def test_versions_and_previews_deploys_refuse_an_unsigned_tag_and_branch(
    signed_config: tuple[AgentEnv, str],
) -> None:
    env, source = signed_config
    head = env.remote.git("rev-parse", "HEAD")
    config = env.config(source=source, target=BOTH)
    for results in (api.deploy_versions(config), pv.deploy_previews(config)):
        assert [r.outcome for r in results] == ["failed"]
        one_line(results[0].detail, head)
    assert not (env.public / "lines").exists() and not (env.public / "previews" / "lines").exists()

    forced = api.deploy_versions(config, force=True)
    assert [r.outcome for r in forced] == ["deployed"]
    history = json.loads((env.public / "lines" / "1.0" / ".sitedeploy" / "history.json").read_text())
    assert "forced: commit" in history[-1]["note"] and "is not signed" in history[-1]["note"]


def test_import_mike_refuses_an_unsigned_branch(signed_config: tuple[AgentEnv, str]) -> None:
    env, source = signed_config
    env.remote.git("checkout", "-q", "--orphan", "gh-pages")
    env.remote.git("rm", "-rfq", ".")
    env.remote.write("versions.json", '[{"version": "1.0", "title": "1.0", "aliases": []}]')
    env.remote.write("1.0/index.html", "<!doctype html><title>1.0</title><p>mike</p>\n")
    sha = env.remote.commit("mike deploy")
    env.remote.push("gh-pages")
    config: Config = env.config(source=source, target='versions = "tag:v*"\n')
    with pytest.raises(SignatureError) as refused:
        mike.import_mike(config)
    one_line(refused.value.message, sha)
    assert not (env.public / "lines" / "1.0" / "current").exists()


def test_the_agent_tick_refuses_unsigned_versions_and_previews(signed_config: tuple[AgentEnv, str]) -> None:
    env, source = signed_config
    head = env.remote.git("rev-parse", "HEAD")
    agent = Agent(env.config(source=source, target=BOTH), env.log())
    report = agent.tick()
    # (the agent's plain deploys: tests/test_agent_signatures.py)
    assert set(report.failed) == {"site/1.0", "site/br-feature-x"}, report
    assert report.deployed == []
    told = [n.message for n in agent.notifier.sent if n.event == "failed"]
    assert len(told) == 2 and all(f"commit {head[:12]} is not signed" in m for m in told), told
    assert not (env.public / "lines").exists() and not (env.public / "previews" / "lines").exists()


def test_every_kind_of_build_carries_the_signature_rule() -> None:
    """publish() holds ``lazy.signature``: each BuildPlan subclass must set it (or inherit the
    base's ``__init__``, which checks the commit), so a new kind of line cannot skip the rule."""
    import inspect

    from sitedeploy.build import BuildPlan
    from sitedeploy.versions import building, s3  # noqa: F401  (register the subclasses)

    kinds = BuildPlan.__subclasses__()
    assert {k.__name__ for k in kinds} >= {"LineBuild", "Imported", "Copied"}
    for kind in kinds:
        init = inspect.getsource(kind.__init__)
        assert "self.signature = " in init or "super().__init__(" in init, kind.__name__


def test_a_release_of_a_commit_is_made_in_publish_only() -> None:
    """The signature rule sits in ``commands.publish``; no other code makes a commit's record
    or prepares a release (the family root's release has no commit: it is sitedeploy's own)."""
    import re

    import sitedeploy

    package = Path(sitedeploy.__file__).parent
    calls = re.compile(r"\b(?:new_record|tx\.publish)\(")
    found = sorted(
        f"{path.relative_to(package)}"
        for path in package.rglob("*.py")
        for line in path.read_text().splitlines()
        if calls.search(line) and not line.lstrip().startswith("def ") and path.name != "transaction.py"
    )
    assert found == ["commands/deploy.py", "commands/deploy.py", "versions/publish.py"], found
