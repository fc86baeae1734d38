"""Rollback storage on a versioned bucket: replaced bodies stay as noncurrent versions.

Every test here runs against moto's threaded server with versioning enabled on the bucket
(``s3_versioned`` is overridden below); the rest of the S3 suite runs on versioned buckets too
with ``pytest --s3-versioning``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sitedeploy.config import S3TargetConfig
from sitedeploy.errors import RollbackError
from sitedeploy.release.records import read_manifest
from sitedeploy.targets.s3.bodies import SWEEP_EVERY
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.s3 import (
    RequestLog,
    S3Server,
    bucket_tree,
    make_bucket,
    publish_dir,
    rollback_target,
    write_tree,
)

ConfigFactory = Callable[..., S3TargetConfig]


@pytest.fixture
def s3_versioned() -> bool:
    return True


def site(version: int, pages: int = 6) -> dict[str, str | bytes]:
    """A small site whose page ``version % pages`` and index change with ``version``."""
    files: dict[str, str | bytes] = {
        "index.html": f'<link href="a.css"><h1>v{version}</h1>',
        "a.css": "body { color: #123 }",
        "img/photo.960w.1a2b3c4d5e.webp": b"RIFF\x00\x00WEBP" + bytes(range(256)) * 40,
    }
    for i in range(pages):
        edited = f" (edit {version})" if i == version % pages else ""
        files[f"guide/p{i}/index.html"] = f"<p>page {i}{edited}</p>"
    return files


def versions(client: Any, bucket: str, prefix: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(versions, delete markers) of every key under ``prefix``."""
    found: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        found[0].extend(page.get("Versions", []))
        found[1].extend(page.get("DeleteMarkers", []))
    return found


def site_writes(log: RequestLog) -> list[str]:
    return [url for op, url in log.keys if op in ("PutObject", "CopyObject") and "/.sitedeploy/" not in url]


