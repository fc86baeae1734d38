"""Drift, outages and failures on an S3 target: detected, reported in one line, converged."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

from sitedeploy.commands import rules_for, switch_back
from sitedeploy.config import S3TargetConfig
from sitedeploy.errors import TargetError
from sitedeploy.release.manifest import Manifest
from sitedeploy.release.records import read_manifest
from sitedeploy.targets.s3 import cdn
from sitedeploy.targets.s3.headers import SHORT
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.s3 import Outage, S3Server, bucket_tree, publish_dir, rollback_target, write_tree

ConfigFactory = Callable[..., S3TargetConfig]


def live_manifest(target: S3Target) -> tuple[str, Manifest]:
    live = target.live_release()
    manifest = read_manifest(target, live) if live else None
    assert live is not None and manifest is not None
    return live, manifest


def test_verify_finds_deleted_edited_and_extra_objects_and_repair_restores_them(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config()
    target = S3Target("s3", cfg)
    files = {"index.html": "<h1>home</h1>", "a/index.html": "<p>a</p>", "style.css": "b {}"}
    build = write_tree(tmp_path / "b", files)
    publish_dir(target, cfg, build)
    client = s3_server.client()
    client.delete_object(Bucket=s3_bucket, Key="a/index.html")
    client.put_object(Bucket=s3_bucket, Key="style.css", Body=b"b { color: red }")  # same path, edited
    client.put_object(Bucket=s3_bucket, Key="stray.html", Body=b"?")
    live, manifest = live_manifest(target)
    [drift] = target.verify(live, manifest)
    assert (drift.missing, drift.changed, drift.extra) == (["a/index.html"], ["style.css"], ["stray.html"])
    assert drift.where == f"s3://{s3_bucket}/"

    target.repair(live, manifest, build, [drift])
    assert bucket_tree(client, s3_bucket) == {k: v.encode() for k, v in files.items()}
    assert target.verify(live, manifest)[0].clean
    assert client.head_object(Bucket=s3_bucket, Key="style.css")["ContentType"] == "text/css; charset=utf-8"


def test_the_server_going_away_mid_deploy_leaves_the_old_release_named_and_the_next_deploy_converges(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str, s3_outage: Outage
) -> None:
    cfg = s3_config(endpoint_url=s3_outage.url, max_attempts=2, connect_timeout=1, read_timeout=5)
    v1 = {"index.html": "<h1>1</h1>", "a.css": "a1", "p/index.html": "p1", "q/index.html": "q1"}
    v2 = {
        "index.html": "<h1>2</h1>",
        "a.css": "a2",
        "p/index.html": "p2",
        "q/index.html": "q2",
        "n.html": "n",
    }
    v3 = {"index.html": "<h1>3</h1>", "a.css": "a1", "p/index.html": "p1", "q/index.html": "q3"}
    publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "b", v1))
    first = S3Target("s3", s3_config()).live_release()

    target = S3Target("s3", cfg)
    pages_sent: list[str] = []

    def cut_after_first_page(request: object, **kwargs: object) -> None:
        url = str(getattr(request, "url", ""))
        if url.endswith(".html") and "/.sitedeploy/" not in url:
            pages_sent.append(url)
            if len(pages_sent) == 2:
                s3_outage.stop()

    target.s3.meta.events.register("before-send.s3.PutObject", cut_after_first_page)
    with pytest.raises(TargetError) as failure:
        publish_dir(target, cfg, write_tree(tmp_path / "b", v2))
    assert failure.value.retryable and "\n" not in failure.value.message
    assert f"s3://{s3_bucket}/" in failure.value.message and "cannot " in failure.value.message
    client = s3_server.client()
    half = bucket_tree(client, s3_bucket)
    assert half["a.css"] == b"a2"  # assets went first; the switch was cut among the pages
    observer = S3Target("s3", s3_config())
    assert observer.live_release() == first
    assert observer.read_state().pending is None  # no state write before the switch: the
    interrupted = observer.base_state()  # evidence is v2's release record, unknown to the state
    assert interrupted.pending is not None and interrupted.pending != first
    assert interrupted.dirty == set(v2)  # every key the dead run may have written is suspect

    s3_outage.start()
    # The dead run could not release its lock (the network was gone); it expires by itself.
    lock = json.loads(client.get_object(Bucket=s3_bucket, Key=".sitedeploy/lock.json")["Body"].read())
    lock["expires_at"] = time.time() - 1
    client.put_object(Bucket=s3_bucket, Key=".sitedeploy/lock.json", Body=json.dumps(lock))

    nxt = S3Target("s3", cfg)
    publish_dir(nxt, cfg, write_tree(tmp_path / "b", v3))
    now = bucket_tree(client, s3_bucket)
    assert {k: now[k] for k in v3} == {k: v.encode() for k, v in v3.items()}  # a.css back to a1
    live, manifest = live_manifest(nxt)
    assert nxt.verify(live, manifest)[0].clean and nxt.read_state().pending is None


def test_missing_bucket_and_unreachable_endpoint_are_one_line_errors(
    tmp_path: Path, s3_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = write_tree(tmp_path / "b", {"index.html": "x"})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    cfg = s3_config(bucket="no-such-bucket-here")
    with pytest.raises(TargetError) as missing:
        publish_dir(S3Target("s3", cfg), cfg, build)
    assert "s3://no-such-bucket-here/" in missing.value.message and "does not exist" in missing.value.message
    assert not missing.value.retryable

    cfg = s3_config(endpoint_url="http://127.0.0.1:9", max_attempts=1, connect_timeout=1)
    with pytest.raises(TargetError) as unreachable:
        S3Target("s3", cfg).live_release()
    assert unreachable.value.retryable and "cannot reach the S3 endpoint" in unreachable.value.message
    for err in (missing.value, unreachable.value):
        assert "AKIA" not in err.message and "wJalr" not in err.message and "\n" not in err.message


def test_cloudfront_gets_only_the_changed_paths_and_nothing_when_nothing_changed(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server
) -> None:
    import boto3

    cloudfront = boto3.client("cloudfront", endpoint_url=s3_server.url, region_name="us-east-1")
    origin = {
        "Id": "o",
        "DomainName": "bucket.s3.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    dist = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": str(time.time_ns()),
            "Comment": "",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all"},
        }
    )["Distribution"]["Id"]
    cfg = s3_config(cloudfront_distribution_id=dist, cloudfront_endpoint_url=s3_server.url)
    target = S3Target("s3", cfg)
    files = {"index.html": "1", "guide/index.html": "g", "a.css": "a"}
    publish_dir(target, cfg, write_tree(tmp_path / "b", files))
    publish_dir(target, cfg, write_tree(tmp_path / "b", files))  # a new commit, same output
    publish_dir(target, cfg, write_tree(tmp_path / "b", {**files, "guide/index.html": "g2"}))
    listed = cloudfront.list_invalidations(DistributionId=dist)["InvalidationList"].get("Items", [])
    assert len(listed) == 2
    paths = [
        sorted(
            cloudfront.get_invalidation(DistributionId=dist, Id=i["Id"])["Invalidation"]["InvalidationBatch"][
                "Paths"
            ]["Items"]
        )
        for i in listed
    ]
    assert ["/guide/", "/guide/index.html"] in paths
    assert ["/", "/a.css", "/guide/", "/guide/index.html", "/index.html"] in paths


def test_invalidation_paths_collapse_to_wildcards_past_the_budget() -> None:
    pages = [f"guide/part{i}/page{j}/index.html" for i in range(3) for j in range(5)]
    assert cdn.invalidation_paths([], 15) == []
    assert cdn.invalidation_paths(["a b.html"], 15) == ["/a%20b.html"]
    assert cdn.invalidation_paths(pages[:2], 15) == [
        "/guide/part0/page0/",
        "/guide/part0/page0/index.html",
        "/guide/part0/page1/",
        "/guide/part0/page1/index.html",
    ]
    assert cdn.invalidation_paths(pages, 15) == [
        f"/guide/part{i}/page{j}/*" for i in range(3) for j in range(5)
    ]
    assert cdn.invalidation_paths(pages, 3) == ["/guide/part0/*", "/guide/part1/*", "/guide/part2/*"]
    assert cdn.invalidation_paths([*pages, "index.html"], 3) == ["/", "/guide/*", "/index.html"]
    assert cdn.invalidation_paths([*pages, "index.html", "x.css"], 2) == ["/*"]


class Crash(Exception):
    """The process dying mid-switch, in effect: nothing after it runs."""


def crash_on_second_site_write(target: S3Target, operation: str) -> None:
    written: list[str] = []

    def hook(request: object, **kwargs: object) -> None:
        url = str(getattr(request, "url", ""))
        if "/.sitedeploy/" not in url:
            written.append(url)
            if len(written) == 2:
                raise Crash(url)

    target.s3.meta.events.register(f"before-send.s3.{operation}", hook)


def test_a_dead_switch_of_headers_alone_is_rewritten_with_the_rules_it_ran_with(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    files = {"index.html": "<h1>1</h1>", "a.css": "a", "b.css": "b"}
    cfg = s3_config(max_concurrency=1)
    publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "b", files))
    new_rules = s3_config(max_concurrency=1, cache_control={"*.css": "public, max-age=60"})
    dying = S3Target("s3", new_rules)
    crash_on_second_site_write(dying, "CopyObject")  # a header change is a copy onto itself
    with pytest.raises(Crash):
        publish_dir(dying, new_rules, write_tree(tmp_path / "b", files))
    client = s3_server.client()

    def cache_control() -> set[str]:
        return {client.head_object(Bucket=s3_bucket, Key=k)["CacheControl"] for k in ("a.css", "b.css")}

    assert cache_control() == {SHORT, "public, max-age=60"}  # one header went live, then the run died

    nxt = S3Target("s3", cfg)  # the old rules again: the state says both keys already match them
    publish_dir(nxt, cfg, write_tree(tmp_path / "b", files))
    assert cache_control() == {SHORT}
    live, manifest = live_manifest(nxt)
    assert nxt.verify(live, manifest)[0].clean and nxt.base_state().dirty == set()


def test_a_dead_rollback_marks_its_keys_pending_and_the_next_deploy_converges(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(max_concurrency=1)
    v1 = {"index.html": "<h1>1</h1>", "a.css": "a1", "b.css": "b1", "p.html": "p1"}
    v2 = {"index.html": "<h1>2</h1>", "a.css": "a2", "b.css": "b2", "p.html": "p2"}
    v3 = {**v2, "index.html": "<h1>3</h1>"}
    target = S3Target("s3", cfg)
    for files in (v1, v2):
        publish_dir(target, cfg, write_tree(tmp_path / "b", files))
    dying = S3Target("s3", cfg)
    crash_on_second_site_write(dying, "CopyObject")  # a rollback restores bodies by copies
    with pytest.raises(Crash):
        rollback_target(dying, cfg)
    observer = S3Target("s3", cfg)
    assert observer.read_state().pending is not None  # no new release record: the state says it

    publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "b", v3))
    now = bucket_tree(s3_server.client(), s3_bucket)
    assert {k: now[k] for k in v3} == {k: v.encode() for k, v in v3.items()}  # a.css back to a2
    live, manifest = live_manifest(observer)
    assert observer.verify(live, manifest)[0].clean


def stop_when_deleting(target: S3Target, key: str, failure: Exception) -> None:
    """Raise ``failure`` as the request that deletes ``key`` goes out (and nothing after)."""

    def hook(request: object, **kwargs: object) -> None:
        if key.encode() in bytes(getattr(request, "body", b"") or b""):
            raise failure

    target.s3.meta.events.register("before-send.s3.DeleteObjects", hook)


@pytest.mark.parametrize(
    "failure",
    [Crash("killed after the commit"), EndpointConnectionError(endpoint_url="http://gone")],
    ids=["killed", "refused"],
)
def test_a_rollback_stopped_between_its_commit_and_its_deletes_converges_with_no_extra_keys(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str, failure: Exception
) -> None:
    """The window the crash suite once hit by chance: a switch commits the state object, which
    no longer lists the keys whose ``retain_releases`` ran out, then deletes them. Stopped in
    between (SIGKILL, or the delete refused), those keys were in no state: ``verify`` called
    them extra, and rolling back to the live release (the next run after a rollback killed
    past its commit) refused. They stay recorded until a later switch has deleted them."""
    cfg = s3_config(max_concurrency=1)
    site = {"index.html": "<h1>{v}</h1>", "logo.{v}.webp": "logo {v}", "a.css": "a"}
    ids = []
    for v in (1, 2, 3):  # logo.1 left at 2 and went at 3; logo.2 left at 3 (retain_releases = 2)
        files = {k.format(v=v): body.format(v=v) for k, body in site.items()}
        ids.append(publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "b", files)).release)
    first = ids[0]
    assert first is not None
    dying = S3Target("s3", cfg)
    stop_when_deleting(dying, "logo.2.webp", failure)  # back to 1: logo.2's time is up
    if isinstance(failure, Crash):
        with pytest.raises(Crash):
            switch_back(dying, rules_for(cfg), first, pin=True)
    else:
        switch_back(dying, rules_for(cfg), first, pin=True)  # logged: the release is live
    client = s3_server.client()
    assert "logo.2.webp" in bucket_tree(client, s3_bucket)  # committed, not yet deleted
    observer = S3Target("s3", cfg)
    live, manifest = live_manifest(observer)
    assert live == first and observer.verify(live, manifest)[0].clean  # leftovers, not drift

    nxt = S3Target("s3", cfg)
    assert switch_back(nxt, rules_for(cfg), first, pin=True).release == first  # converges
    keys = set(bucket_tree(client, s3_bucket))
    assert "logo.2.webp" not in keys and {"index.html", "logo.1.webp", "a.css"} <= keys
    assert nxt.verify(*live_manifest(nxt))[0].clean
