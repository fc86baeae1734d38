"""The S3 target against a real S3 API over HTTP: what a deploy writes, and with which headers."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

from sitedeploy.config import S3TargetConfig
from sitedeploy.release.lock import locked
from sitedeploy.release.records import read_control, read_history, read_manifest, read_release
from sitedeploy.targets.s3.headers import IMMUTABLE, REVALIDATE, SHORT
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.s3 import RequestLog, S3Server, bucket_tree, publish_dir, write_tree

ConfigFactory = Callable[..., S3TargetConfig]


def site(version: str, pages: int = 5) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        "index.html": f'<link href="assets/style.css"><h1>{version}</h1>',
        "assets/style.css": "body { color: #123 }",
        "assets/app.0123456789.js": "console.log(1)",
        "img/photo.960w.1a2b3c4d5e.webp": b"RIFF\x00\x00WEBP" + bytes(range(256)) * 40,
        "sitemap.xml": "<urlset/>",
        "search/search_index.json": '{"docs": []}',
        "fonts/a.woff2": b"wOF2" + b"\x00" * 64,
    }
    for i in range(pages):
        files[f"guide/page{i}/index.html"] = f"<p>page {i}</p>"
    return files


def test_full_deploy_then_one_page_change_writes_only_that_page_and_the_state(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str, s3_versioned: bool
) -> None:
    cfg = s3_config()
    target = S3Target("s3", cfg)
    log = RequestLog().attach(target.s3)
    first = publish_dir(target, cfg, write_tree(tmp_path / "v1", site("v1")))
    assert first.outcome == "deployed"
    assert log.counts["PutObject"] == 12 + 3  # every file; lock, release (record + manifest), state
    assert log.counts["CopyObject"] == 0
    assert "ListObjectsV2" in log.counts  # only .sitedeploy/releases/, never the site itself
    assert all("prefix=.sitedeploy" in url for op, url in log.keys if op == "ListObjectsV2")
    client = s3_server.client()
    assert bucket_tree(client, s3_bucket) == {
        k: v.encode() if isinstance(v, str) else v for k, v in site("v1").items()
    }

    log.clear()
    changed = site("v1")
    changed["guide/page3/index.html"] = "<p>page 3, edited</p>"
    second = publish_dir(target, cfg, write_tree(tmp_path / "v2", changed))
    assert second.plan is not None and [u.path for u in second.plan.uploads] == ["guide/page3/index.html"]
    site_puts = [url for op, url in log.keys if op == "PutObject" and "/.sitedeploy/" not in url]
    assert [u.rsplit("/", 3)[-3:] for u in site_puts] == [["guide", "page3", "index.html"]]
    # the old page body is kept for rollback: as a version, or by a server-side copy; no other
    # site object is written
    copies = [url for op, url in log.keys if op == "CopyObject"]
    assert copies == [] if s3_versioned else len(copies) == 1 and "/.sitedeploy/objects/" in copies[0]
    meta_puts = log.counts["PutObject"] - 1
    assert meta_puts == 3  # lock, the release (record + manifest), the state (commit + history entry)
    # what is written only under the lock is read once per deploy; the release list, once; the
    # live state and record once more before the build (is this build live already?), unlocked
    assert log.counts["ListObjectsV2"] == 1 and log.counts["GetObject"] <= 9, log.counts
    assert second.stats is not None and second.stats.files_sent == 1
    assert bucket_tree(client, s3_bucket)["guide/page3/index.html"] == b"<p>page 3, edited</p>"


def test_content_type_and_cache_control_follow_the_rules(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(cache_control={"fonts/*": "public, max-age=604800"})
    publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "v1", site("v1")))
    client = s3_server.client()

    def head(key: str) -> tuple[str, str]:
        response = client.head_object(Bucket=s3_bucket, Key=key)
        return response["ContentType"], response["CacheControl"]

    assert head("index.html") == ("text/html; charset=utf-8", REVALIDATE)
    assert head("sitemap.xml") == ("application/xml; charset=utf-8", REVALIDATE)
    assert head("search/search_index.json") == ("application/json; charset=utf-8", REVALIDATE)
    assert head("assets/style.css") == ("text/css; charset=utf-8", SHORT)
    assert head("assets/app.0123456789.js") == ("text/javascript; charset=utf-8", IMMUTABLE)
    assert head("img/photo.960w.1a2b3c4d5e.webp") == ("image/webp", IMMUTABLE)
    assert head("fonts/a.woff2") == ("font/woff2", "public, max-age=604800")


def test_a_header_only_change_is_a_server_side_copy_not_an_upload(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    build = write_tree(tmp_path / "v1", site("v1"))
    cfg = s3_config()
    publish_dir(S3Target("s3", cfg), cfg, build)
    # the same files, deployed with a new rule for stylesheets (a new commit of deploy.toml)
    cfg2 = s3_config(cache_control={"*.css": "public, max-age=60"})
    target = S3Target("s3", cfg2)
    log = RequestLog().attach(target.s3)
    publish_dir(target, cfg2, build)
    site_puts = [url for op, url in log.keys if op == "PutObject" and "/.sitedeploy/" not in url]
    copies = [url for op, url in log.keys if op == "CopyObject"]
    assert site_puts == []
    assert len(copies) == 1 and copies[0].endswith("/assets/style.css")
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="assets/style.css")
    assert head["CacheControl"] == "public, max-age=60"
    assert head["ContentType"] == "text/css; charset=utf-8"
    assert target.verify(
        target.live_release() or "", read_manifest(target, target.live_release() or "") or {}
    )[0].clean  # type: ignore[arg-type]


def test_gzip_globs_store_compressed_bodies_with_content_encoding(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(gzip=("*.html", "*.json"))
    target = S3Target("s3", cfg)
    publish_dir(target, cfg, write_tree(tmp_path / "v1", site("v1")))
    client = s3_server.client()
    page = client.get_object(Bucket=s3_bucket, Key="index.html")
    assert page["ContentEncoding"] == "gzip"
    assert gzip.decompress(page["Body"].read()).decode().endswith("<h1>v1</h1>")
    assert "ContentEncoding" not in client.head_object(Bucket=s3_bucket, Key="assets/style.css")
    live = target.live_release()
    assert live is not None
    manifest = read_manifest(target, live)
    assert manifest is not None and target.verify(live, manifest)[0].clean


def test_large_files_go_up_in_parts_and_everything_lives_under_the_prefix(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    big = bytes(range(256)) * (24 * 1024 * 1024 // 256)  # 24 MiB
    files = {**site("v1", pages=1), "downloads/big.bin": big}
    cfg = s3_config(prefix="/docs/", multipart_threshold=8 * 1024 * 1024)
    target = S3Target("s3", cfg)
    log = RequestLog().attach(target.s3)
    publish_dir(target, cfg, write_tree(tmp_path / "v1", files))
    assert log.counts["UploadPart"] >= 2 and log.counts["CompleteMultipartUpload"] == 1
    client = s3_server.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert all(k.startswith("docs/") for k in keys)
    assert "docs/.sitedeploy/live.json" in keys and "docs/index.html" in keys
    assert client.get_object(Bucket=s3_bucket, Key="docs/downloads/big.bin")["Body"].read() == big
    live = json.loads(client.get_object(Bucket=s3_bucket, Key="docs/.sitedeploy/live.json")["Body"].read())
    assert live["release"] == target.live_release() and live["pending"] is None
    manifest = read_manifest(target, live["release"])
    assert manifest is not None and target.verify(live["release"], manifest)[0].clean
    assert target.describe() == f"s3://{s3_bucket}/docs/"


def test_under_the_lock_only_files_written_under_it_are_answered_from_memory(
    s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    target = S3Target("s3", s3_config())
    log = RequestLog().attach(target.s3)
    client = s3_server.client()
    with locked(target, "s3"):
        assert target.live_release() is None and target.list_releases() == []
        log.clear()
        # pins and suspensions are written without the lock: always read from the bucket
        client.put_object(
            Bucket=s3_bucket, Key=".sitedeploy/control.json", Body=b'{"suspended": {"by": "ops", "at": "t"}}'
        )
        assert target.live_release() is None and target.list_releases() == []
        assert log.counts == {}
        assert read_control(target).suspended is not None and log.counts["GetObject"] == 1
    log.clear()
    assert target.live_release() is None and log.counts["GetObject"] == 1  # not locked: asked again


def test_a_bucket_in_the_older_layout_is_read_and_then_rolled_forward(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    """Buckets written by an earlier sitedeploy keep a separate manifest per release and the
    history in its own object; they are read as they are and moved on by the next deploy."""
    cfg = s3_config()
    first = publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "v1", site("v1")))
    client = s3_server.client()
    meta = ".sitedeploy/"

    def get(key: str) -> dict[str, object]:
        body: dict[str, object] = json.loads(
            client.get_object(Bucket=s3_bucket, Key=meta + key)["Body"].read()
        )
        return body

    def put(key: str, value: object) -> None:
        client.put_object(Bucket=s3_bucket, Key=meta + key, Body=json.dumps(value).encode())

    both = get(f"releases/{first.release}.json")
    put(f"releases/{first.release}.json", both["record"])
    put(f"manifests/{first.release}.json", both["manifest"])
    live = get("live.json")
    put("history.json", live.pop("history"))
    put("live.json", live)

    old = S3Target("s3", cfg)
    assert old.live_release() == first.release
    rid = first.release or ""
    record, manifest = read_release(old, rid), read_manifest(old, rid)
    assert record is not None and manifest is not None and len(manifest) == len(site("v1"))
    assert [e.release for e in read_history(old)] == [first.release]
    second = publish_dir(old, cfg, write_tree(tmp_path / "v2", site("v2")))
    assert [e.release for e in read_history(old)] == [first.release, second.release]
    assert "history" in get("live.json")  # moved into the state object
    assert read_manifest(S3Target("s3", cfg), rid) == manifest
