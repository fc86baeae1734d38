"""S3 ``verify`` compares what readers get with the manifest's sha256, not with ETags.

Issue 11, finding 4: verify compared each key's ETag with the one sitedeploy recorded, so
content altered by anyone who can write the bucket passed as "no drift" whenever the listing
still matched: a single-part ETag is an MD5, and MD5 collisions are cheap (the pair below is
the classic 128-byte one), and whoever writes the bucket can also rewrite the state object's
recorded ETag. Each attack here keeps the key's headers exactly as sitedeploy wrote them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sitedeploy.config import S3TargetConfig
from sitedeploy.release.manifest import Manifest
from sitedeploy.release.records import read_manifest
from sitedeploy.targets.s3.target import S3Target
from sitedeploy.targets.s3.transfer import decoded_sha256
from tests.fixtures.s3 import RequestLog, S3Server, bucket_tree, publish_dir, write_tree

ConfigFactory = Callable[..., S3TargetConfig]

# Two different 128-byte messages with the same MD5 (Wang et al.): the same S3 ETag and size.
COLLIDE_A = bytes.fromhex(
    "d131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f89"
    "55ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5b"
    "d8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70"
)
COLLIDE_B = bytes.fromhex(
    "d131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f89"
    "55ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5b"
    "d8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70"
)
SITE: dict[str, str | bytes] = {
    "index.html": "<h1>home</h1>" + "<p>padding</p>" * 200,  # gzip-stored
    "guide/index.html": "<h1>guide</h1>",  # gzip-stored
    "style.css": "body { color: black }",  # gzip-stored
    "app.js": "console.log('hi')",
    "blob.bin": COLLIDE_A,
}


def live_manifest(target: S3Target) -> tuple[str, Manifest]:
    live = target.live_release()
    manifest = read_manifest(target, live) if live else None
    assert live is not None and manifest is not None
    return live, manifest


def overwrite_keeping_headers(client: Any, bucket: str, key: str, body: bytes) -> str:
    """Put ``body`` at ``key`` with the Content-Type, Cache-Control and Content-Encoding that
    sitedeploy wrote there; return the new ETag."""
    head = client.head_object(Bucket=bucket, Key=key)
    args = {"ContentType": head["ContentType"], "CacheControl": head["CacheControl"]}
    if head.get("ContentEncoding"):
        args["ContentEncoding"] = head["ContentEncoding"]
    return str(client.put_object(Bucket=bucket, Key=key, Body=body, **args)["ETag"])


def forge_recorded_etag(client: Any, bucket: str, path: str, etag: str, size: int) -> None:
    """Rewrite the state object so that it records ``etag`` and ``size`` at ``path``: the
    listing then matches what sitedeploy "wrote" there."""
    key = ".sitedeploy/live.json"
    live = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    live["objects"][path][1:3] = [etag, size]
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(live).encode())


def test_content_altered_behind_matching_etags_and_headers_is_changed_and_repaired(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(gzip=("*.html", "*.css"))
    build = write_tree(tmp_path / "b", SITE)
    publish_dir(S3Target("s3", cfg), cfg, build)
    client = s3_server.client()
    assert client.head_object(Bucket=s3_bucket, Key="style.css")["ContentEncoding"] == "gzip"

    # 1. an MD5 collision: same ETag, same size, same headers; nothing in a listing changes
    overwrite_keeping_headers(client, s3_bucket, "blob.bin", COLLIDE_B)
    # 2. a gzip-stored page with other (validly compressed) content, the state's ETag forged
    evil = gzip.compress(b"<script>steal()</script>", mtime=0)
    etag = overwrite_keeping_headers(client, s3_bucket, "guide/index.html", evil)
    forge_recorded_etag(client, s3_bucket, "guide/index.html", etag, len(evil))
    # 3. a gzip-stored stylesheet whose stored body is no longer gzip at all
    etag = overwrite_keeping_headers(client, s3_bucket, "style.css", b"body{}")
    forge_recorded_etag(client, s3_bucket, "style.css", etag, 6)

    target = S3Target("s3", cfg)
    live, manifest = live_manifest(target)
    [drift] = target.verify(live, manifest)
    assert not drift.missing and not drift.extra
    assert drift.changed == ["blob.bin", "guide/index.html", "style.css"]

    target.repair(live, manifest, build, [drift])
    served = bucket_tree(client, s3_bucket)
    assert served["blob.bin"] == COLLIDE_A
    assert gzip.decompress(served["guide/index.html"]) == b"<h1>guide</h1>"
    assert S3Target("s3", cfg).verify(live, manifest)[0].clean


def test_headers_that_change_how_readers_decode_a_key_are_changed(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    """Same body, same ETag: a Content-Encoding dropped (browsers get gzip bytes) or a
    Content-Type turned into a page is drift too."""
    cfg = s3_config(gzip=("*.css",))
    publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "b", SITE))
    client = s3_server.client()
    for key, args in {
        "style.css": {"ContentType": "text/css; charset=utf-8"},  # the encoding is gone
        "app.js": {"ContentType": "text/html; charset=utf-8"},
    }.items():
        head = client.head_object(Bucket=s3_bucket, Key=key)
        copy = {"Bucket": s3_bucket, "Key": key}
        client.copy_object(
            Bucket=s3_bucket, Key=key, CopySource=copy, MetadataDirective="REPLACE",
            CacheControl=head["CacheControl"], **args,
        )  # fmt: skip
    target = S3Target("s3", cfg)
    live, manifest = live_manifest(target)
    assert target.verify(live, manifest)[0].changed == ["app.js", "style.css"]


def test_an_untouched_deploy_verifies_clean_with_one_get_per_key(
    tmp_path: Path, s3_config: ConfigFactory, s3_bucket: str
) -> None:
    cfg = s3_config(gzip=("*.html", "*.css"))
    publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "b", SITE))
    target = S3Target("s3", cfg)
    live, manifest = live_manifest(target)
    requests = RequestLog().attach(target.s3)
    [drift] = target.verify(live, manifest)
    assert drift.clean, drift.summary()
    assert requests.counts["GetObject"] == len(SITE) + 1  # every site key, and the state object
    assert requests.writes() == 0 and requests.counts["HeadObject"] == 0


def test_hashing_a_body_is_bounded_and_refuses_what_is_not_one_gzip_stream() -> None:
    text = b"x" * 5_000_000
    packed = gzip.compress(text, mtime=0)
    pieces = [packed[i : i + 1000] for i in range(0, len(packed), 1000)]
    assert decoded_sha256(pieces, True, len(text)) == hashlib.sha256(text).hexdigest()
    assert decoded_sha256(pieces, True, len(text) - 1) is None  # a bomb stops at the limit
    assert decoded_sha256(pieces[:-1], True, len(text)) is None  # truncated
    assert decoded_sha256([packed, b"junk"], True, len(text)) is None  # trailing bytes
    assert decoded_sha256([b"not gzip"], True, 100) is None
    assert decoded_sha256([b"ab", b"c"], False, 3) == hashlib.sha256(b"abc").hexdigest()
