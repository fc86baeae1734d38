"""``verify_signatures = "ssh"``: only commits signed by an allowed key are deployed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitedeploy.agent.loop import Agent
from tests.fixtures.agent import AgentEnv


def _key(directory: Path, name: str) -> Path:
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


@pytest.fixture
def signers(tmp_path: Path) -> tuple[Path, Path, Path]:
    keys = tmp_path / "keys"
    keys.mkdir()
    alice, eve = _key(keys, "alice"), _key(keys, "eve")
    allowed = keys / "allowed_signers"
    allowed.write_text(f"ada@example.com {alice.with_suffix('.pub').read_text()}")
    return alice, eve, allowed


def test_only_commits_signed_by_an_allowed_key_deploy(
    agent_env: AgentEnv, signers: tuple[Path, Path, Path]
) -> None:
    env = agent_env
    alice, eve, allowed = signers
    source = f'verify_signatures = "ssh"\nallowed_signers = "{allowed}"\n'
    agent = Agent(env.config(source=source), env.log())

    unsigned = env.remote.git("rev-parse", "HEAD")  # the fixture's first commit is not signed
    assert agent.tick().failed == ["site"]
    assert env.live_commit() is None
    assert f"commit {unsigned[:12]} is not signed" in env.events("failed")[-1]["error"]

    env.remote.static_site("v2")
    good = env.remote.commit_push("signed by alice", sign_with=alice)
    assert agent.tick().deployed == ["site"]
    assert env.live_commit() == good
    assert "ada@example.com" in env.events("signature")[-1]["signer"]

    env.remote.static_site("v3")
    forged = env.remote.commit_push("signed by eve", sign_with=eve)
    assert agent.tick().failed == ["site"]
    error = env.events("failed")[-1]["error"]
    eve_fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(eve.with_suffix(".pub"))], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert f"commit {forged[:12]} is signed by ED25519 key {eve_fingerprint}" in error
    assert "not trusted" in error
    assert env.live_commit() == good

    env.remote.static_site("v4")
    env.remote.commit_push("unsigned again")
    assert agent.tick().failed == ["site"]
    assert "is not signed" in env.events("failed")[-1]["error"]
    assert env.live_commit() == good


@pytest.fixture
def gpg_homes(tmp_path: Path) -> Iterator[Path]:
    keys = tmp_path / "gpg"
    keys.mkdir()
    yield keys
    for home in keys.iterdir():  # gpg starts an agent per home: stop the ones this test made
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)


def _gpg_home(directory: Path, email: str) -> Path:
    home = directory / email.split("@")[0]
    home.mkdir(mode=0o700)
    batch = ["gpg", "--homedir", str(home), "--batch", "--passphrase", ""]
    subprocess.run([*batch, "--quick-gen-key", email, "ed25519", "sign"], check=True, capture_output=True)
    return home


def test_gpg_mode_trusts_the_keys_in_the_configured_keyring(agent_env: AgentEnv, gpg_homes: Path) -> None:
    env = agent_env
    keys = gpg_homes
    alice, mallory = _gpg_home(keys, "ada@example.com"), _gpg_home(keys, "mallory@example.com")
    trusted = keys / "trusted"
    trusted.mkdir(mode=0o700)
    exported = subprocess.run(
        ["gpg", "--homedir", str(alice), "--export", "ada@example.com"], check=True, capture_output=True
    ).stdout
    importing = ["gpg", "--homedir", str(trusted), "--import"]
    subprocess.run(importing, input=exported, check=True, capture_output=True)
    agent = Agent(env.config(source=f'verify_signatures = "gpg"\ngpg_home = "{trusted}"\n'), env.log())

    def signed_commit(home: Path, email: str, version: str) -> str:
        env.remote.static_site(version)
        env.remote.git("add", "-A")
        sign = ["-c", f"user.signingkey={email}"]
        env.remote.git(*sign, "commit", "-q", "-S", "-m", version, env={"GNUPGHOME": str(home)})
        env.remote.push()
        return env.remote.git("rev-parse", "HEAD")

    good = signed_commit(alice, "ada@example.com", "v2")
    assert agent.tick().deployed == ["site"]
    assert env.live_commit() == good
    forged = signed_commit(mallory, "mallory@example.com", "v3")
    assert agent.tick().failed == ["site"]
    assert f"commit {forged[:12]} is signed by" in env.events("failed")[-1]["error"]
    assert env.live_commit() == good
