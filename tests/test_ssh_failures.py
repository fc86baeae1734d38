"""The SSH target when things go wrong: host keys, auth, unreachable hosts, a host lost between
staging and switching, a connection dropped mid-transfer. Always one line naming the host;
never a host left on a partial release; the next run converges."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sitedeploy.errors import HostKeyError, TargetError
from sitedeploy.release.history import history_entry
from sitedeploy.release.lock import locked
from sitedeploy.release.manifest import scan
from sitedeploy.release.records import ReleaseRecord, read_manifest, write_release
from tests.fixtures.sshd import (
    SSHEnv,
    SSHServer,
    deploy_folder,
    free_port,
    keygen,
    make_site,
    open_ssh_target,
)


def live_on(server: SSHServer) -> str | None:
    link = server.home / "site" / "current"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None


def sha256_fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def test_unknown_host_key_is_refused_with_fingerprint_and_how_to_trust_it(
    ssh_env: SSHEnv, tmp_path: Path
) -> None:
    server = ssh_env.server()
    ssh_env.known_hosts.write_text("")  # nobody trusted
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    with pytest.raises(HostKeyError) as caught:
        target.live_release()
    message = caught.value.message
    assert "\n" not in message and f"host {server.host}" in message
    assert "unknown host key ssh-ed25519" in message
    assert sha256_fingerprint(Path(f"{server.host_key}.pub")) in message
    assert f"ssh-keyscan -p {server.port} 127.0.0.1 >> {ssh_env.known_hosts}" in message
    assert ssh_env.known_hosts.read_text() == ""  # never auto-accepted
    assert not (server.home / "site").exists()
    target.close()


def test_changed_host_key_is_refused(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    impostor = keygen(tmp_path / "other_host_key")
    kind, key = Path(f"{impostor}.pub").read_text().split()[:2]
    ssh_env.known_hosts.write_text(f"[127.0.0.1]:{server.port} {kind} {key}\n")
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    with pytest.raises(HostKeyError, match="HOST KEY CHANGED") as caught:
        target.live_release()
    assert sha256_fingerprint(Path(f"{server.host_key}.pub")) in caught.value.message
    assert sha256_fingerprint(Path(f"{impostor}.pub")) in caught.value.message
    target.close()


def test_wrong_private_key_gives_a_clear_auth_error(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    wrong = keygen(tmp_path / "wrong_key")
    target = open_ssh_target("prod", ssh_env.target_table(Path("site"), key_file=str(wrong)))
    with pytest.raises(TargetError, match="authentication failed as user 'root'") as caught:
        target.live_release()
    assert f"host {server.host}" in caught.value.message and not caught.value.retryable
    target.close()


def test_unreachable_host_is_named_and_retryable(ssh_env: SSHEnv) -> None:
    ssh_env.server()
    dead = f"127.0.0.1:{free_port()}"
    table = ssh_env.target_table(Path("site"))
    table["hosts"] = [*table["hosts"], dead]  # type: ignore[misc]
    target = open_ssh_target("prod", table)
    with pytest.raises(TargetError, match=re.escape(f"host {dead}: unreachable")) as caught:
        target.live_release()
    assert caught.value.retryable
    target.close()


def test_a_path_that_is_not_a_folder_fails_naming_host_and_step(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    (server.home / "site").write_text("a file where the target folder should be")
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    with pytest.raises(TargetError, match=rf"host {server.host}: .*(create|take|prepare)") as caught:
        deploy_folder(target, make_site(tmp_path / "b", {"i.html": "i"}))
    assert "\n" not in caught.value.message
    target.close()


def two_releases(target: Any, tmp_path: Path) -> tuple[Any, Path]:
    """Deploy v1; return (record of v1, build folder now holding v2)."""
    first, _ = deploy_folder(target, make_site(tmp_path / "v1", {"i.html": "v1", "a.css": "a"}))
    return first, make_site(tmp_path / "v2", {"i.html": "v2", "a.css": "a", "b.css": "b"})


def staged_only(target: Any, build: Path) -> tuple[Any, Any, Any]:
    """Stage and record a release like a deploy does, leaving the switch to the test."""
    from sitedeploy.progress import SILENT
    from sitedeploy.release import diff as plan_mod

    live = target.live_release()
    manifest, live_manifest = scan(build), read_manifest(target, live)
    record = ReleaseRecord(
        id="20990101T000000Z-staged00", commit="f" * 40, subject="s", author="a", committed_at="",
        created_at="", created_by="", build_key="k", files=len(manifest), bytes=manifest.total_bytes,
    )  # fmt: skip
    prepared = target.prepare(record, manifest, plan_mod.diff(manifest, live_manifest), build, SILENT)
    write_release(target, record, manifest)
    return prepared, record, live_manifest


def test_host_down_after_staging_switches_no_host(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    up, down = sshd_pair
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    first, build = two_releases(target, tmp_path)
    prepared, prepared_record, _ = staged_only(target, build)
    down.stop()
    with pytest.raises(TargetError, match=rf"host {down.host}: .*nothing was switched") as caught:
        prepared.switch(history_entry("deploy", prepared_record, None))
    assert up.host not in caught.value.message.replace(f"host {down.host}", "")
    assert live_on(up) == first.id and live_on(down) == first.id
    assert not [p for p in (up.home / "site").iterdir() if p.name.startswith(".current")]  # temp link gone
    target.close()


def test_switch_failing_on_one_host_switches_the_others_back(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    up, down = sshd_pair
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    first, build = two_releases(target, tmp_path)
    commit: Callable[[Any, str], None] = target._commit_switch

    def host_dies_at_the_switch(host: Any, link: str) -> None:
        if host.label == down.host:
            down.stop()  # between prepare and commit: the worst moment
        commit(host, link)

    monkeypatch.setattr(target, "_commit_switch", host_dies_at_the_switch)
    prepared, prepared_record, _ = staged_only(target, build)
    with (
        locked(target, "prod"),  # a switch happens only under this run's lease (on each host)
        pytest.raises(TargetError, match=rf"host {down.host}: .*switched back {re.escape(up.host)}"),
    ):
        prepared.switch(history_entry("deploy", prepared_record, None))
    assert live_on(up) == first.id and live_on(down) == first.id
    target.close()


class KillAfter:
    """A Progress that kills the sshd session children once ``n`` files were sent."""

    def __init__(self, server: SSHServer, n: int) -> None:
        self.server, self.n, self.killed = server, n, 0

    def step(self, message: str) -> None:
        pass

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        sent = 0

        def advance(k: int) -> None:
            nonlocal sent
            sent += k
            if sent >= self.n and not self.killed:
                self.killed = self.server.kill_sessions()

        yield advance


def test_connection_dropped_mid_transfer_leaves_live_unchanged_and_next_deploy_completes(
    ssh_env: SSHEnv, tmp_path: Path
) -> None:
    from sitedeploy.release import diff as plan_mod

    server = ssh_env.server()
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    first, _ = deploy_folder(target, make_site(tmp_path / "v1", {"i.html": "v1"}))
    build = make_site(tmp_path / "v2", {f"p{i}.html": os.urandom(20_000) for i in range(60)})
    manifest = scan(build)
    plan = plan_mod.diff(manifest, read_manifest(target, first.id))
    record = ReleaseRecord(
        id="20990101T000000Z-dropped0", commit="e" * 40, subject="s", author="a", committed_at="",
        created_at="", created_by="", build_key="k", files=len(manifest), bytes=manifest.total_bytes,
    )  # fmt: skip
    progress = KillAfter(server, 5)
    with pytest.raises(TargetError, match=rf"host {server.host}: connection dropped during (upload|finish)"):
        target.prepare(record, manifest, plan, build, progress)
    assert progress.killed
    assert live_on(server) == first.id
    assert (server.home / "site/releases/.20990101T000000Z-dropped0.tmp").is_dir()  # partial, never served

    second, stats = deploy_folder(target, build)  # same target object: it reconnects
    assert live_on(server) == second.id
    assert scan(server.home / "site/releases" / second.id) == manifest
    assert not list((server.home / "site/releases").glob(".*.tmp"))
    assert stats.files_sent == len(manifest)
    target.close()
