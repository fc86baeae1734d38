"""The SSH target against real OpenSSH servers: delta staging, hard links, rollback, lock,
verify/repair, ~/.ssh/config. Failures live in test_ssh_failures.py, nginx in test_ssh_nginx.py."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from sitedeploy.errors import LockHeld
from sitedeploy.release.lock import locked
from sitedeploy.release.manifest import scan
from sitedeploy.release.records import read_history, read_release
from tests.fixtures.sshd import SSHEnv, SSHServer, deploy_folder, make_site, open_ssh_target, rollback_to

PAGES = {f"docs/page{i}/index.html": f"<h1>page {i}</h1>" + "x" * 2000 for i in range(30)}
SITE = {
    "index.html": "<h1>home</h1>",
    "assets/style.css": "body{}",
    "img/logo.png": b"\x89PNG" * 5000,
    **PAGES,
}


def release_dir(server: SSHServer, rid: str) -> Path:
    return server.home / "site" / "releases" / rid


def release_files(servers: tuple[SSHServer, ...]) -> dict[Path, tuple[int, int]]:
    """(inode, mtime) of everything in every release folder of every host."""
    paths = [p for s in servers for p in (s.home / "site/releases").rglob("*")]
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


def live_on(server: SSHServer) -> str | None:
    link = server.home / "site" / "current"
    return os.readlink(link) if link.is_symlink() else None


def two_releases(ssh_env: SSHEnv, tmp_path: Path) -> tuple[Any, Path, Any, Any]:
    """An SSH target on both hosts with SITE deployed, then a release with a new home page."""
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "build", SITE)
    first, _ = deploy_folder(target, build)
    make_site(build, {"index.html": "<h1>home v2</h1>"})
    second, _ = deploy_folder(target, build)
    return target, build, first, second


def test_first_deploy_puts_the_same_layout_on_every_host(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "build", SITE)
    record, stats = deploy_folder(target, build)
    assert stats.files_sent == 2 * len(SITE) and stats.files_linked == 0
    for server in sshd_pair:
        assert live_on(server) == f"releases/{record.id}"  # relative, like the local target
        assert scan(release_dir(server, record.id)) == scan(build)
        history = json.loads((server.home / "site/.sitedeploy/history.json").read_text())
        assert [h["release"] for h in history] == [record.id]
    assert target.live_by_host() == {s.host: record.id for s in sshd_pair}
    assert read_release(target, record.id) == record
    assert target.list_releases() == [record.id]
    target.close()


def test_one_page_change_sends_only_that_page_and_hard_links_the_rest(
    ssh_env: SSHEnv, tmp_path: Path
) -> None:
    server = ssh_env.server()
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "build", SITE)
    first, _ = deploy_folder(target, build)
    make_site(build, {"docs/page7/index.html": "<h1>page 7, edited</h1>"})
    second, stats = deploy_folder(target, build)

    assert (stats.files_sent, stats.files_linked) == (1, len(SITE) - 1)
    assert stats.bytes_sent == len("<h1>page 7, edited</h1>")
    old, new = release_dir(server, first.id), release_dir(server, second.id)
    for rel in SITE:
        same_inode = (old / rel).stat().st_ino == (new / rel).stat().st_ino
        assert same_inode == (rel != "docs/page7/index.html"), rel
    # the old release's copy of the edited page was replaced by rename, never written through
    assert (old / "docs/page7/index.html").read_text() == PAGES["docs/page7/index.html"]
    assert (new / "docs/page7/index.html").read_text() == "<h1>page 7, edited</h1>"
    target.close()


def test_deletes_and_file_to_folder_changes_touch_only_the_new_release(
    ssh_env: SSHEnv, tmp_path: Path
) -> None:
    server = ssh_env.server()
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "v1", {"a.html": "a", "gone/x.html": "x", "about": "a file"})
    first, _ = deploy_folder(target, build)
    build2 = make_site(
        tmp_path / "v2", {"a.html": "a", "about/index.html": "now a folder", "new/deep/n.html": "n"}
    )
    second, stats = deploy_folder(target, build2)
    assert (stats.files_sent, stats.files_linked) == (2, 1)
    assert scan(release_dir(server, second.id)) == scan(build2)
    assert not (release_dir(server, second.id) / "gone").exists()  # emptied folders go too
    assert scan(release_dir(server, first.id)) == scan(build)
    target.close()


def test_rollback_switches_back_without_any_transfer(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    target, _, first, second = two_releases(ssh_env, tmp_path)
    before = {
        p: (p.stat().st_ino, p.stat().st_mtime_ns)
        for s in sshd_pair
        for p in (s.home / "site/releases").rglob("*")
    }

    rollback_to(target, first.id)

    assert target.live_by_host() == {s.host: first.id for s in sshd_pair}
    after = {
        p: (p.stat().st_ino, p.stat().st_mtime_ns)
        for s in sshd_pair
        for p in (s.home / "site/releases").rglob("*")
    }
    assert after == before  # not one file of any release written, created or removed
    assert [h.action for h in read_history(target)] == ["deploy", "deploy", "rollback"]
    for server in sshd_pair:
        history = json.loads((server.home / "site/.sitedeploy/history.json").read_text())
        assert [h["release"] for h in history] == [first.id, second.id, first.id]
    target.close()


def test_remove_release_refuses_the_live_one_and_prunes_others(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    from sitedeploy.errors import TargetError

    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    first, _ = deploy_folder(target, make_site(tmp_path / "a", {"i.html": "1"}))
    second, _ = deploy_folder(target, make_site(tmp_path / "b", {"i.html": "2"}))
    with pytest.raises(TargetError, match="live on"):
        target.remove_release(second.id)
    target.remove_release(first.id)
    assert target.list_releases() == [second.id]
    assert all(not release_dir(s, first.id).exists() for s in sshd_pair)
    target.close()


def test_modes_are_configurable(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    table = ssh_env.target_table(Path("site"), file_mode=0o640, dir_mode=0o750)
    target = open_ssh_target("prod", table)
    record, _ = deploy_folder(target, make_site(tmp_path / "b", {"d/e/f.html": "f", "i.html": "i"}))
    root = release_dir(server, record.id)
    # file_mode's read bits; write bits are removed once staged (hard links share the inode)
    assert stat.S_IMODE((root / "d/e/f.html").stat().st_mode) == 0o440
    assert {stat.S_IMODE(p.stat().st_mode) for p in [root, root / "d", root / "d/e"]} == {0o750}
    target.close()


def test_lock_is_taken_on_every_host_and_released_when_one_refuses(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer]
) -> None:
    first, second = sshd_pair
    both = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    only_second = open_ssh_target("prod", ssh_env.target_table(Path("site"), [second]))
    with locked(only_second, "prod"):
        assert (second.home / "site/.sitedeploy/lock.json.d/lock.json").is_file()
        assert both.create_meta("lock.json", b"{}") is False
        assert not (first.home / "site/.sitedeploy/lock.json.d").exists()  # released again
        with pytest.raises(LockHeld, match=r"locked by .*\(pid \d+"), locked(both, "prod"):
            pass
    with locked(both, "prod") as mine:
        for server in sshd_pair:
            held = json.loads((server.home / "site/.sitedeploy/lock.json.d/lock.json").read_text())
            assert held["owner"] == mine.owner and held["expires_at"] > held["acquired_at"]
    assert not any((s.home / "site/.sitedeploy/lock.json.d").exists() for s in sshd_pair)
    both.close()
    only_second.close()


def test_verify_hashes_on_each_host_and_repair_fixes_only_the_live_release(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    target, build, first, second = two_releases(ssh_env, tmp_path)
    manifest = scan(build)
    live = release_dir(sshd_pair[1], second.id)
    (live / "assets/style.css").unlink()
    tampered = live / "docs/page3/index.html"
    tampered.unlink()  # replaced by a different file: the old release keeps its own inode
    tampered.write_text("defaced")
    (live / "docs/extra\nname.html").write_text("x")

    drift = target.verify(second.id, manifest)
    assert [d.clean for d in drift] == [True, False]
    assert drift[1].where.startswith(sshd_pair[1].host)
    assert (drift[1].missing, drift[1].changed, drift[1].extra) == (
        ["assets/style.css"],
        ["docs/page3/index.html"],
        ["docs/extra\nname.html"],
    )
    target.repair(second.id, manifest, build, drift)
    assert all(d.clean for d in target.verify(second.id, manifest))
    assert scan(release_dir(sshd_pair[1], first.id)) == scan(release_dir(sshd_pair[0], first.id))
    target.close()


def test_ssh_config_supplies_hostname_port_user_and_identity(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    ssh_env.ssh_config.write_text(
        f"Host web-a\n  HostName 127.0.0.1\n  Port {server.port}\n  User root\n"
        f"  IdentityFile {ssh_env.client_key}\n"
    )
    table = ssh_env.target_table(Path("site"), [])
    table.update(hosts=["web-a"])
    del table["key_file"]
    target = open_ssh_target("prod", table)
    record, _ = deploy_folder(target, make_site(tmp_path / "b", {"i.html": "i"}))
    assert target.live_by_host() == {"web-a": record.id}
    assert target.describe() == "ssh://web-a/~/site"
    target.close()


def test_a_large_state_file_goes_gzipped_and_reads_back_the_same(
    ssh_env: SSHEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sitedeploy.targets.ssh import host as ssh_host

    server = ssh_env.server()
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    data = json.dumps({f"docs/page{i}/index.html": [f"{i:064x}", i] for i in range(3000)}).encode()
    sent: list[int] = []
    original = ssh_host.SSHHost.sh

    def sh(self: ssh_host.SSHHost, step: str, script: str, *args: str, stdin: bytes = b"") -> str:
        sent.append(len(stdin))
        return original(self, step, script, *args, stdin=stdin)

    monkeypatch.setattr(ssh_host.SSHHost, "sh", sh)
    target.write_meta("manifests/r1.json", data)
    assert 0 < sent[-1] < len(data) // 2  # gzipped JSON
    monkeypatch.setattr(ssh_host, "WRITE_GZIP", "cat >/dev/null; exit 1")  # no gzip on the host
    target.write_meta("manifests/r2.json", data)
    for name in ("r1", "r2"):
        path = server.home / f"site/.sitedeploy/manifests/{name}.json"
        assert (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) == (data, 0o644)
        assert target.read_meta(f"manifests/{name}.json") == data
    assert sorted(p.name for p in path.parent.iterdir()) == ["r1.json", "r2.json"]  # no temp left
    target.close()


def test_a_switch_happens_only_on_a_host_whose_lock_is_still_this_runs_lease(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    """The check of the lease and the rename run in one script on each host, so a pause of the
    deployer cannot fall between them; a host whose lock another run took is not switched."""
    from sitedeploy.errors import LeaseLost

    target, _, first, second = two_releases(ssh_env, tmp_path)
    first_host, taken_host = sshd_pair
    with locked(target, "prod"):
        target.switch_to(first.id)  # our lease on every host: switched everywhere
        assert [live_on(s) for s in sshd_pair] == [f"releases/{first.id}"] * 2
        lock = taken_host.home / "site/.sitedeploy/lock.json.d/lock.json"
        taker = {**json.loads(lock.read_text()), "owner": "oncall@elsewhere", "token": "f" * 32}
        lock.write_text(json.dumps(taker, indent=1, sort_keys=True))
        with pytest.raises(LeaseLost, match=r"lost its lock \(the lock is held by oncall@elsewhere\)"):
            target.switch_to(second.id)
    assert live_on(taken_host) == f"releases/{first.id}"  # the taker's host: untouched
    assert live_on(first_host) == f"releases/{first.id}"  # and ours switched back: hosts agree
    assert not list((taken_host.home / "site").glob(".current*"))  # no temp link left
    target.close()


def test_the_lease_is_renewed_on_every_host_only_while_it_holds_this_runs_token(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer]
) -> None:
    import time

    from sitedeploy.release.lock import read_lock

    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    with locked(target, "prod", ttl=1.5) as lease:
        first = read_lock(target)
        time.sleep(1.3)  # past the first lease's trusted part: only a renewal keeps it
        lease.check()
        for server in sshd_pair:
            renewed = json.loads((server.home / "site/.sitedeploy/lock.json").read_text())
            assert first is not None and renewed["token"] == first.token
            assert renewed["renewed_at"] > first.renewed_at
        assert not target.renew_lock("f" * 32, b"{}")  # another token: nothing written
        assert read_lock(target) is not None and read_lock(target).token == first.token  # type: ignore[union-attr]
    assert not any((s.home / "site/.sitedeploy/lock.json").exists() for s in sshd_pair)
    target.close()
