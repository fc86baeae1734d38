"""Single-object writes of the S3 target against moto's server: what goes on the wire."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from sitedeploy.config import S3TargetConfig
from sitedeploy.targets.s3.client import Clients
from sitedeploy.targets.s3.headers import ObjectHeaders
from sitedeploy.targets.s3.transfer import SMALL, Bucket

HTML = ObjectHeaders("text/html; charset=utf-8", "public, max-age=0, must-revalidate")


class Expects:
    """The ``Expect`` header of every PutObject, as sent (botocore's before-send event)."""

    def __init__(self, client: Any) -> None:
        self.seen: dict[str, str | None] = {}
        client.meta.events.register("before-send.s3.PutObject", self)

    def __call__(self, request: Any, **_: Any) -> None:
        key = request.url.rsplit("/", 1)[-1]
        expect = request.headers.get("Expect")
        self.seen[key] = expect.decode() if isinstance(expect, bytes) else expect


def test_small_bodies_skip_the_continue_round_trip_large_ones_keep_it(
    s3_config: Callable[..., S3TargetConfig], tmp_path: Path
) -> None:
    cfg = s3_config()
    clients = Clients(cfg)
    bucket = Bucket(clients.s3, cfg.bucket, TransferConfig(multipart_threshold=64 * 1024 * 1024))
    Bucket(clients.s3, cfg.bucket, TransferConfig())  # a second Bucket adds no second handler
    expects = Expects(clients.s3)
    small = tmp_path / "small.html"
    small.write_bytes(b"<p>hello</p>" * 100)
    large = tmp_path / "large.bin"
    large.write_bytes(bytes(range(256)) * (SMALL // 256 + 1))
    try:
        for name, path in (("small.html", small), ("large.bin", large)):
            stored = bucket.put_file(name, path, "sha", HTML)
            body = clients.s3.get_object(Bucket=cfg.bucket, Key=name)["Body"].read()
            assert body == path.read_bytes()
            assert stored.etag.strip('"') == hashlib.md5(body).hexdigest()
            assert stored.size == len(body)
    finally:
        clients.close()
    assert expects.seen == {"small.html": None, "large.bin": "100-continue"}
