"""What readers of an S3 target never see, and what a deploy refuses to do."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sitedeploy.config import S3TargetConfig
from sitedeploy.errors import LockHeld, PlanRefused
from sitedeploy.progress import SILENT
from sitedeploy.release.diff import diff
from sitedeploy.release.history import history_entry
from sitedeploy.release.records import read_history, read_manifest, read_release
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.s3 import (
    RequestLog,
    S3Server,
    bucket_tree,
    publish_dir,
    rollback_target,
    write_tree,
)

ConfigFactory = Callable[..., S3TargetConfig]
_REFS = re.compile(r'(?:href|src)="/([^"]+)"')
_VERSION = re.compile(r" v(\d+)</p>")


def versioned_site(v: int) -> dict[str, str | bytes]:
    """Version ``v`` of a site whose pages reference assets that change name or content:
    content-hashed CSS and JS (renamed every version), an image renamed every third version,
    a plain stylesheet rewritten in place, and pages that come and go."""
    digest = hashlib.sha256(str(v).encode()).hexdigest()
    css, js, img = (
        f"assets/main.{digest[:10]}.css",
        f"assets/app.{digest[10:20]}.js",
        f"img/logo.{v // 3}.png",
    )
    pages = [f"guide/p{i}/index.html" for i in range(v % 4, v % 4 + 6)] + ["index.html"]
    head = f'<link href="/{css}"><link href="/theme.css"><script src="/{js}"></script><img src="/{img}">'
    files: dict[str, str | bytes] = {
        css: f"/* {v} */ body {{ margin: {v}px }}",
        js: f"console.log({v})",
        img: b"\x89PNG" + bytes([v // 3]) * 200,
        "theme.css": f"/* theme {v} */",
        "sitemap.xml": "\n".join(pages),
    }
    for page in pages:
        files[page] = f"{head}<p>{page} v{v}</p>"
    return files


def test_a_reader_never_finds_a_page_whose_assets_are_missing(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(max_delete=1000)
    target = S3Target("s3", cfg)
    publish_dir(target, cfg, write_tree(tmp_path / "build", versioned_site(0)))
    reader_client = s3_server.client()  # a browser, in effect: GETs over HTTP, nothing else
    stop = threading.Event()
    broken: list[str] = []
    fetched = [0]
    deploying = [0]  # the version being published right now

    def get(path: str) -> bytes | None:
        try:
            return bytes(reader_client.get_object(Bucket=s3_bucket, Key=path)["Body"].read())
        except reader_client.exceptions.NoSuchKey:
            return None

    def reader() -> None:
        while not stop.is_set():
            read_during = deploying[0]
            sitemap = get("sitemap.xml") or b""
            for page in sitemap.decode().split("\n"):
                html = get(page)
                if html is None:
                    # As for assets below: a page is promised while its release is live or was
                    # within the last retain_releases (2) switches. The sitemap read during
                    # deploy v is v's or v-1's, so its pages are promised while v still deploys;
                    # a reader slower than that may find them gone, as an old cache would.
                    if deploying[0] == read_during:
                        broken.append(f"page {page} in the sitemap (read during v{read_during}) is missing")
                    continue
                page_version = int(_VERSION.search(html.decode()).group(1))  # type: ignore[union-attr]
                for ref in _REFS.findall(html.decode()):
                    # Assets of a page are promised while the page is live or was live within
                    # the last retain_releases (2) switches. A reader slower than that (a loaded
                    # machine) may find them gone, as a browser cache that old would: not a break.
                    if get(ref) is None and deploying[0] - page_version < 2:
                        broken.append(f"{page} (v{page_version}, deploying v{deploying[0]}) -> {ref}")
                fetched[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for v in range(1, 21):
            deploying[0] = v
            publish_dir(target, cfg, write_tree(tmp_path / "build", versioned_site(v)))
    finally:
        stop.set()
        thread.join()
    assert broken == []
    assert fetched[0] > 20
    live = set(bucket_tree(s3_server.client(), s3_bucket))
    assert set(versioned_site(20)) <= live
    assert set(versioned_site(18)) - set(versioned_site(19)) - set(versioned_site(20)) & live == set()


def test_rollback_restores_the_previous_release_byte_for_byte_without_uploading(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(gzip=("*.html",))
    client = s3_server.client()
    target = S3Target("s3", cfg)
    publish_dir(target, cfg, write_tree(tmp_path / "b", versioned_site(1)))
    before = bucket_tree(client, s3_bucket)
    heads = {k: client.head_object(Bucket=s3_bucket, Key=k)["CacheControl"] for k in before}
    publish_dir(target, cfg, write_tree(tmp_path / "b", versioned_site(2)))
    publish_dir(target, cfg, write_tree(tmp_path / "b", versioned_site(3)))
    publish_dir(target, cfg, write_tree(tmp_path / "b", versioned_site(4)))  # v1's stale keys are gone
    after = bucket_tree(client, s3_bucket)
    assert after != before

    fresh = S3Target("s3", cfg)  # another machine: nothing but credentials and the bucket
    log = RequestLog().attach(fresh.s3)
    for _ in range(3):
        rollback_target(fresh, cfg)
    site_puts = [url for op, url in log.keys if op == "PutObject" and "/.sitedeploy/" not in url]
    assert site_puts == [] and log.counts["UploadPart"] == 0
    now = bucket_tree(client, s3_bucket)
    assert {k: now[k] for k in versioned_site(1)} == {k: before[k] for k in versioned_site(1)}
    assert all(
        client.head_object(Bucket=s3_bucket, Key=k)["CacheControl"] == heads[k] for k in versioned_site(1)
    )
    live = fresh.live_release()
    assert live is not None
    manifest = read_manifest(fresh, live)
    assert manifest is not None and fresh.verify(live, manifest)[0].summary() == "no drift"
    # and forward again: the rolled-back-from bodies were kept too
    rollback_to_newest = read_history(fresh)[-4].release
    record, newest = (
        read_release(fresh, rollback_to_newest),
        read_manifest(fresh, rollback_to_newest),
    )
    assert record is not None and newest is not None
    prepared = fresh.prepare(record, newest, diff(newest, manifest), None, SILENT)  # as a rollback does
    prepared.switch(history_entry("rollback", record, None))
    now = bucket_tree(client, s3_bucket)
    assert {k: now[k] for k in versioned_site(4)} == {k: after[k] for k in versioned_site(4)}


def test_removed_files_stay_for_retain_releases_switches(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(retain_releases=2)
    target = S3Target("s3", cfg)
    one = {"index.html": "<h1>1</h1>", "old.html": "old", "a.css": "a"}
    publish_dir(target, cfg, write_tree(tmp_path / "b", one))
    publish_dir(target, cfg, write_tree(tmp_path / "b", {"index.html": "<h1>2</h1>", "a.css": "a"}))
    keys = set(bucket_tree(s3_server.client(), s3_bucket))
    assert "old.html" in keys  # still referenced by the release before the live one
    live = target.live_release()
    manifest = read_manifest(target, live or "")
    assert manifest is not None and target.verify(live or "", manifest)[0].clean  # retained, not "extra"
    publish_dir(target, cfg, write_tree(tmp_path / "b", {"index.html": "<h1>3</h1>", "a.css": "a"}))
    assert "old.html" not in bucket_tree(s3_server.client(), s3_bucket)


def test_a_second_deploy_fails_naming_the_holder_and_an_expired_lock_is_taken_over(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config()
    build = write_tree(tmp_path / "b", versioned_site(1))
    holder = {"owner": "ci@build-7", "pid": 4242, "acquired_at": time.time(), "purpose": "deploy"}
    client = s3_server.client()
    client.put_object(
        Bucket=s3_bucket,
        Key=".sitedeploy/lock.json",
        Body=json.dumps({**holder, "expires_at": time.time() + 600}),
    )
    with pytest.raises(LockHeld, match=r"locked by ci@build-7 \(pid 4242"):
        publish_dir(S3Target("s3", cfg), cfg, build)
    assert S3Target("s3", cfg).live_release() is None

    client.put_object(
        Bucket=s3_bucket,
        Key=".sitedeploy/lock.json",
        Body=json.dumps({**holder, "expires_at": time.time() - 1}),
    )
    assert publish_dir(S3Target("s3", cfg), cfg, build).outcome == "deployed"
    assert "Contents" not in client.list_objects_v2(Bucket=s3_bucket, Prefix=".sitedeploy/lock.json")


def test_conditional_create_lets_exactly_one_of_two_racers_win(s3_config: ConfigFactory) -> None:
    cfg = s3_config()
    targets = [S3Target("s3", cfg) for _ in range(8)]
    barrier = threading.Barrier(len(targets))
    wins: list[bool] = []

    def race(t: S3Target) -> None:
        barrier.wait()
        wins.append(t.create_meta("lock.json", b"{}"))

    threads = [threading.Thread(target=race, args=(t,)) for t in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_too_many_deletes_and_an_empty_build_are_refused_before_anything_is_written(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(max_delete=3)
    target = S3Target("s3", cfg)
    many = {f"p{i}.html": str(i) for i in range(10)}
    publish_dir(target, cfg, write_tree(tmp_path / "b", many))
    live = target.live_release()
    log = RequestLog().attach(target.s3)
    with pytest.raises(
        PlanRefused, match=r"would delete 8 files \(max_delete = 3\); raise max_delete or pass --force-delete"
    ):
        publish_dir(target, cfg, write_tree(tmp_path / "b", {"p0.html": "0", "p1.html": "1"}))
    with pytest.raises(PlanRefused, match="no HTML pages"):
        publish_dir(target, cfg, write_tree(tmp_path / "b", {"robots.txt": ""}))
    site_writes = [u for op, u in log.keys if op in ("PutObject", "CopyObject") and "/.sitedeploy/" not in u]
    assert site_writes == [] and target.live_release() == live
    assert set(bucket_tree(s3_server.client(), s3_bucket)) == set(many)
    forced = publish_dir(
        target, cfg, write_tree(tmp_path / "b", {"p0.html": "0", "p1.html": "1"}), force_delete=True
    )
    assert forced.outcome == "deployed"


def test_the_state_objects_write_is_fenced_against_a_run_that_switched_meanwhile(
    s3_config: ConfigFactory, tmp_path: Path
) -> None:
    """The commit point of an S3 switch is one conditional write (If-Match on the state object
    as this run last saw it): a holder that lost its lease while another run switched cannot
    record its own switch over the other's."""
    from sitedeploy.errors import LeaseLost
    from sitedeploy.release.lock import locked

    cfg = s3_config()
    publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "b", versioned_site(1)))
    slow, taker = S3Target("s3", cfg), S3Target("s3", cfg)
    with locked(slow, "s3"):
        seen = slow.read_state()
        switched = taker.read_state()  # the run that took the (expired) lock over, and switched
        switched.switches += 1
        taker.write_state(switched)
        with pytest.raises(LeaseLost, match=r"live.json changed since this run read it"):
            slow.write_state(seen)
    fresh = S3Target("s3", cfg)
    fresh.write_state(fresh.read_state())  # a run that read it first writes as before


def test_a_lease_renewal_never_overwrites_a_lock_that_another_run_took(
    s3_server: S3Server, s3_bucket: str, s3_config: ConfigFactory
) -> None:
    from sitedeploy.errors import LeaseLost
    from sitedeploy.release.lock import locked, read_lock

    cfg = s3_config()
    slow = S3Target("s3", cfg)
    other = {"owner": "oncall@elsewhere", "pid": 7, "acquired_at": time.time(), "purpose": "rollback"}
    other |= {"expires_at": time.time() + 60, "token": "theirs"}
    with locked(slow, "s3", ttl=60) as lease:
        mine = slow.read_meta("lock.json")
        s3_server.client().put_object(Bucket=s3_bucket, Key=".sitedeploy/lock.json", Body=json.dumps(other))
        with pytest.raises(LeaseLost, match=r"lock.json changed since this run read it"):
            slow.write_meta("lock.json", mine or b"")  # a renewal racing the takeover
        with pytest.raises(LeaseLost, match="taken over by oncall@elsewhere"):
            lease.check()
    held = read_lock(S3Target("s3", cfg))
    assert held is not None and held.token == "theirs"
