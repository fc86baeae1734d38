"""New files go to each host as one tar stream (real sshd, the host's own GNU tar); hosts
without GNU tar get them over SFTP. Hard-link safety and modes: test_ssh_target.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitedeploy.errors import TargetError
from sitedeploy.release.manifest import scan
from sitedeploy.targets.ssh.bulk import STREAMS, member_name, split
from tests.fixtures.sshd import SSHEnv, SSHServer, deploy_folder, make_site, open_ssh_target

LONG = "/".join(["a-rather-long-folder-name-for-tar"] * 4) + "/and-a-page-whose-name-is-long-too.html"
SITE = {
    "index.html": "<h1>home</h1>",
    "café/naïve résumé.html": "<p>non-ASCII and spaces</p>",
    LONG: "<p>longer than ustar's 100-byte names</p>",
    "img/logo.png": bytes(range(256)) * 600,
    **{f"docs/p{i}/index.html": f"<h1>page {i}</h1>" * 50 for i in range(40)},
}


def fake_tar(server: SSHServer, script: str) -> None:
    """Put a ``tar`` of our own first on the PATH of this host's sessions."""
    bin_dir = server.root / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "tar").write_text("#!/bin/sh\n" + script)
    (bin_dir / "tar").chmod(0o755)
    session = server.root / "session.sh"
    lines = session.read_text().split("\n", 1)
    session.write_text(f'{lines[0]}\nPATH="{bin_dir}:$PATH"; export PATH\n{lines[1]}')


def test_a_whole_site_is_one_request_with_names_tar_cannot_store_plainly(
    ssh_env: SSHEnv, tmp_path: Path
) -> None:
    server = ssh_env.server()
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "build", SITE)
    record, stats = deploy_folder(target, build)
    assert (stats.files_sent, stats.bytes_sent) == (
        len(SITE),
        sum(p.stat().st_size for p in build.rglob("*.*")),
    )
    assert stats.requests == 3  # prepare, the tar stream, finish: not one request per file
    assert scan(server.home / "site/releases" / record.id) == scan(build)
    target.close()


def test_a_large_send_is_split_into_parallel_streams_of_equal_bytes(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    # one page among them: a release without any page is refused before anything is sent
    files = {
        f"s{i // 10}/p{i:03d}.{'html' if i == 0 else 'bin'}": bytes([i]) * (40_000 + 3_000 * i)
        for i in range(80)
    }
    build = make_site(tmp_path / "build", files)
    shares = split(build, sorted(files), STREAMS)
    assert len(shares) == STREAMS == 2 and sorted(files) == [p for share in shares for p in share]
    sizes = [sum(len(files[p]) for p in share) for share in shares]
    assert abs(sizes[0] - sizes[1]) < max(len(b) for b in files.values())
    record, stats = deploy_folder(target, build)
    assert (stats.files_sent, stats.requests) == (80, 2 + STREAMS)
    assert scan(server.home / "site/releases" / record.id) == scan(build)
    target.close()


def test_without_gnu_tar_the_files_go_over_sftp(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    fake_tar(server, 'echo "tar (busybox) 1.36"; exit 1\n')
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "build", SITE)
    record, stats = deploy_folder(target, build)
    assert stats.files_sent == len(SITE) and stats.requests > len(SITE)  # one request per file
    assert scan(server.home / "site/releases" / record.id) == scan(build)
    target.close()


def test_tar_failing_on_the_host_is_one_line_and_nothing_goes_live(ssh_env: SSHEnv, tmp_path: Path) -> None:
    server = ssh_env.server()
    fake_tar(
        server,
        'if [ "$1" = --version ]; then echo "tar (GNU tar) 1.35"; exit 0; fi\n'
        'cat >/dev/null; echo "tar: index.html: Cannot write: No space left on device" >&2; exit 2\n',
    )
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    with pytest.raises(TargetError, match=r"host 127\.0\.0\.1:\d+: disk full during upload 44 files") as err:
        deploy_folder(target, make_site(tmp_path / "build", SITE))
    assert "\n" not in err.value.message
    assert not (server.home / "site/current").exists()
    target.close()


@pytest.mark.parametrize("path", ["../escape.html", "/etc/passwd", "a//b.html", "a/./b.html", "", "a/.."])
def test_member_names_cannot_leave_the_release(path: str) -> None:
    with pytest.raises(TargetError, match="not a plain relative path"):
        member_name(path)
