"""Large changed files go to a real sshd as deltas (only the changed middle is sent) and are put
together on the host; the result is byte-identical, older releases keep their inode, and any
trouble on the host falls back to the whole file."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sitedeploy.targets.ssh import delta as ssh_delta
from sitedeploy.targets.ssh.delta import HASH, parse_hashes
from tests.fixtures.sshd import SSHEnv, SSHServer, deploy_folder, make_site, open_ssh_target

INDEX = "search/search_index.json"


def search_index(pages: int = 14000) -> bytes:
    """~2 MB of JSON like MkDocs' search index."""
    docs = [{"location": f"section-{i % 40}/page-{i}/", "title": f"Page {i}",
             "text": f"Paragraph {i} about topic {i * 7 % 101}, with words to search for."}
            for i in range(pages)]  # fmt: skip
    return json.dumps({"config": {"lang": ["en"]}, "docs": docs}, indent=1).encode()


@pytest.fixture
def host(ssh_env: SSHEnv) -> SSHServer:
    return ssh_env.server()


def deploy_edit(ssh_env: SSHEnv, tmp_path: Path, old: bytes, new: bytes) -> tuple[Any, Path, Path, Any]:
    """Deploy ``old`` then ``new`` as the index; (stats, old copy, new copy, old inode)."""
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "build", {"index.html": "<h1>home</h1>", INDEX: old})
    first, _ = deploy_folder(target, build)
    home = Path(ssh_env.servers[0].home / "site/releases")
    inode = (home / first.id / INDEX).stat().st_ino
    make_site(build, {INDEX: new})
    second, stats = deploy_folder(target, build)
    target.close()
    return stats, home / first.id / INDEX, home / second.id / INDEX, inode


def assert_published(stats: Any, old_copy: Path, new_copy: Path, inode: int, old: bytes, new: bytes) -> None:
    assert new_copy.read_bytes() == new
    assert oct(new_copy.stat().st_mode & 0o777) == "0o444"  # file_mode 0o644, write bits off once staged
    assert (old_copy.stat().st_ino, old_copy.read_bytes()) == (inode, old)  # never written through
    assert new_copy.stat().st_ino != inode
    assert stats.files_sent == 1
    assert not [*new_copy.parents[2].glob(".*.tmp"), *new_copy.parents[2].glob(".*.delta")]  # no work left


def test_an_edit_in_the_middle_sends_only_the_changed_blocks(
    ssh_env: SSHEnv, host: SSHServer, tmp_path: Path
) -> None:
    old = search_index()
    at = len(old) // 2
    new = old[:at] + b"One more paragraph, edited." + old[at:]
    stats, old_copy, new_copy, inode = deploy_edit(ssh_env, tmp_path, old, new)
    assert_published(stats, old_copy, new_copy, inode, old, new)
    assert stats.files_delta == 1
    assert stats.bytes_sent < 40_000 < len(new) // 40  # two 8 KiB blocks, the edit, the commands
    assert "1 of them as deltas" in stats.summary()


def test_several_large_files_share_each_round_on_two_hosts(
    ssh_env: SSHEnv, sshd_pair: tuple[SSHServer, SSHServer], tmp_path: Path
) -> None:
    old = search_index()
    files = {INDEX: old, "assets/data.json": old[::-1], "small.json": old[:1000]}
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    build = make_site(tmp_path / "build", {**files, "index.html": "<p>a page, unchanged</p>"})
    deploy_folder(target, build)
    edited = {path: data[:5000] + b"edit" + data[5000:] for path, data in files.items()}
    second, stats = deploy_folder(target, make_site(build, edited))
    target.close()
    assert (stats.files_sent, stats.files_delta) == (6, 4)  # 3 files on 2 hosts; small.json whole
    assert stats.bytes_sent < 2 * (1004 + 80_000)
    for server in sshd_pair:
        for path, data in edited.items():
            assert (server.home / "site/releases" / second.id / path).read_bytes() == data


