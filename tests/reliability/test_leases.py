"""A dead deployer never blocks a rollback for long; a paused one never switches over a taker.

The lock is a lease (``lock_ttl``, 2 s here) renewed by its holder. Each target type (a local
folder, two sshd hosts, the S3 server) gets a deploy killed with SIGKILL at every step of the
transaction while it holds the lease; then ``sitedeploy rollback`` runs as *another machine*
(``SITEDEPLOY_IDENTITY``, so the dead pid cannot be checked) and must succeed within the TTL
plus one renewal interval (plus the rollback's own run time). The figure — time from the kill to
the rollback's success — goes into the reliability report.

A holder stopped with SIGSTOP just before its switch, whose lease expires while it is stopped,
is taken over by a rollback from another machine; after SIGCONT it stops with ``LeaseLost`` and
the rollback stays live.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy.release import records
from sitedeploy.release.history import previous_release
from sitedeploy.release.lock import read_lock
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server, bucket_tree
from tests.fixtures.sshd import SSHEnv, SSHServer
from tests.reliability import report
from tests.reliability.scenario import EXE, Scenario, write_deploy_toml
from tests.reliability.trees import bytes_digests, tree_digests

TTL = 2.0
RENEWAL = TTL / 3
STEPS = ["prepare", "record", "switch", "history", "prune"]
OTHER = {"SITEDEPLOY_IDENTITY": "oncall@other-machine"}

report.table("leases", f"{'target':6} {'killed at':9} {'kill → rollback ok':>18}  rollback alone")


def _local(tmp_path: Path) -> Scenario:
    repo = ContentRepo(tmp_path / "content")
    public = tmp_path / "public"
    table = {"type": "local", "path": str(public), "lock_ttl": TTL}
    config = write_deploy_toml(tmp_path, repo.path, "local", table)

    def served() -> list[dict[str, str]]:
        return [tree_digests(public / "current") if (public / "current").exists() else {}]

    return Scenario("local", repo, config, served)


def _ssh(tmp_path: Path, ssh_env: SSHEnv, servers: tuple[SSHServer, SSHServer]) -> Scenario:
    repo = ContentRepo(tmp_path / "content")
    table = {**ssh_env.target_table(Path("site")), "lock_ttl": TTL}
    config = write_deploy_toml(tmp_path, repo.path, "ssh", table)
    return Scenario("ssh", repo, config, lambda: [tree_digests(s.home / "site/current") for s in servers])


def _s3(tmp_path: Path, s3_server: S3Server, bucket: str) -> Scenario:
    repo = ContentRepo(tmp_path / "content")
    table = {
        "type": "s3",
        "bucket": bucket,
        "endpoint_url": s3_server.url,
        "region": "us-east-1",
        "lock_ttl": TTL,
    }
    config = write_deploy_toml(tmp_path, repo.path, "s3", table)
    client = s3_server.client()
    return Scenario("s3", repo, config, lambda: [bytes_digests(bucket_tree(client, bucket))])


def _rollback_as_other(sc: Scenario, to: str) -> tuple[int, str]:
    sc.extra_env = dict(OTHER)
    try:
        run = sc.cli("rollback", "--to", to, "--lock-timeout", "30")
    finally:
        sc.extra_env = {}
    return run.returncode, run.stderr


def _prepared(sc: Scenario) -> float:
    """Two deploys (something to roll back to); the time a rollback takes with no lock held."""
    for _ in range(2):
        sc.next_commit()
        assert sc.cli("deploy").returncode == 0
    with sc.target() as t:
        back = previous_release(t, t.live_release())
    assert back is not None
    start = time.monotonic()
    code, err = _rollback_as_other(sc, back)
    assert code == 0, err
    commands.resume(sc.config)
    return time.monotonic() - start


def kill_then_rollback(sc: Scenario) -> None:
    alone = _prepared(sc)
    for step in STEPS:
        sc.next_commit()
        assert sc.cli("deploy").returncode == 0  # a live release with one to go back to
        sc.next_commit()
        run = sc.cli("deploy", crash_at=step)
        killed_at = time.monotonic()
        assert run.killed, run.stderr
        with sc.target() as t:
            holder = read_lock(t)
            back = previous_release(t, t.live_release())
        assert holder is not None and holder.ttl == TTL, "the killed deploy held the lease"
        assert back is not None
        code, err = _rollback_as_other(sc, back)
        took = time.monotonic() - killed_at
        assert code == 0, err
        assert sc.live()[0] == back
        with sc.target() as t:
            last = records.read_history(t)[-1]
            assert read_lock(t) is None
        assert last.deployed_by == OTHER["SITEDEPLOY_IDENTITY"] and last.action == "rollback"
        assert f"took over the stale lock of {holder.owner}" in last.note
        report.row("leases", f"{sc.kind:6} {step:9} {took:17.2f}s  {alone:.2f}s")
        assert took <= TTL + RENEWAL + alone + 1.5, f"{sc.kind}: {took:.2f}s from kill to rollback"
        commands.resume(sc.config)


@pytest.mark.slow
def test_local_rollback_from_another_machine_after_a_kill_at_every_step(tmp_path: Path) -> None:
    kill_then_rollback(_local(tmp_path))


@pytest.mark.slow
def test_ssh_rollback_from_another_machine_after_a_kill_at_every_step(
    tmp_path: Path, ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer]
) -> None:
    kill_then_rollback(_ssh(tmp_path, ssh_env, sshd_pair))


@pytest.mark.slow
def test_s3_rollback_from_another_machine_after_a_kill_at_every_step(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    kill_then_rollback(_s3(tmp_path, s3_server, s3_bucket))


# --- a paused holder ----------------------------------------------------------------------------


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def paused_holder_never_switches(sc: Scenario) -> None:
    _prepared(sc)
    sc.next_commit()
    assert sc.cli("deploy").returncode == 0
    with sc.target() as t:
        before = t.live_release()
        back = previous_release(t, before)
    assert back is not None
    sc.next_commit()
    env = {**os.environ, "SITEDEPLOY_PAUSE_AT": "switch"}
    command = [EXE, "--config", str(sc.config_path), "deploy"]
    holder = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _stopped(holder.pid):  # it stopped itself just before its switch
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        code, err = _rollback_as_other(sc, back)  # waits out the lease, then takes over
        assert code == 0, err
        os.kill(holder.pid, signal.SIGCONT)
        _, out = holder.communicate(timeout=60)
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
    assert holder.returncode == 1
    assert "lost its lock" in out.decode() and "nothing was switched" in out.decode()
    assert sc.live()[0] == back, "the paused holder switched over the run that took its lease"
    with sc.target() as t:
        assert records.read_history(t)[-1].action == "rollback"
        assert read_lock(t) is None


@pytest.mark.slow
def test_local_paused_holder_does_not_switch_over_the_taker(tmp_path: Path) -> None:
    paused_holder_never_switches(_local(tmp_path))


@pytest.mark.slow
def test_ssh_paused_holder_does_not_switch_over_the_taker(
    tmp_path: Path, ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer]
) -> None:
    paused_holder_never_switches(_ssh(tmp_path, ssh_env, sshd_pair))


@pytest.mark.slow
def test_s3_paused_holder_does_not_switch_over_the_taker(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    paused_holder_never_switches(_s3(tmp_path, s3_server, s3_bucket))