def test_a_one_page_deploy_writes_the_changed_bodies_and_three_objects(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config()
    target = S3Target("s3", cfg)
    log = RequestLog().attach(target.s3)
    publish_dir(target, cfg, write_tree(tmp_path / "b", site(0)))
    for v in range(1, 5):  # each one edits a page, restores the page edited before, and the index
        log.clear()
        result = publish_dir(target, cfg, write_tree(tmp_path / "b", site(v)))
        assert result.plan is not None
        changed = len(result.plan.uploads)
        assert changed == 3 and len(site_writes(log)) == changed
        assert log.writes() == changed + 3, log.keys  # lock, release object, state object
        assert log.counts["CopyObject"] == 0 and log.counts["ListObjectVersions"] == 0
        assert log.counts["GetBucketVersioning"] == 0  # asked once per target, by the first deploy
    client = s3_server.client()
    assert "Contents" not in client.list_objects_v2(Bucket=s3_bucket, Prefix=".sitedeploy/objects/")
    live = json.loads(client.get_object(Bucket=s3_bucket, Key=".sitedeploy/live.json")["Body"].read())
    assert all(len(row) == 5 for row in live["objects"].values())  # each key with its version id
    assert len(live["homes"]) == 4 * 3  # every body replaced, kept where it was: no copy


def test_rollback_after_several_deploys_copies_from_versions_and_uploads_nothing(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(gzip=("*.html",))
    client = s3_server.client()
    target = S3Target("s3", cfg)
    trees = []
    for v in range(1, 6):
        publish_dir(target, cfg, write_tree(tmp_path / "b", {**site(v), f"only-in-{v}.html": f"<p>{v}</p>"}))
        trees.append(bucket_tree(client, s3_bucket))
    heads = {
        k: client.head_object(Bucket=s3_bucket, Key=k)["ContentEncoding"] for k in site(1) if "html" in k
    }

    fresh = S3Target("s3", cfg)  # another machine: nothing but credentials and the bucket
    log = RequestLog().attach(fresh.s3)
    for back in range(4):  # to v4, v3, v2, then v1
        rollback_target(fresh, cfg)
        now = bucket_tree(client, s3_bucket)
        want = trees[3 - back]
        assert {k: now[k] for k in want if not k.startswith("only-in")} == {
            k: v for k, v in want.items() if not k.startswith("only-in")
        }
    assert log.counts["PutObject"] == len(
        [u for op, u in log.keys if op == "PutObject" and "/.sitedeploy/" in u]
    )
    assert log.counts["UploadPart"] == 0 and log.counts["CopyObject"] > 0
    assert "Contents" not in client.list_objects_v2(Bucket=s3_bucket, Prefix=".sitedeploy/objects/")
    assert all(client.head_object(Bucket=s3_bucket, Key=k)["ContentEncoding"] == e for k, e in heads.items())
    live = fresh.live_release()
    manifest = read_manifest(fresh, live or "")
    assert manifest is not None and fresh.verify(live or "", manifest)[0].summary() == "no drift"


def test_prune_and_sweeps_delete_the_versions_no_retained_release_needs(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(keep_releases=2, retain_releases=1)
    client = s3_server.client()
    target = S3Target("s3", cfg)
    for v in range(1, 2 * SWEEP_EVERY + 3):
        files = {"index.html": f"<h1>v{v}</h1>", "big.json": json.dumps({"v": v, "pad": "x" * 4000})}
        if v % 3 == 0:
            files[f"gone-{v}.html"] = "<p>here for one release</p>"  # deleted by the next switch
        publish_dir(target, cfg, write_tree(tmp_path / "b", files))
        found, markers = versions(client, s3_bucket, "big.json")
        # the live body, and the ones the two retained releases (and the one just pruned) need
        assert len(found) <= 3 and markers == []
        if v % SWEEP_EVERY == 0:
            assert_only_homes_remain(target, client, s3_bucket)
    assert_only_homes_remain(target, client, s3_bucket, swept=False)
    # what is left still rolls back
    rollback_target(target, cfg)
    assert bucket_tree(client, s3_bucket)["index.html"] == f"<h1>v{2 * SWEEP_EVERY + 1}</h1>".encode()


def assert_only_homes_remain(target: S3Target, client: Any, bucket: str, *, swept: bool = True) -> None:
    """Site keys: no noncurrent version but the homes of the retained releases' bodies. After a
    sweep, a delete marker only in front of a home, and few old versions of our own files: the
    state object's, and what the prune after the sweep deleted (the lock, a release record)."""
    live = target.base_state()
    homes = {(h.path, h.version_id) for h in live.homes.values()}
    found, markers = versions(client, bucket)
    site = [v for v in found if not v["Key"].startswith(".sitedeploy/")]
    old = {(v["Key"], v["VersionId"]) for v in site if not v["IsLatest"]}
    assert old <= homes if not swept else old == homes
    if swept:
        site_markers = {m["Key"] for m in markers if not m["Key"].startswith(".sitedeploy/")}
        assert site_markers <= {path for path, _ in homes}
        own = [v for v in found + markers if v["Key"].startswith(".sitedeploy/") and not v["IsLatest"]]
        state_versions = [v for v in own if v["Key"] == ".sitedeploy/live.json"]
        assert len(state_versions) <= 5 and len(own) - len(state_versions) <= 2, own


def test_verify_finds_bodies_in_versions_and_reports_a_lost_one(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config()
    client = s3_server.client()
    with S3Target("s3", cfg) as t:
        publish_dir(t, cfg, write_tree(tmp_path / "b", site(1)))
        first = t.live_release() or ""
        publish_dir(t, cfg, write_tree(tmp_path / "b", site(2)))
        manifest = read_manifest(t, first)
        assert manifest is not None and t.verify(first, manifest)[0].clean  # retained: all in versions
        after = bucket_tree(client, s3_bucket)
        home = t.base_state().homes[manifest["index.html"].sha256]
        client.delete_object(Bucket=s3_bucket, Key=home.path, VersionId=home.version_id)
        [drift] = t.verify(first, manifest)
        assert drift.missing == ["index.html"]
        with pytest.raises(RollbackError, match=r"was changed on the target.*1 missing"):
            rollback_target(t, cfg)
        assert bucket_tree(client, s3_bucket) == after  # nothing was touched


def test_repair_puts_back_a_tampered_key_and_records_its_new_version(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config()
    client = s3_server.client()
    build = write_tree(tmp_path / "b", site(1))
    with S3Target("s3", cfg) as t:
        publish_dir(t, cfg, build)
        live = t.live_release() or ""
        manifest = read_manifest(t, live)
        assert manifest is not None
        client.put_object(Bucket=s3_bucket, Key="a.css", Body=b"body { color: red }")
        client.delete_object(Bucket=s3_bucket, Key="guide/p2/index.html")
        drift = t.verify(live, manifest)
        assert drift[0].changed == ["a.css"] and drift[0].missing == ["guide/p2/index.html"]
        before = t.read_state().objects["a.css"].version_id
        t.repair(live, manifest, build, drift)
        assert t.verify(live, manifest)[0].clean
        repaired = t.read_state().objects["a.css"].version_id
        current = client.head_object(Bucket=s3_bucket, Key="a.css")["VersionId"]
        assert repaired == current and repaired != before


def test_a_state_from_before_versioning_keeps_copies_until_its_keys_are_rewritten(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server
) -> None:
    client = s3_server.client()
    make_bucket(client, "grown-up", versioned=False)
    cfg = s3_config(bucket="grown-up")
    publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "b", site(1)))
    client.put_bucket_versioning(Bucket="grown-up", VersioningConfiguration={"Status": "Enabled"})
    target = S3Target("s3", cfg)
    log = RequestLog().attach(target.s3)
    publish_dir(target, cfg, write_tree(tmp_path / "b", site(2)))  # v1's bodies have no version id
    copies = [u for op, u in log.keys if op == "CopyObject"]
    assert len(copies) == 3 and all("/.sitedeploy/objects/" in u for u in copies)
    log.clear()
    publish_dir(target, cfg, write_tree(tmp_path / "b", site(3)))
    # the index and page 2 were written by v2, versioned: kept as versions; page 3 still holds
    # what v1 wrote before the bucket kept versions: copied
    copies = [u for op, u in log.keys if op == "CopyObject"]
    assert len(copies) == 1 and log.writes() == 3 + 1 + 3
    trees = []
    for _ in range(2):  # back to v2 (from versions), then v1 (from the copies)
        rollback_target(S3Target("s3", cfg), cfg)
        trees.append(bucket_tree(client, "grown-up"))
    assert trees[0]["index.html"] == site(2)["index.html"].encode()  # type: ignore[union-attr]
    assert trees[1] == {k: v.encode() if isinstance(v, str) else v for k, v in site(1).items()}


def test_versioning_off_keeps_copies_on_a_versioned_bucket(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(versioning="off")
    target = S3Target("s3", cfg)
    log = RequestLog().attach(target.s3)
    publish_dir(target, cfg, write_tree(tmp_path / "b", site(1)))
    publish_dir(target, cfg, write_tree(tmp_path / "b", site(2)))
    assert log.counts["GetBucketVersioning"] == 0
    copies = [u for op, u in log.keys if op == "CopyObject"]
    assert len(copies) == 3 and all("/.sitedeploy/objects/" in u for u in copies)
    assert "homes" not in json.loads(target.read_meta("live.json") or b"{}")
