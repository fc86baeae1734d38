"""The agent under a stream of pushes, alone and as an HA pair on the same target.

One agent (``sitedeploy agent``, a real long-running process) watches a bare repo that gets
100+ pushes in a few seconds each: some break the build (a symlink out of the repo), some
revert the commit before. It ends on the newest good commit; its RSS and open files stay flat;
no child process outlives its step; each failing commit it tried is notified exactly once.

Two agents (two state folders, their own mirrors) on one target under the same stream: each
commit is deployed at most once, history stays whole, and when one is SIGKILLed mid-deploy
the other takes over its lock (the dead holder's pid is gone) and converges the target.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.fixtures.agent import AgentEnv, NotifySink, Remote
from tests.fixtures.sshd import children
from tests.reliability import report
from tests.reliability.trees import digests, tree_digests

EXE = str(Path(sys.executable).with_name("sitedeploy"))
PUSHES = 104


@dataclass
class Stream:
    """Pushes to the remote; remembers which commits build and which do not."""

    remote: Remote
    good: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    broken: bool = False

    def push(self, k: int) -> None:
        r = self.remote
        if k % 11 == 0 and k:  # revert whatever came before (a bad commit, or a good one)
            r.git("revert", "--no-edit", "HEAD")
            self.broken = (r.work / "sites/web/leak").is_symlink()
        elif k % 7 == 0:  # a symlink out of the repo stops the build
            r.static_site(f"v{k}")
            leak = r.work / "sites/web/leak"
            if not leak.is_symlink():
                leak.symlink_to("/etc/hostname")
            r.git("add", "-A")
            r.git("commit", "-q", "-m", f"v{k} broken")
            self.broken = True
        else:
            leak = r.work / "sites/web/leak"
            if leak.is_symlink():
                leak.unlink()
            r.static_site(f"v{k}")
            r.commit(f"v{k}")
            self.broken = False
        r.push()
        (self.bad if self.broken else self.good).append(r.git("rev-parse", "HEAD"))


def start_agent(env: AgentEnv, config: Path, state: str) -> subprocess.Popen[bytes]:
    command = [EXE, "--config", str(config), "--state-dir", str(env.root / state), "agent"]
    with (env.root / f"{state}.log").open("wb") as log:  # the child keeps its own copy
        return subprocess.Popen(command, stderr=log, stdout=log, stdin=subprocess.DEVNULL)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    """The fewest open files over half a second: a tick's git pipes come and go."""
    counts = []
    for _ in range(5):
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.1)
    return min(counts)


def lasting_children(pid: int, samples: int = 5) -> set[int]:
    """Children seen in every one of several samples a quarter second apart: left behind."""
    seen: set[int] | None = None
    for _ in range(samples):
        now = set(children(pid))
        seen = now if seen is None else seen & now
        time.sleep(0.25)
    return seen or set()


def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def agent_config(env: AgentEnv, sink: NotifySink) -> Path:
    notify = f'[[agent.notify]]\nurl = "{sink.url}/"\nformat = "json"\n'
    return env.write_config(agent=f"interval = 0.2\njitter = 0\nlink_check = false\n{notify}")


def test_one_agent_under_a_hundred_pushes_ends_on_the_newest_good_commit_with_flat_resources(
    agent_env: AgentEnv, notify_sink: NotifySink
) -> None:
    env = agent_env
    proc = start_agent(env, agent_config(env, notify_sink), "state")
    stream = Stream(env.remote)
    try:
        assert wait_for(lambda: env.live_commit() is not None, 60)
        samples = []
        for k in range(PUSHES):
            stream.push(k)
            time.sleep(0.05)
            if k % 20 == 19:
                samples.append((rss_kb(proc.pid), open_fds(proc.pid)))
        stream.push(1003)  # a good commit (neither a revert nor broken): the agent must end on it
        assert not stream.broken
        assert wait_for(lambda: env.live_commit() == stream.good[-1], 120), "did not converge"
        time.sleep(1)  # an idle tick or two
        final = (rss_kb(proc.pid), open_fds(proc.pid))
        leftover = lasting_children(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    failed = Counter(n["commit"] for n in notify_sink.received if n["event"] == "failed")
    warm_rss, warm_fds = samples[0]
    report.row(
        "agent",
        f"one agent: {PUSHES + 1} pushes ({len(stream.bad)} bad), "
        f"RSS {warm_rss // 1024}->{final[0] // 1024} MB, fds {warm_fds}->{final[1]}, "
        f"children left {len(leftover)}, failures notified {sum(failed.values())} "
        f"(max {max(failed.values(), default=0)} per commit)",
    )
    assert code == 0
    assert leftover == set()
    assert final[0] <= warm_rss + 30 * 1024, samples  # flat: no growth with the number of pushes
    assert final[1] <= max(fds for _, fds in samples) + 2, samples
    assert all(n == 1 for n in failed.values()), failed
    assert set(failed) <= set(stream.bad) and failed, "failing commits the agent tried are told once"
    assert tree_digests(env.public / "current") == live_manifest_digests(env)


def live_manifest_digests(env: AgentEnv) -> dict[str, str]:
    from sitedeploy.release.records import read_manifest
    from sitedeploy.targets.local import LocalTarget

    t = LocalTarget("site", env.public)
    live = t.live_release()
    assert live is not None
    manifest = read_manifest(t, live)
    assert manifest is not None
    return digests(manifest)


def test_two_agents_deploy_each_commit_once_and_survive_one_being_killed_mid_deploy(
    agent_env: AgentEnv, notify_sink: NotifySink
) -> None:
    env = agent_env
    config = agent_config(env, notify_sink)
    agents = [start_agent(env, config, "state-a"), start_agent(env, config, "state-b")]
    stream = Stream(env.remote)
    pusher = threading.Thread(target=lambda: [stream.push(k) or time.sleep(0.1) for k in range(1, 41)])
    try:
        assert wait_for(lambda: env.live_commit() is not None, 60)
        pusher.start()
        killed_mid_deploy = kill_when_holding_the_lock(env, agents[0], 60)
        pusher.join(120)
        stream.push(50)  # a good commit: the survivor must end on it
        assert wait_for(lambda: env.live_commit() == stream.good[-1], 120), "the survivor did not converge"
    finally:
        for proc in agents:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    history = json.loads((env.public / ".sitedeploy" / "history.json").read_text())
    deploys = Counter(e["commit"] for e in history if e["action"] == "deploy")
    report.row(
        "agent",
        f"two agents: {len(history)} history entries, max deploys of one commit {max(deploys.values())}, "
        f"A SIGKILLed holding the lock: {killed_mid_deploy}, B converged on the newest good commit",
    )
    assert max(deploys.values()) == 1, deploys
    assert killed_mid_deploy
    assert tree_digests(env.public / "current") == live_manifest_digests(env)


def kill_when_holding_the_lock(env: AgentEnv, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """SIGKILL ``proc`` the moment lock.json names it: mid-deploy, between lock and unlock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock_holder(env) == proc.pid:
            proc.kill()
            proc.wait()  # reaped, as systemd would: a zombie's pid still looks alive to the lock
            return True
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    return False


def lock_holder(env: AgentEnv) -> int | None:
    try:
        return int(json.loads((env.public / ".sitedeploy" / "lock.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None
