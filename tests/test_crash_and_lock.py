"""Crashes and concurrent deploys never leave a target half-written or unrecorded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sitedeploy import commands
from sitedeploy import config as config_mod
from tests.fixtures.git import ContentRepo

KILL_BEFORE_SWITCH = textwrap.dedent("""
    import sys
    from pathlib import Path
    from sitedeploy import commands, config

    commands.deploy(config.load(Path(sys.argv[1])))  # SITEDEPLOY_CRASH_AT=switch: killed there
""")

HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sitedeploy.release.lock import locked
    from sitedeploy.targets.local import LocalTarget

    target = LocalTarget("local", Path(sys.argv[1]))
    with locked(target, "local"):
        print("locked", flush=True)
        time.sleep(60)
""")


def history_len(cfg: config_mod.Config) -> int:
    return len(commands.history(cfg)["local"])


def test_killed_before_the_switch_leaves_the_old_release_live(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    cfg = config_mod.load(deploy_toml)
    [first] = commands.deploy(cfg)
    current = deploy_toml.parent / "public" / "current"
    content_repo.add_mkdocs_site(version="v2")
    content_repo.commit("v2")

    env = {**os.environ, "SITEDEPLOY_CRASH_AT": "switch"}  # staged and recorded; current not switched
    proc = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_SWITCH, str(deploy_toml)], capture_output=True, env=env
    )
    assert proc.returncode == -9
    assert os.readlink(current).endswith(str(first.release))
    assert b"Home v1" in (current / "docs/index.html").read_bytes()
    assert history_len(cfg) == 1

    [second] = commands.deploy(cfg)  # the dead run's lock is stale: taken over
    assert second.outcome == "deployed"
    assert b"Home v2" in (current / "docs/index.html").read_bytes()
    assert history_len(cfg) == 2
    [back] = commands.rollback(cfg)
    assert back.release == first.release


def test_a_held_lock_names_its_holder_and_a_dead_holder_is_taken_over(deploy_toml: Path) -> None:
    target_dir = deploy_toml.parent / "public"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(target_dir)], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        exe = Path(sys.executable).with_name("sitedeploy")
        proc = subprocess.run(
            [str(exe), "--config", str(deploy_toml), "deploy"], capture_output=True, text=True
        )
        holder.kill()
    assert proc.returncode == 1
    assert "target 'local' is locked by" in proc.stderr and f"pid {holder.pid}" in proc.stderr
    assert not (target_dir / "current").exists()
    [result] = commands.deploy(config_mod.load(deploy_toml))
    assert result.outcome == "deployed"


def test_two_deploys_at_once_one_waits_and_neither_corrupts(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    deploy_toml.write_text(deploy_toml.read_text() + "lock_timeout = 120\n")
    cfg = config_mod.load(deploy_toml)
    commands.deploy(cfg)
    content_repo.add_mkdocs_site(version="v2")
    content_repo.commit("v2")
    exe = Path(sys.executable).with_name("sitedeploy")
    procs = [
        subprocess.Popen(
            [str(exe), "--config", str(deploy_toml), "deploy"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    joined = "".join(out for out, _ in outputs)
    assert joined.count("deployed") == 1 and joined.count("already live") == 1
    assert history_len(cfg) == 2
    current = deploy_toml.parent / "public" / "current"
    assert b"Home v2" in (current / "docs/index.html").read_bytes()
    assert not (deploy_toml.parent / "public" / ".sitedeploy" / "lock.json").exists()


def test_an_expired_lock_is_taken_over(deploy_toml: Path) -> None:
    import json

    meta = deploy_toml.parent / "public" / ".sitedeploy"
    meta.mkdir(parents=True)
    stale = {
        "owner": "ci@elsewhere",
        "pid": 1,
        "acquired_at": time.time() - 7200,
        "expires_at": time.time() - 3600,
        "purpose": "deploy",
    }
    (meta / "lock.json").write_text(json.dumps(stale))
    [result] = commands.deploy(config_mod.load(deploy_toml))
    assert result.outcome == "deployed"


def _lock_of(owner: str, *, age: float, ttl: float = 60) -> dict[str, object]:
    now = time.time()
    return {
        "owner": owner,
        "pid": 4242,
        "acquired_at": now - age - 300,
        "expires_at": now - age + ttl,
        "purpose": "deploy",
        "token": "t",
        "renewed_at": now - age,
        "ttl": ttl,
    }


def test_status_shows_a_held_lock_and_unlock_shows_then_removes_it(deploy_toml: Path) -> None:
    import json

    from click.testing import CliRunner

    from sitedeploy.cli.main import cli

    commands.deploy(config_mod.load(deploy_toml))
    lock = deploy_toml.parent / "public/.sitedeploy/lock.json"
    lock.write_text(json.dumps(_lock_of("ci@runner-7", age=5)))

    def sd(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, ["--config", str(deploy_toml), *args], input=stdin)
        return result.exit_code, result.stdout, result.stderr

    code, out, _ = sd("status")
    assert code == 0 and "LOCKED by ci@runner-7 (pid 4242, deploy since" in out and "5s ago" in out
    code, _, err = sd("unlock", "--target", "local", stdin="n\n")  # shown, then declined
    assert code == 2 and "locked by ci@runner-7" in err and "last renewed" in err and lock.exists()
    code, _, err = sd("unlock", "--target", "local", "--yes")  # a fresh lease: its holder may be working
    assert code == 1 and "lease is fresh" in err and "--force" in err and lock.exists()
    code, out, _ = sd("unlock", "--target", "local", "--yes", "--force")
    assert code == 0 and "lock removed (was ci@runner-7" in out and not lock.exists()
    lock.write_text(json.dumps(_lock_of("ci@runner-7", age=90)))  # lease ran out 30 s ago
    code, out, _ = sd("unlock", "--target", "local", stdin="y\n")
    assert code == 0 and "lock removed" in out and not lock.exists()
    assert sd("unlock", "--target", "local")[1].strip() == "local: not locked"
