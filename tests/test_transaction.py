"""The release transaction over the in-memory target: every refusal, a failure at every step,
and dry-run against the real run. No git, no servers: these run in milliseconds.

What a user relies on: a refused or failed change leaves the live release and its history as
they were (or, after the switch, records what is live); a dry run refuses exactly what the real
run refuses; ``--force`` overrides a hold and history says so.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy.build import Built
from sitedeploy.errors import GateError, LockHeld, PlanRefused, RollbackError, TargetError
from sitedeploy.progress import SILENT
from sitedeploy.release import control as ctl
from sitedeploy.release.lock import locked
from sitedeploy.release.manifest import scan
from sitedeploy.release.records import read_control, read_history, read_manifest, read_release
from sitedeploy.release.transaction import Rules, Transaction
from sitedeploy.source import Commit
from sitedeploy.source.signatures import Signature
from sitedeploy.targets.dryrun import DryRun
from sitedeploy.targets.memory import MemoryTarget

_numbers = itertools.count(1)


class Lazy:
    """What ``commands.publish`` needs of a build: a commit and a finished release folder."""

    def __init__(self, root: Path) -> None:
        n = next(_numbers)
        self.commit = Commit(
            hashlib.sha1(str(n).encode()).hexdigest(), f"change {n}", "Ada", 1_700_000_000 + n
        )
        self.progress = SILENT
        self.signature = Signature()  # no signature rule: a folder, not a commit
        self.root = root
        self.built = 0

    def get(self) -> Built:
        self.built += 1
        return Built(self.commit, self.root, scan(self.root), self.commit.sha, ())


def site(tmp_path: Path, name: str, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / name
    for rel, text in (files or {"index.html": f"<p>{name}</p>", "a.css": "a"}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def publish(
    target: MemoryTarget, root: Path, rules: Rules | None = None, **kwargs: object
) -> commands.DeployResult:
    lazy = Lazy(root)
    return commands.publish(target, rules or Rules(), lazy, lazy.commit.sha, **kwargs)  # type: ignore[arg-type]


def snapshot(target: MemoryTarget) -> tuple[object, ...]:
    """Everything a reader or an operator can observe: served files, history, control, lock."""
    return (target.live, target.served(), target.meta.get("history.json"), target.meta.get("control.json"))


@pytest.fixture
def live(tmp_path: Path) -> MemoryTarget:
    """A target serving v1 (and v0 before it, for rollbacks)."""
    target = MemoryTarget()
    publish(target, site(tmp_path, "v0"))
    publish(target, site(tmp_path, "v1"))
    return target


# --- refusals ------------------------------------------------------------------------------------


def test_an_empty_build_is_refused(live: MemoryTarget, tmp_path: Path) -> None:
    before = snapshot(live)
    with pytest.raises(PlanRefused, match="no HTML pages"):
        publish(live, site(tmp_path, "empty", {"a.css": "a"}))
    assert snapshot(live) == before and "lock.json" not in live.meta


def test_too_many_deletes_are_refused_unless_forced(live: MemoryTarget, tmp_path: Path) -> None:
    before = snapshot(live)
    smaller = site(tmp_path, "small", {"index.html": "<p>only</p>"})
    with pytest.raises(PlanRefused, match=r"would delete 1 files \(max_delete = 0\).*--force-delete"):
        publish(live, smaller, Rules(max_delete=0))
    assert snapshot(live) == before
    assert publish(live, smaller, Rules(max_delete=0, force_delete=True)).outcome == "deployed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (ctl.pinned("rollback to x", "c" * 40), "pinned by"),
        (ctl.suspended("release freeze"), "suspended by .*release freeze"),
    ],
)
def test_a_held_target_refuses_until_forced_and_history_says_forced(
    live: MemoryTarget, tmp_path: Path, change: ctl.ControlChange, message: str
) -> None:
    ctl.update_control(live, live.name, change)
    before = snapshot(live)
    with pytest.raises(PlanRefused, match=f"{message}.*--force"):
        publish(live, site(tmp_path, "v2"))
    assert snapshot(live) == before
    result = publish(live, site(tmp_path, "v3"), Rules(force=True))
    assert result.outcome == "deployed" and live.live == result.release
    assert read_history(live)[-1].note.startswith("forced: ")


def test_a_commit_marked_bad_is_refused_and_unmark_lets_it_deploy(live: MemoryTarget, tmp_path: Path) -> None:
    lazy = Lazy(site(tmp_path, "bad"))
    ctl.update_control(live, live.name, ctl.marked_bad(lazy.commit.sha, "broke the search"))
    with pytest.raises(PlanRefused, match=r"marked bad \(broke the search\).*sitedeploy unmark"):
        commands.publish(live, Rules(), lazy, lazy.commit.sha)  # type: ignore[arg-type]
    ctl.update_control(live, live.name, ctl.unmarked(lazy.commit.sha[:7]))
    assert commands.publish(live, Rules(), lazy, lazy.commit.sha).outcome == "deployed"  # type: ignore[arg-type]


def test_a_failing_gate_holds_the_release_back_before_the_lock(live: MemoryTarget, tmp_path: Path) -> None:
    before = snapshot(live)

    def gate(built: Built) -> None:
        assert "lock.json" not in live.meta  # the build and its gate run outside the lock
        raise GateError("broken links: index.html -> nowhere.html")

    with pytest.raises(GateError):
        publish(live, site(tmp_path, "v2"), gate=gate)
    assert snapshot(live) == before


def test_a_held_lock_refuses_with_its_holder(live: MemoryTarget, tmp_path: Path) -> None:
    with locked(live, live.name, purpose="rollback"), pytest.raises(LockHeld, match="--lock-timeout"):
        publish(live, site(tmp_path, "v2"))


def test_the_same_build_twice_is_unchanged_and_not_rebuilt(live: MemoryTarget, tmp_path: Path) -> None:
    lazy = Lazy(site(tmp_path, "v2"))
    assert commands.publish(live, Rules(), lazy, "key").outcome == "deployed"  # type: ignore[arg-type]
    again = commands.publish(live, Rules(), lazy, "key")  # type: ignore[arg-type]
    assert again.outcome == "unchanged" and lazy.built == 1


# --- a failure at every step --------------------------------------------------------------------

STEPS_BEFORE_SWITCH = ["prepare", "write_meta:manifests", "write_meta:releases", "switch"]
STEPS_AFTER_SWITCH = ["write_meta:history.json", "remove_release"]


@pytest.mark.parametrize("step", STEPS_BEFORE_SWITCH)
def test_a_failure_before_the_switch_leaves_everything_as_it_was(
    live: MemoryTarget, tmp_path: Path, step: str
) -> None:
    before, releases = snapshot(live), set(live.releases)
    live.fail_at = {step}
    with pytest.raises(TargetError, match="injected failure"):
        publish(live, site(tmp_path, "v2"), Rules(keep_releases=2))
    live.fail_at = set()
    assert snapshot(live) == before
    assert set(live.releases) == releases  # what prepare made was discarded
    assert {n for n in live.meta if n.startswith(("releases/", "manifests/"))} == {
        f"{kind}/{rid}.json" for rid in releases for kind in ("releases", "manifests")
    }  # and what the transaction recorded of it
    assert "lock.json" not in live.meta
    assert publish(live, site(tmp_path, "v3")).outcome == "deployed"  # the next run converges


@pytest.mark.parametrize("step", STEPS_AFTER_SWITCH)
def test_a_failure_after_the_switch_is_recorded_by_the_next_run(
    live: MemoryTarget, tmp_path: Path, step: str
) -> None:
    live.fail_at = {step}
    failed = None
    try:
        publish(live, site(tmp_path, "v2"), Rules(keep_releases=2))
    except TargetError:
        failed = True
    live.fail_at = set()
    new = live.live
    assert new is not None and read_release(live, new) is not None  # whatever is live is recorded
    assert "lock.json" not in live.meta
    publish(live, site(tmp_path, "v3"))
    history = read_history(live)
    assert new in [e.release for e in history]  # recorded as deployed, or as recovered
    if failed and step == "write_meta:history.json":
        assert [e.action for e in history][-2:] == ["recover", "deploy"]


def test_a_bug_in_a_target_propagates_and_still_releases_the_lock(live: MemoryTarget, tmp_path: Path) -> None:
    before = snapshot(live)
    live.fail_at, live.failure = {"prepare"}, lambda step: ZeroDivisionError(step)
    with pytest.raises(ZeroDivisionError):
        publish(live, site(tmp_path, "v2"))
    assert snapshot(live) == before and "lock.json" not in live.meta


# --- dry-run is the same path -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "setup", "files"),
    [
        (Rules(), None, {"index.html": "<p>v2</p>", "a.css": "b"}),
        (Rules(max_delete=0), None, {"index.html": "<p>only</p>"}),
        (Rules(), None, {"a.css": "no pages"}),
        (Rules(), ctl.suspended("freeze"), {"index.html": "<p>v2</p>"}),
        (Rules(force=True), ctl.suspended("freeze"), {"index.html": "<p>v2</p>"}),
    ],
)
def test_dry_run_refuses_what_the_real_run_refuses_and_writes_nothing(
    live: MemoryTarget, tmp_path: Path, rules: Rules, setup: ctl.ControlChange | None, files: dict[str, str]
) -> None:
    if setup is not None:
        ctl.update_control(live, live.name, setup)
    root = site(tmp_path, "next", files)
    before, log = snapshot(live), list(live.log)
    dry: commands.DeployResult | Exception
    try:
        dry = publish(live, root, rules, dry_run=True)
    except PlanRefused as exc:
        dry = exc
    assert snapshot(live) == before and live.log == log  # nothing written
    try:
        real: commands.DeployResult | Exception = publish(live, root, rules)
    except PlanRefused as exc:
        real = exc
    if isinstance(dry, Exception):
        assert isinstance(real, Exception) and str(real) == str(dry)
    else:
        assert isinstance(real, commands.DeployResult) and dry.outcome == "dry-run"
        assert dry.plan == real.plan


def test_dry_run_waits_for_a_held_lock_like_a_real_run(live: MemoryTarget, tmp_path: Path) -> None:
    with locked(live, live.name), pytest.raises(LockHeld):
        publish(live, site(tmp_path, "v2"), dry_run=True)


# --- rollback, repair and control through the same transaction -----------------------------------


def test_rollback_switches_back_pins_and_marks_the_commit_it_left(live: MemoryTarget) -> None:
    moved_from = read_release(live, live.live or "")
    assert moved_from is not None
    result = commands.switch_back(live, Rules(), None, pin=True)
    assert live.live == result.release != moved_from.id
    control = read_control(live)
    assert control.pin is not None and moved_from.commit in control.bad_commits
    assert read_history(live)[-1].action == "rollback"


def test_rollback_to_a_release_of_a_bad_commit_needs_force(live: MemoryTarget) -> None:
    older = live.list_releases()[0]
    record = read_release(live, older)
    assert record is not None
    ctl.update_control(live, live.name, ctl.marked_bad(record.commit, "bad"))
    with pytest.raises(RollbackError, match="no earlier release"):
        commands.switch_back(live, Rules(), None, pin=True)
    with pytest.raises(PlanRefused, match="marked bad"):
        commands.switch_back(live, Rules(), older, pin=True)
    assert commands.switch_back(live, Rules(force=True), older, pin=True).release == older


def test_a_failed_switch_during_rollback_keeps_the_live_release(live: MemoryTarget) -> None:
    before = snapshot(live)
    live.fail_at = {"switch"}
    with pytest.raises(TargetError):
        commands.switch_back(live, Rules(), None, pin=True)
    assert snapshot(live) == before  # no pin either: the control change is part of the commit


def test_repair_goes_through_the_lock_and_is_recorded(live: MemoryTarget, tmp_path: Path) -> None:
    rid = live.live or ""
    manifest = read_manifest(live, rid)
    assert manifest is not None
    live.releases[rid]["a.css"] = b"tampered"
    drift = live.verify(rid, manifest)
    with Transaction(live, Rules(), "repair") as tx:
        tx.repair(rid, manifest, site(tmp_path, "v1"), drift)
    assert live.verify(rid, manifest)[0].clean
    assert read_history(live)[-1].action == "repair"


def test_control_updates_wait_for_the_lock(live: MemoryTarget) -> None:
    with locked(live, live.name), pytest.raises(LockHeld):
        ctl.update_control(live, live.name, ctl.suspended("x"))
    assert read_control(live).suspended is None


def test_a_dry_run_target_never_writes(live: MemoryTarget, tmp_path: Path) -> None:
    dry = DryRun(live)
    before = snapshot(live)
    with Transaction(dry, Rules(keep_releases=2), "deploy") as tx:
        record = read_release(live, live.live or "")
        assert record is not None
        tx.restore(live.list_releases()[0])
    assert snapshot(live) == before and dry.would_be_live == live.list_releases()[0]


def test_a_rollback_during_a_long_build_takes_the_lock_at_once_and_the_deploy_gives_up(
    live: MemoryTarget, tmp_path: Path
) -> None:
    rolled: list[str | None] = []

    def gate(built: Built) -> None:  # runs after the build, before the deploy takes the lock
        rolled.append(commands.switch_back(live, Rules(), None, pin=True).release)

    with pytest.raises(PlanRefused, match="pinned by"):
        publish(live, site(tmp_path, "v2"), gate=gate)
    assert live.live == rolled[0] and read_history(live)[-1].action == "rollback"
