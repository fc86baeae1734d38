"""The shared build cache's store in an S3 bucket (or any S3-compatible server:
``cache_endpoint_url``). Not a target: it holds build entries, never a release; it lives here
because boto3 is used only under ``targets/s3/``.

Credentials come from the standard AWS chain, as for S3 targets. Every botocore error is
turned into a one-line :class:`~.stores.StoreError` scrubbed of anything shaped like a
secret (:func:`sitedeploy.targets.s3.client.scrub`); the caller decides whether a failing
cache is a warning (a lookup: build instead) or an error (``build --push``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import boto3
import botocore.config
import botocore.exceptions

from ...cache.stores import LAYOUT, StoreError, copy_limited
from ...errors import scrub

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_TAKEN = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
"""An ``If-None-Match: *`` create that lost: the key exists (or a concurrent create won)."""
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None) -> None:
        prefix = prefix.strip("/")
        self.bucket, self.where = bucket, f"s3://{bucket}/{prefix + '/' if prefix else ''}"
        self._prefix = f"{prefix}/{LAYOUT}/" if prefix else f"{LAYOUT}/"
        self._endpoint = endpoint_url
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    @property
    def s3(self) -> S3Client:
        with self._lock:  # one client, made once, shared by the build threads
            if self._client is None:
                style: Literal["path", "auto"] = "path" if self._endpoint else "auto"
                config = botocore.config.Config(
                    retries={"mode": "standard", "max_attempts": 5}, s3={"addressing_style": style}
                )
                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=self._endpoint, config=config
                )
            return self._client

    def read(self, name: str, into: BinaryIO, limit: int) -> bool:
        with self._translated("read", name):
            try:
                answer = self.s3.get_object(Bucket=self.bucket, Key=self._prefix + name)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING:
                    return False
                raise
            body: Any = answer["Body"]
            with body:
                copy_limited(body, into, limit, f"{self.where}{name}")
        return True

    def exists(self, name: str) -> bool:
        with self._translated("look up", name):
            try:
                self.s3.head_object(Bucket=self.bucket, Key=self._prefix + name)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _MISSING:
                    return False
                raise
        return True

    def create(self, name: str, data: Path) -> bool:
        with self._translated("write", name), data.open("rb") as body:
            try:
                self.s3.put_object(Bucket=self.bucket, Key=self._prefix + name, Body=body, IfNoneMatch="*")
            except botocore.exceptions.ClientError as exc:
                if _code(exc) in _TAKEN:
                    return False
                raise
        return True

    def entries(self) -> Iterator[tuple[str, float]]:
        with self._translated("list", ""):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._prefix)
            found = [
                (item["Key"][len(self._prefix) :], item["LastModified"].timestamp())
                for page in pages
                for item in page.get("Contents", [])
            ]
        yield from found

    def delete(self, name: str) -> None:
        with self._translated("delete", name):
            self.s3.delete_object(Bucket=self.bucket, Key=self._prefix + name)

    @contextmanager
    def _translated(self, doing: str, name: str) -> Iterator[None]:
        try:
            yield
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise StoreError(
                f"{self.where}: cannot {doing} {name or 'entries'} ({scrub(str(exc))[:200]})"
            ) from None


def _code(exc: botocore.exceptions.ClientError) -> str:
    error: Any = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(error.get("Code", ""))
    return code if code and code not in ("400",) else str(status)
