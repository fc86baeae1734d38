"""Failing servers: S3 answering 500/503/SlowDown (a fault-injecting proxy in front of moto), an
SSH host that accepts and never speaks, a full disk and a read-only folder on the target.

Each: retried where retrying makes sense, else one clear line; the live release unchanged;
nothing left behind that blocks the next run (it succeeds once the fault is gone). An SSH
connection dropped mid-transfer is tests/test_ssh_failures.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sitedeploy.config import S3TargetConfig
from sitedeploy.errors import TargetError
from sitedeploy.release.records import read_history
from sitedeploy.targets.local import LocalTarget
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.s3 import S3Server, bucket_tree, publish_dir, write_tree
from tests.fixtures.sshd import SSHEnv, deploy_folder, make_site, open_ssh_target
from tests.reliability import report
from tests.reliability.faults import INTERNAL, SLOW_DOWN, FaultProxy, SilentHost, remount, tmpfs
from tests.reliability.trees import tree_digests

report.table("failing", f"{'fault':40} {'outcome':52} seconds")


def site(v: int, big: int = 0) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {f"p{i}/index.html": f"<p>page {i} v{v}</p>" for i in range(6)}
    files |= {"index.html": f"<h1>v{v}</h1>", "a.css": f"/* v{v} */"}
    if big:
        files["big.bin"] = bytes(big)
    return files


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[Callable[..., FaultProxy]]:
    made: list[FaultProxy] = []

    def start(fault: Callable[[str, str, int], tuple[int, bytes] | None]) -> FaultProxy:
        made.append(FaultProxy(s3_server.url, fault))
        return made[-1]

    yield start
    for p in made:
        p.close()


def test_s3_throttling_and_503s_are_retried_and_the_deploy_completes(
    proxy: Callable[..., FaultProxy], s3_config: Callable[..., S3TargetConfig], s3_server: S3Server,
    s3_bucket: str, tmp_path: Path,
) -> None:  # fmt: skip
    faulty = proxy(lambda method, path, n: (503, SLOW_DOWN) if n % 3 == 0 else None)
    cfg = s3_config(endpoint_url=faulty.url, max_attempts=5)
    start = time.monotonic()
    with S3Target("s3", cfg) as t:
        publish_dir(t, cfg, write_tree(tmp_path / "b", site(1)))
        publish_dir(t, cfg, write_tree(tmp_path / "b", site(2)))
    served = bucket_tree(s3_server.client(), s3_bucket)
    assert served["index.html"] == b"<h1>v2</h1>"
    assert faulty.failed >= 5
    report.row(
        "failing",
        f"{'s3: every 3rd request 503 SlowDown':40} "
        f"{f'retried {faulty.failed} of {faulty.requests}; both deploys done':52} "
        f"{time.monotonic() - start:.1f}",
    )


def test_s3_persistent_500s_fail_once_with_one_line_and_the_live_site_stays(
    proxy: Callable[..., FaultProxy], s3_config: Callable[..., S3TargetConfig], s3_server: S3Server,
    s3_bucket: str, tmp_path: Path,
) -> None:  # fmt: skip
    broken = {"on": False}
    faulty = proxy(lambda method, path, n: (500, INTERNAL) if broken["on"] and method == "PUT" else None)
    cfg = s3_config(endpoint_url=faulty.url, max_attempts=3)
    client = s3_server.client()
    with S3Target("s3", cfg) as t:
        publish_dir(t, cfg, write_tree(tmp_path / "b", site(1)))
        before = bucket_tree(client, s3_bucket)
        broken["on"] = True
        start = time.monotonic()
        with pytest.raises(TargetError) as failed:
            publish_dir(t, cfg, write_tree(tmp_path / "b", site(2)))
        seconds = time.monotonic() - start
        assert "\n" not in failed.value.message and "s3" in failed.value.message
        assert bucket_tree(client, s3_bucket) == before  # nothing readers see changed
        broken["on"] = False
        publish_dir(t, cfg, write_tree(tmp_path / "b", site(3)))  # no lock left behind
    assert bucket_tree(client, s3_bucket)["index.html"] == b"<h1>v3</h1>"
    report.row(
        "failing", f"{'s3: every PUT 500':40} {'one line, live unchanged, next deploy ok':52} {seconds:.1f}"
    )


def test_an_ssh_host_that_never_answers_fails_in_bounded_time(ssh_env: SSHEnv, tmp_path: Path) -> None:
    real = ssh_env.server()
    silent = SilentHost()
    table = ssh_env.target_table(Path("site"), [real], connect_timeout=2.0)
    table["hosts"] = [real.host, f"127.0.0.1:{silent.port}"]
    build = make_site(tmp_path / "b", site(1))  # type: ignore[arg-type]
    good = open_ssh_target("prod", ssh_env.target_table(Path("site"), [real]))
    first, _ = deploy_folder(good, build)
    hung = open_ssh_target("prod", table)
    start = time.monotonic()
    with pytest.raises(TargetError) as failed:
        deploy_folder(hung, make_site(tmp_path / "b", {"index.html": "<h1>v2</h1>"}))
    seconds = time.monotonic() - start
    silent.close()
    hung.close()
    assert f"127.0.0.1:{silent.port}" in failed.value.message and "\n" not in failed.value.message
    assert seconds < 30
    assert good.live_release() == first.id  # the real host still serves the old release
    second, _ = deploy_folder(good, make_site(tmp_path / "b", {"index.html": "<h1>v3</h1>"}))
    assert good.live_release() == second.id  # its lock was released
    good.close()
    report.row(
        "failing",
        f"{'ssh: a host that accepts and never speaks':40} {'timed out, one line':52} {seconds:.1f}",
    )


def test_a_full_disk_fails_with_one_line_and_the_next_run_completes(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        target = LocalTarget("local", disk / "www")
        first, _ = deploy_folder(target, make_site(tmp_path / "b1", site(1)))  # type: ignore[arg-type]
        live = tree_digests(disk / "www" / "current")
        with pytest.raises(TargetError, match="free some space") as failed:
            deploy_folder(target, make_site(tmp_path / "b2", site(2, big=2_000_000)))  # type: ignore[arg-type]
        assert "\n" not in failed.value.message
        assert target.live_release() == first.id and tree_digests(disk / "www" / "current") == live
        assert read_history(target)[-1].release == first.id
        second, _ = deploy_folder(target, make_site(tmp_path / "b3", site(3)))  # type: ignore[arg-type]
        assert target.live_release() == second.id
        assert not list((disk / "www" / "releases").glob(".*.tmp"))  # the dead stage was removed
    report.row(
        "failing", f"{'local: full disk (1 MB tmpfs)':40} {'one line, live unchanged, next deploy ok':52} -"
    )


def test_ssh_full_disk_fails_naming_the_host(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    with tmpfs(tmp_path / "sshdisk", "1m") as disk:
        target = open_ssh_target("prod", ssh_env.target_table(disk / "www", [server]))
        first, _ = deploy_folder(target, make_site(tmp_path / "b1", site(1)))  # type: ignore[arg-type]
        with pytest.raises(TargetError, match=r"disk full|refused") as failed:
            deploy_folder(target, make_site(tmp_path / "b2", site(2, big=2_000_000)))  # type: ignore[arg-type]
        assert server.host in failed.value.message and "\n" not in failed.value.message
        assert target.live_release() == first.id
        second, _ = deploy_folder(target, make_site(tmp_path / "b3", site(3)))  # type: ignore[arg-type]
        assert target.live_release() == second.id
        target.close()
    report.row(
        "failing", f"{'ssh: full disk (1 MB tmpfs)':40} {'one line naming the host; next deploy ok':52} -"
    )


def test_a_read_only_target_folder_fails_with_one_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "4m") as disk:
        target = LocalTarget("local", disk / "www")
        first, _ = deploy_folder(target, make_site(tmp_path / "b1", site(1)))  # type: ignore[arg-type]
        remount(disk, "ro")
        with pytest.raises(TargetError, match="Read-only file system") as failed:
            deploy_folder(target, make_site(tmp_path / "b2", site(2)))  # type: ignore[arg-type]
        assert "\n" not in failed.value.message and not failed.value.retryable
        assert target.live_release() == first.id
        remount(disk, "rw")
        second, _ = deploy_folder(target, make_site(tmp_path / "b3", site(3)))  # type: ignore[arg-type]
        assert target.live_release() == second.id
    report.row("failing", f"{'local: read-only folder':40} {'one line, not retried, next deploy ok':52} -")
