"""Crash anywhere: SIGKILL a deploy or a rollback at 20 points of its run, on every target type.

Points are the transaction's named steps (``SITEDEPLOY_CRASH_AT``: prepare, record, switch,
history, prune) and seeded random delays over the whole run (source sync, MkDocs build,
images, manifest, each transfer phase). The whole process group is killed, as a power cut
would. After each kill: every host serves exactly the old or exactly the new release (S3,
which has no rename: every key is the old or the new body, and no page is served before the
assets of its release), history parses with no torn entry; then the next run takes over the
dead run's lock and converges: the wanted release is served exactly, history ends with it,
no lock and no staging folder is left behind.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy.release.history import previous_release
from sitedeploy.release.lock import _read_lock as read_lock
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server, bucket_tree
from tests.fixtures.sshd import SSHEnv, SSHServer
from tests.reliability import report
from tests.reliability.scenario import Scenario, parse_history, write_deploy_toml
from tests.reliability.trees import bytes_digests, digests, tree_digests, which

KILLS = 20
DEPLOY_STEPS = ["prepare", "record", "switch", "history", "prune"]
ROLLBACK_STEPS = ["prepare", "switch", "history", "prune"]  # a rollback writes no new record

HEADER = f"{'target':6} {'#':>2} {'action':8} {'point':18} {'killed':6} {'served':6} next run   "
report.table("crash", HEADER + "last progress line")


@dataclass
class Point:
    action: str
    step: str | None
    fraction: float
    window: str = "run"
    """Random delays of a deploy alternate between its "build" part (sync, MkDocs, images,
    manifest: up to the transaction's prepare step) and its "publish" part (transfer, record,
    switch, history, prune), both measured by calibration runs."""

    def label(self, seconds: float) -> str:
        return f"step {self.step}" if self.step else f"{self.window} {seconds:.2f}s"

    def delay(self, seconds: dict[str, float]) -> float | None:
        if self.step:
            return None
        lo, hi = {
            "build": (0.3 * seconds["prepare"], seconds["prepare"]),
            "publish": (seconds["prepare"], seconds["deploy"]),
            "run": (0.3 * seconds["rollback"], seconds["rollback"]),
        }[self.window]
        return lo + self.fraction * (hi - lo)


def points(seed: int) -> Iterator[Point]:
    """Deploys and rollbacks (every third point), named steps first, then random delays."""
    rng = random.Random(seed)
    steps = {"deploy": iter(DEPLOY_STEPS), "rollback": iter(ROLLBACK_STEPS)}
    i = 0
    while True:
        action = "rollback" if i % 3 == 2 else "deploy"
        window = "run" if action == "rollback" else ("publish", "build")[i % 2]
        yield Point(action, next(steps[action], None), rng.uniform(0.0, 0.97), window)
        i += 1


def local_scenario(tmp_path: Path) -> Scenario:
    repo = ContentRepo(tmp_path / "content")
    public = tmp_path / "public"
    config = write_deploy_toml(tmp_path, repo.path, "local", {"type": "local", "path": str(public)})

    def served() -> list[dict[str, str]]:
        return [tree_digests(public / "current") if (public / "current").exists() else {}]

    return Scenario("local", repo, config, served)


def ssh_scenario(tmp_path: Path, ssh_env: SSHEnv, servers: tuple[SSHServer, SSHServer]) -> Scenario:
    repo = ContentRepo(tmp_path / "content")
    config = write_deploy_toml(tmp_path, repo.path, "ssh", ssh_env.target_table(Path("site")))

    def served() -> list[dict[str, str]]:
        return [
            tree_digests(s.home / "site/current") if (s.home / "site/current").exists() else {}
            for s in servers
        ]

    return Scenario("ssh", repo, config, served)


def s3_scenario(tmp_path: Path, s3_server: S3Server, bucket: str) -> Scenario:
    repo = ContentRepo(tmp_path / "content")
    table = {"type": "s3", "bucket": bucket, "endpoint_url": s3_server.url, "region": "us-east-1"}
    config = write_deploy_toml(tmp_path, repo.path, "s3", table)
    client = s3_server.client()
    return Scenario("s3", repo, config, lambda: [bytes_digests(bucket_tree(client, bucket))])


def classify(kind: str, snapshot: list[dict[str, str]], old: dict[str, str], new: dict[str, str]) -> str:
    """What each host served right after the kill: "old" or "new" (S3: also "mid", keys in
    flight in the safe order); fails on a mix."""
    found = set()
    for served in snapshot:
        if kind == "s3":
            found.add(check_s3_order(served, old, new))
            continue
        name = which(served, {"old": old, "new": new})
        assert name is not None, f"{kind}: a host serves a mix of releases"
        found.add(name)
    return "/".join(sorted(found))


def _s3_group(path: str) -> int:
    """The documented write order on S3: assets (0), then pages (1), then the sitemap and the
    search index (2), which point at pages."""
    name = path.rsplit("/", 1)[-1].lower()
    if name == "search_index.json" or (name.startswith("sitemap") and name.endswith((".xml", ".xml.gz"))):
        return 2
    return 1 if name.endswith((".html", ".htm")) else 0


def check_s3_order(served: dict[str, str], old: dict[str, str], new: dict[str, str]) -> str:
    """No rename on S3: keys flip one by one, in groups. Every key of the old and new releases
    holds one of their bodies, and a key of one group is only served new once every key of
    the groups before it is (a page after its assets, the sitemap and search index after the
    pages)."""
    for path in {*old, *new}:
        assert served.get(path) in {old.get(path), new.get(path)} - {None} or path not in served, path
    assert all(p in served for p in old), "an old key vanished before the new release was live"
    flipped = [p for p in new if served.get(p) == new[p] != old.get(p)]
    if flipped:
        latest = max(_s3_group(p) for p in flipped)
        earlier = [p for p in new if _s3_group(p) < latest]
        assert all(served.get(p) == new[p] for p in earlier), "a key went live before the groups it follows"
    pages_new = [p for p in flipped if _s3_group(p) == 1]
    if all(served.get(p) == new[p] for p in new):
        return "new"
    return "old" if not pages_new and all(served.get(p) == old[p] for p in old) else "mid"


def check_converged(sc: Scenario) -> None:
    live, manifest = sc.live()
    assert live is not None and manifest is not None
    want = digests(manifest)
    for served in sc.served():
        shown = {p: served.get(p) for p in want} if sc.kind == "s3" else served  # S3 keeps stale keys
        assert shown == want, f"{sc.kind}: the live release is not served exactly"
    for raw in sc.history_raw():
        assert parse_history(raw)[-1]["release"] == live
    with sc.target() as t:  # no lock, or one whose holder is dead: the next run takes it over
        holder = read_lock(t)
        assert holder is None or holder.is_stale(time.time()), holder
    if sc.kind == "local":
        assert not list((sc.config_path.parent / "public/releases").glob(".*.tmp"))


def run_point(sc: Scenario, i: int, point: Point, seconds: dict[str, float]) -> bool:
    live_before, manifest_before = sc.live()
    old = digests(manifest_before) if manifest_before else {}
    kill_after = point.delay(seconds)
    if point.action == "deploy":
        head = sc.next_commit()
        run = sc.cli("deploy", crash_at=point.step, kill_after=kill_after)
    else:
        with sc.target() as t:
            back = previous_release(t, live_before)
        assert back is not None
        run = sc.cli("rollback", "--to", back, crash_at=point.step, kill_after=kill_after)
    assert run.killed or run.returncode == 0, run.stderr
    snapshot = sc.served()  # judged once the new release is known, below
    for raw in sc.history_raw():
        parse_history(raw)  # no torn entry, whatever the moment
    cfg = sc.config
    if point.action == "deploy":  # the next run: takes over the dead lock, converges
        commands.deploy(cfg)
        assert sc.live_commit() == head
    else:
        commands.rollback(cfg, to=back)
        assert sc.live()[0] == back
        commands.resume(cfg)
    served = classify(sc.kind, snapshot, old, digests(sc.live()[1] or {}))
    check_converged(sc)
    if not run.killed:  # it finished before its kill: runs got faster, aim earlier from now on
        adapt(seconds, point.action, run.seconds)
    killed = "yes" if run.killed else "no"
    label = point.label(run.seconds)
    phase = run.last_step() if run.killed else "(finished first)"
    report.row(
        "crash", f"{sc.kind:6} {i:2} {point.action:8} {label:18} {killed:6} {served:6} converged  {phase}"
    )
    return run.killed


def adapt(seconds: dict[str, float], action: str, took: float) -> None:
    if action == "deploy":
        seconds["prepare"] *= min(1.0, took / seconds["deploy"])
    seconds[action] = min(seconds[action], took)


def crash_suite(sc: Scenario, seed: int) -> None:
    first = sc.next_commit()
    assert sc.cli("deploy").returncode == 0 and sc.live_commit() == first
    sc.next_commit()
    timed = sc.cli("deploy")
    assert timed.returncode == 0, timed.stderr
    with sc.target() as t:
        back = previous_release(t, t.live_release())
    assert back is not None
    timed_back = sc.cli("rollback", "--to", back)
    assert timed_back.returncode == 0, timed_back.stderr
    commands.resume(sc.config)
    sc.next_commit()
    until_prepare = sc.cli("deploy", crash_at="prepare")  # how long the build part takes
    assert until_prepare.killed, until_prepare.stderr
    commands.deploy(sc.config)
    seconds = {"deploy": timed.seconds, "rollback": timed_back.seconds, "prepare": until_prepare.seconds}
    kills = 0
    for i, point in enumerate(points(seed)):
        if kills >= KILLS:
            break
        assert i < KILLS + 15, "too many random points finished before their kill"
        kills += run_point(sc, i, point, seconds)


@pytest.mark.slow
def test_local_deploys_and_rollbacks_killed_at_20_points_converge(tmp_path: Path) -> None:
    crash_suite(local_scenario(tmp_path), seed=1)


@pytest.mark.slow
def test_ssh_two_hosts_killed_at_20_points_converge(
    tmp_path: Path, ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer]
) -> None:
    crash_suite(ssh_scenario(tmp_path, ssh_env, sshd_pair), seed=2)


@pytest.mark.slow
def test_s3_killed_at_20_points_converges(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    crash_suite(s3_scenario(tmp_path, s3_server, s3_bucket), seed=3)