@pytest.mark.parametrize("where", ["start", "end"])
def test_an_edit_at_either_end(ssh_env: SSHEnv, host: SSHServer, tmp_path: Path, where: str) -> None:
    old = search_index()
    new = old.replace(b'"en"', b'"en", "de"', 1) if where == "start" else old[:-5] + b"  ] }\n"
    stats, old_copy, new_copy, inode = deploy_edit(ssh_env, tmp_path, old, new)
    assert_published(stats, old_copy, new_copy, inode, old, new)
    assert (stats.files_delta, stats.bytes_sent < 40_000) == (1, True)


def test_edits_at_both_ends_send_the_whole_file(ssh_env: SSHEnv, host: SSHServer, tmp_path: Path) -> None:
    old = search_index()
    new = b" " + old + b" "  # no common prefix or suffix: a delta would gain nothing
    stats, old_copy, new_copy, inode = deploy_edit(ssh_env, tmp_path, old, new)
    assert_published(stats, old_copy, new_copy, inode, old, new)
    assert stats.files_delta == 0 and stats.bytes_sent >= len(new)


def test_a_file_that_shrank(ssh_env: SSHEnv, host: SSHServer, tmp_path: Path) -> None:
    old = search_index()
    third = len(old) // 3
    new = old[:third] + old[third + 100_000 :]
    stats, old_copy, new_copy, inode = deploy_edit(ssh_env, tmp_path, old, new)
    assert_published(stats, old_copy, new_copy, inode, old, new)
    assert stats.files_delta == 1 and stats.bytes_sent < 40_000


def test_an_old_file_corrupted_on_the_host_falls_back_to_the_whole_file(
    ssh_env: SSHEnv, host: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Damaged after its blocks were hashed: the put-together file fails the sha256 check."""
    old = search_index()
    new = old[:1000] + b"edited" + old[1000:]
    original = ssh_delta.SSHHost.sh

    def corrupt_first(self: Any, step: str, script: str, *args: str, stdin: bytes = b"") -> str:
        if script == ssh_delta.ASSEMBLE:
            for live in (host.home / "site/releases").glob(f"*/{INDEX}"):
                with live.open("r+b") as f:  # in place: every hard link of it sees the damage
                    f.seek(len(old) - 10)
                    f.write(b"XX")
        return original(self, step, script, *args, stdin=stdin)

    monkeypatch.setattr(ssh_delta.SSHHost, "sh", corrupt_first)
    stats, _, new_copy, _ = deploy_edit(ssh_env, tmp_path, old, new)
    assert new_copy.read_bytes() == new
    assert stats.files_sent == 1 and stats.files_delta == 0 and stats.bytes_sent >= len(new)
    assert not [*new_copy.parents[2].glob(".*.tmp"), *new_copy.parents[2].glob(".*.delta")]


def test_an_old_file_missing_on_the_host_falls_back_to_the_whole_file(
    ssh_env: SSHEnv, host: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = search_index()
    new = old + b"\n"
    original = ssh_delta.SSHHost.sh

    def remove_first(self: Any, step: str, script: str, *args: str, stdin: bytes = b"") -> str:
        if script == HASH:
            os.remove(host.home / "site/releases" / args[0].rsplit("/", 1)[1] / INDEX)
        return original(self, step, script, *args, stdin=stdin)

    monkeypatch.setattr(ssh_delta.SSHHost, "sh", remove_first)
    stats, _, new_copy, _ = deploy_edit(ssh_env, tmp_path, old, new)
    assert new_copy.read_bytes() == new
    assert stats.files_delta == 0 and stats.bytes_sent >= len(new)


def test_hash_output_parsing_skips_a_file_that_stopped_short() -> None:
    digest = hashlib.sha256(b"x").hexdigest()[:16]
    out = f"= 0 100\n{digest}\n-\n{digest}\n.\n= 1 50\n{digest}\n! 2\n= 3 9\n-\n.\n"
    assert parse_hashes(out) == {0: (100, [digest], [digest]), 3: (9, [], [])}
