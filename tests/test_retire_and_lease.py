"""Fast tests (no servers) on the in-memory target: the transaction's retire mode, and the lock
lease (renewal, loss, takeover, ``unlock``). The real-server versions of these run in
``test_versions*.py`` and ``reliability/test_leases.py``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sitedeploy.errors import LeaseLost, LockHeld, PlanRefused, TargetError
from sitedeploy.release import control as ctl
from sitedeploy.release.lock import LockInfo, break_lock, locked, read_lock
from sitedeploy.release.records import dump, read_history
from sitedeploy.release.transaction import Rules, Transaction
from sitedeploy.targets.dryrun import DryRun
from sitedeploy.targets.memory import MemoryTarget
from tests.test_transaction import publish, site


@pytest.fixture
def family(tmp_path: Path) -> tuple[MemoryTarget, MemoryTarget]:
    """A root serving one release and a line (a version) serving three files."""
    root, line = MemoryTarget("docs"), MemoryTarget("docs/1.4")
    publish(root, site(tmp_path, "root"))
    publish(line, site(tmp_path, "v14", {"index.html": "<p>1.4</p>", "a.css": "a", "b/index.html": "b"}))
    return root, line


def retire(root: MemoryTarget, line: MemoryTarget, rules: Rules | None = None) -> int:
    with Transaction(root, rules or Rules(), "retire") as tx:
        return tx.retire(line, "version 1.4")


# --- retire ---------------------------------------------------------------------------------------


def test_retire_removes_the_whole_line_and_the_root_history_says_who_and_when(
    family: tuple[MemoryTarget, MemoryTarget],
) -> None:
    root, line = family
    served = root.served()
    assert retire(root, line) == 3
    assert (line.live, line.releases, line.meta) == (None, {}, {})
    assert root.served() == served  # the root itself does not change
    entry = read_history(root)[-1]
    assert entry.action == "retire" and entry.removed == 3 and entry.deployed_by
    assert entry.note == "removed version 1.4 (3 files)"
    assert "lock.json" not in root.meta


def test_retire_obeys_max_delete_and_holds_unless_forced(family: tuple[MemoryTarget, MemoryTarget]) -> None:
    root, line = family
    with pytest.raises(PlanRefused, match=r"removing version 1.4 deletes 3 files \(max_delete = 2\)"):
        retire(root, line, Rules(max_delete=2))
    ctl.update_control(root, root.name, ctl.suspended("release freeze"))
    with pytest.raises(PlanRefused, match=r"suspended by .*release freeze.*--force"):
        retire(root, line)
    assert line.live is not None and len(read_history(root)) == 1  # nothing removed, nothing said
    assert retire(root, line, Rules(max_delete=2, force=True, force_delete=True)) == 3
    assert line.live is None


def test_a_dry_run_retire_checks_everything_and_deletes_nothing(
    family: tuple[MemoryTarget, MemoryTarget],
) -> None:
    root, line = family
    before = (dict(root.meta), dict(line.meta), dict(line.releases))
    dry_line = DryRun(line)
    assert retire(DryRun(root), dry_line) == 3  # type: ignore[arg-type]
    assert dry_line.retired and (dict(root.meta), dict(line.meta), dict(line.releases)) == before
    with pytest.raises(PlanRefused, match="max_delete"):
        retire(DryRun(root), DryRun(line), Rules(max_delete=0))  # type: ignore[arg-type]


def test_a_retire_that_fails_halfway_writes_no_history_and_the_next_run_finishes(
    family: tuple[MemoryTarget, MemoryTarget],
) -> None:
    root, line = family
    line.fail_at = {"retire"}
    with pytest.raises(TargetError, match="injected failure at retire"):
        retire(root, line)
    assert len(read_history(root)) == 1 and "lock.json" not in line.meta and "lock.json" not in root.meta
    line.fail_at = set()
    retire(root, line)
    assert line.live is None and read_history(root)[-1].action == "retire"


def test_retire_waits_for_the_lines_own_lock(family: tuple[MemoryTarget, MemoryTarget]) -> None:
    root, line = family
    with locked(line, line.name, purpose="deploy"), pytest.raises(LockHeld) as held:
        retire(root, line)
    assert held.value.retryable  # the agent tells a retry by the class, not by the text
    assert line.live is not None


# --- the lease ------------------------------------------------------------------------------------


def test_the_holder_renews_its_lease_while_it_works() -> None:
    target = MemoryTarget()
    with locked(target, "t", ttl=1.2) as lease:
        first = read_lock(target)
        time.sleep(1.0)  # longer than the first lease's trusted part, two renewal intervals
        renewed = read_lock(target)
        lease.check()
    assert first is not None and renewed is not None and renewed.token == first.token
    assert renewed.renewed_at > first.renewed_at and renewed.expires_at > first.expires_at


def test_a_lease_taken_over_is_lost_and_check_says_so() -> None:
    target = MemoryTarget()
    with locked(target, "t", ttl=30) as lease:
        other = LockInfo(
            "oncall@elsewhere", 4242, time.time(), time.time() + 30, "rollback", "x", time.time(), 30
        )
        target.meta["lock.json"] = dump(other.__dict__)
        with pytest.raises(
            LeaseLost, match=r"taken over by oncall@elsewhere \(pid 4242.*nothing was switched"
        ):
            lease.check()
    assert read_lock(target) == other  # releasing a lost lease leaves the taker's lock alone


def test_an_expired_lease_of_another_machine_is_taken_over_and_named() -> None:
    target = MemoryTarget()
    gone = LockInfo(
        "ci@dead-runner", 99999, time.time() - 90, time.time() - 1, "deploy", "y", time.time() - 61, 60
    )
    target.meta["lock.json"] = dump(gone.__dict__)
    with locked(target, "t") as lease:
        assert lease.took_over == gone
    fresh = LockInfo("ci@busy-runner", 99999, time.time(), time.time() + 60, "deploy", "z", time.time(), 60)
    target.meta["lock.json"] = dump(fresh.__dict__)
    with (
        pytest.raises(LockHeld, match=r"locked by ci@busy-runner .*lease ends by itself"),
        locked(target, "t"),
    ):
        pass


def test_unlock_refuses_a_fresh_lease_unless_forced_and_removes_an_expired_one() -> None:
    target = MemoryTarget()
    fresh = LockInfo("ci@busy-runner", 7, time.time(), time.time() + 60, "deploy", "z", time.time(), 60)
    target.meta["lock.json"] = dump(fresh.__dict__)
    with pytest.raises(LockHeld, match=r"lease is fresh.*--force"):
        break_lock(target, "t", force=False)
    assert break_lock(target, "t", force=True) == fresh and "lock.json" not in target.meta
    stale = {**fresh.__dict__, "expires_at": time.time() - 1}
    target.meta["lock.json"] = json.dumps(stale).encode()
    assert break_lock(target, "t", force=False) is not None and "lock.json" not in target.meta
    assert break_lock(target, "t", force=False) is None


def test_a_run_that_waited_for_the_lock_gets_a_whole_lease_from_when_it_took_it() -> None:
    target = MemoryTarget()
    now = time.time()
    busy = LockInfo("ci@elsewhere", 7, now, now + 1.5, "deploy", "b", now, 1.5)
    target.meta["lock.json"] = dump(busy.__dict__)
    with locked(target, "t", ttl=1.0, timeout=10) as lease:  # waits ~1.5 s, longer than its ttl
        assert lease.took_over == busy
        assert lease.info.expires_at > time.time() + 0.5
        lease.check()


def test_a_local_switch_checks_the_lease_under_the_flock_that_a_takeover_needs(tmp_path: Path) -> None:
    from sitedeploy.targets.local import LocalTarget

    target = LocalTarget("local", tmp_path / "public")
    for rid in ("r1", "r2"):
        (target.releases_dir / rid).mkdir(parents=True)
    with locked(target, "local"):
        target.switch_to("r1")  # our lease: switched
        taker = LockInfo(
            "oncall@elsewhere", 7, time.time(), time.time() + 60, "rollback", "x", time.time(), 60
        )
        target.meta_dir.joinpath("lock.json").write_bytes(dump(taker.__dict__))
        with pytest.raises(LeaseLost, match=r"held by oncall@elsewhere \(pid 7"):
            target.switch_to("r2")
    assert target.live_release() == "r1" and read_lock(target) == taker


def test_previews_expire_when_their_branch_goes_or_they_were_not_updated_for_max_age(
    tmp_path: Path,
) -> None:
    from typing import cast

    from sitedeploy.config import Config, LocalTargetConfig
    from sitedeploy.versions.layout import Family
    from sitedeploy.versions.previews import _expired
    from sitedeploy.versions.state import FamilyState, Line

    cfg = LocalTargetConfig(type="local", path="p", previews="branch:*", preview_max_age_days=2)
    family = Family("t", cfg, cast(Config, None), "previews")  # _expired reads cfg only
    now = 1_800_000_000.0
    day = 86_400

    def at(days_ago: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - days_ago * day))

    lines = (Line("fresh", "fresh", updated_at=at(1)), Line("stale", "stale", updated_at=at(3)))
    state = FamilyState(kind="previews", lines=(*lines, Line("gone", "gone", updated_at=at(0))))
    wanted = {"fresh": ("fresh", "a" * 40), "stale": ("stale", "b" * 40)}
    assert _expired(family, state, wanted, now) == ["stale", "gone"]
    never = Family(
        "t", LocalTargetConfig(type="local", path="p", preview_max_age_days=0), family.config, "previews"
    )
    assert _expired(never, state, wanted, now) == ["gone"]  # 0: never by age


def test_a_local_renewal_is_a_compare_and_swap_under_the_guard(tmp_path: Path) -> None:
    from sitedeploy.targets.local import LocalTarget

    target = LocalTarget("local", tmp_path / "public")
    with locked(target, "local", ttl=1.2) as lease:
        first = read_lock(target)
        time.sleep(1.0)
        renewed = read_lock(target)
        assert first is not None and renewed is not None and renewed.renewed_at > first.renewed_at
        assert not target.renew_lock("someone-else", b"{}")  # a token that does not hold it
        assert read_lock(target) == renewed
        lease.check()
