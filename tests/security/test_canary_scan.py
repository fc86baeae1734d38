"""The end-of-run canary scan (tests/fixtures/canaries.py) can fail: a canary written to a file
or an object is reported by name and place; allowed inputs and links are not. Each test removes
what it planted, or the session's own scan would (rightly) fail the run."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fixtures import canaries
from tests.fixtures.canaries import CHUNK, ENVIRONMENT, NEEDLES, Leak, scan_file, scan_s3, scan_tree
from tests.fixtures.s3 import S3Server
from tests.security import helpers

SECRET = ENVIRONMENT["AWS_SECRET_ACCESS_KEY"]


def test_every_test_runs_with_the_canaries_in_its_environment() -> None:
    assert {name: os.environ.get(name) for name in ENVIRONMENT} == ENVIRONMENT
    assert helpers.CANARIES.items() <= ENVIRONMENT.items() and helpers.HOME_CANARY == canaries.HOME_CANARY
    assert all(needle.decode() in " ".join(ENVIRONMENT.values()) for needle in list(NEEDLES.values())[:9])


def test_a_canary_in_a_file_is_reported_with_its_path_and_name(tmp_path: Path) -> None:
    state = tmp_path / "target/.sitedeploy"
    state.mkdir(parents=True)
    leaked = state / "history.jsonl"
    leaked.write_text(f'{{"event": "deployed", "repo": "{ENVIRONMENT["SITEDEPLOY_SOURCE_URL"]}"}}\n')
    (state / "clean.json").write_text('{"repo": "https://***@git.example.com/org/docs.git"}')
    try:
        count, leaks = scan_tree(tmp_path)
    finally:
        leaked.unlink()
    assert count == 2
    assert leaks == [Leak(str(leaked), "token in source URL")]
    assert "history.jsonl: holds the token in source URL canary" in str(leaks[0])


def test_bytes_are_searched_across_chunks_holes_and_binary_data(tmp_path: Path) -> None:
    sparse = tmp_path / "big.bin"
    with sparse.open("wb") as f:
        f.truncate(64 * CHUNK)  # a hole first: skipped, not read
        f.seek(40 * CHUNK - 5)  # then the secret straddling two read chunks
        f.write(b"\xff\x00" + SECRET.encode() + b"\x00\xfe")
    try:
        assert scan_file(sparse) == ["AWS_SECRET_ACCESS_KEY"]
        sparse.write_bytes(os.urandom(3 * CHUNK))
        assert scan_file(sparse) == []
    finally:
        sparse.unlink()


def test_allowed_inputs_and_links_are_not_reported(tmp_path: Path) -> None:
    creds = tmp_path / "test0/deployer-home/.aws/credentials"  # as under basetemp
    creds.parent.mkdir(parents=True)
    creds.write_text(f"aws_secret_access_key = {canaries.HOME_CANARY}\n")
    (tmp_path / "environ").symlink_to("/proc/self/environ")  # this process's canaries, via a link
    count, leaks = scan_tree(tmp_path)
    assert (count, leaks) == (1, [])
    _, leaks = scan_tree(tmp_path, allowed=())
    assert leaks == [Leak(str(creds), "home credential file")]


def test_a_canary_in_an_object_or_its_metadata_is_reported(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="site/index.html", Body=b"<p>" + SECRET.encode())
    client.put_object(Bucket=s3_bucket, Key="a.css", Body=b"x", Metadata={"note": canaries.SSH_PASSPHRASE})
    client.put_object(Bucket=s3_bucket, Key="ok.txt", Body=b"nothing to see")
    try:
        count, leaks = scan_s3(client)
    finally:
        for key in ("site/index.html", "a.css", "ok.txt"):
            client.delete_object(Bucket=s3_bucket, Key=key)
    assert count >= 3
    mine = [leak for leak in leaks if f"s3://{s3_bucket}/" in leak.where]
    assert sorted(mine, key=str) == [
        Leak(f"s3://{s3_bucket}/a.css (version null)", "SSH key passphrase"),
        Leak(f"s3://{s3_bucket}/site/index.html (version null)", "AWS_SECRET_ACCESS_KEY"),
    ]
