"""Writing single objects for the S3 target: uploads, server-side copies, header rewrites.

Every function here is called from the target's thread pool with the one shared client and
returns what now sits at the key (:class:`Stored`), taken from the server's answer (the ETag
lets deploys and ``verify`` spot a rewritten key without reading it; ``verify`` then reads every
body it trusts and hashes it: :meth:`Bucket.fetch`).

A site is mostly small files, so the cost of a full deploy is the cost per request, not per
byte. A body below ``SMALL`` is read into memory and sent in one PutObject *without*
``Expect: 100-continue``: botocore asks for that interim answer on every file-like body, which
costs a round trip to the server per object (and, in botocore, a byte-at-a-time read of the
interim status line). Larger bodies keep it -- a refused request then does not send megabytes
for nothing -- and are streamed from disk; files at or above the multipart threshold go
through boto3's managed transfer (parts sent in parallel). A gzip-compressed body is built in
a spooled temporary file, never whole in memory. Requests reuse the client's pooled
connections (``max_pool_connections`` is the target's ``max_concurrency`` plus a few, so every
worker of the target's pool keeps its own connection).

On a versioned bucket (``keep_versions``) every :class:`Stored` carries the VersionId the write
returned; a copy may start from a noncurrent version, and deletes may name versions.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from boto3.s3.transfer import TransferConfig
from botocore.utils import determine_content_length

from .headers import ObjectHeaders
from .live import Stored, Touch
from .site_rules import EMPTY

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

COPY_LIMIT = 5 * 1024**3
"""CopyObject's limit; bigger objects are copied in parts by the managed transfer."""
SPOOL = 8 * 1024 * 1024
SMALL = 8 * 1024 * 1024
"""Bodies below this are sent from memory without waiting for ``100 Continue``."""
CHUNK = 1024 * 1024
"""Bytes read (and decompressed) at a time when ``verify`` hashes a live object."""


class Fetched(NamedTuple):
    """What a reader gets from one live key: the sha256 of its decoded body, and its headers.
    ``sha256`` is None when the body cannot be decoded or decodes to more than was expected."""

    sha256: str | None
    headers: ObjectHeaders


class Bucket:
    """One bucket (and key prefix) seen through a shared client."""

    def __init__(self, client: S3Client, name: str, transfer: TransferConfig) -> None:
        self.client = client
        self.name = name
        self.transfer = transfer
        self.keep_versions = False
        """Record the VersionId of every write (set by the target once it knows the bucket
        keeps versions; "null", a version of an unversioned write, is never recorded)."""
        # unique_id: a second Bucket over the same client does not add the handler twice
        client.meta.events.register_last("before-call.s3", no_continue_for_small, unique_id=_NO_CONTINUE)

    def put_file(self, key: str, file: Path, sha256: str, headers: ObjectHeaders) -> Stored:
        if headers.content_encoding == "gzip":
            with compressed(file) as body:
                return self.put_stream(key, body, body.tell(), sha256, headers)
        size = file.stat().st_size
        if size < min(SMALL, self.transfer.multipart_threshold):
            return self.put_bytes(key, file.read_bytes(), sha256, headers)
        with file.open("rb") as body:
            return self.put_stream(key, body, size, sha256, headers)

    def put_bytes(self, key: str, data: bytes, sha256: str, headers: ObjectHeaders) -> Stored:
        """One PutObject from memory (a small body: no ``Expect: 100-continue``)."""
        response = self.client.put_object(Bucket=self.name, Key=key, Body=data, **headers.put_args())  # type: ignore[arg-type]
        return Stored(sha256, response["ETag"], len(data), headers, self._version(response))

    def put_stream(self, key: str, body: IO[bytes], size: int, sha256: str, headers: ObjectHeaders) -> Stored:
        body.seek(0)
        if size < min(SMALL, self.transfer.multipart_threshold):
            return self.put_bytes(key, body.read(), sha256, headers)
        if size >= self.transfer.multipart_threshold:
            self.client.upload_fileobj(
                body, self.name, key, ExtraArgs=headers.put_args(), Config=self.transfer
            )
            return self._stored(key, sha256, headers)
        response = self.client.put_object(Bucket=self.name, Key=key, Body=body, **headers.put_args())  # type: ignore[arg-type]
        return Stored(sha256, response["ETag"], size, headers, self._version(response))

    def copy(
        self,
        source: str,
        key: str,
        sha256: str,
        size: int,
        headers: ObjectHeaders,
        version: str | None = None,
    ) -> Stored:
        """Server-side copy of ``source`` (or of its ``version``) to ``key`` with ``headers``
        (no body is sent)."""
        copy_source = {"Bucket": self.name, "Key": source, **({"VersionId": version} if version else {})}
        args: dict[str, Any] = {"MetadataDirective": "REPLACE", **headers.put_args()}
        if size >= COPY_LIMIT:
            self.client.copy(copy_source, self.name, key, ExtraArgs=args, Config=self.transfer)  # type: ignore[arg-type]
            return self._stored(key, sha256, headers)
        response = self.client.copy_object(Bucket=self.name, Key=key, CopySource=copy_source, **args)  # type: ignore[arg-type]
        return Stored(sha256, response["CopyObjectResult"]["ETag"], size, headers, self._version(response))

    def keep_copy(self, source: str, key: str) -> None:
        """Copy an object as it is (body and headers): how old bodies are kept for rollback."""
        copy_source = {"Bucket": self.name, "Key": source}
        self.client.copy_object(Bucket=self.name, Key=key, CopySource=copy_source, MetadataDirective="COPY")  # type: ignore[arg-type]

    def head(self, key: str, version: str | None = None) -> tuple[int, str | None]:
        """(stored size, Content-Encoding) of ``key`` (or of its ``version``)."""
        extra = {"VersionId": version} if version else {}
        response = self.client.head_object(Bucket=self.name, Key=key, **extra)  # type: ignore[arg-type]
        return response["ContentLength"], response.get("ContentEncoding")

    def fetch(self, key: str, limit: int) -> Fetched:
        """GET ``key`` and hash what a browser would see (a gzip body decoded), chunk by chunk:
        memory stays bounded whatever the object's size, and a body that decodes to more than
        ``limit`` bytes stops there (a decompression bomb costs at most ``limit`` of work)."""
        response = self.client.get_object(Bucket=self.name, Key=key)
        headers = ObjectHeaders.from_response(response)
        body = response["Body"]
        try:
            sha = decoded_sha256(body.iter_chunks(CHUNK), headers.content_encoding == "gzip", limit)
        finally:
            body.close()
        return Fetched(sha, headers)

    def delete(self, keys: list[str], versions: Iterable[tuple[str, str]] = ()) -> list[str]:
        """Delete ``keys`` (on a versioned bucket: hide them behind a delete marker) and the
        ``versions`` named (key, version id: gone for good), in batches of 1,000; return the
        keys the server refused to delete."""
        items = [{"Key": k} for k in keys] + [{"Key": k, "VersionId": v} for k, v in versions]
        failed: list[str] = []
        for start in range(0, len(items), 1000):
            batch = items[start : start + 1000]
            response = self.client.delete_objects(Bucket=self.name, Delete={"Objects": batch, "Quiet": True})  # type: ignore[typeddict-item]
            failed += [str(e.get("Key")) for e in response.get("Errors", [])]
        return failed

    def _stored(self, key: str, sha256: str, headers: ObjectHeaders) -> Stored:
        response = self.client.head_object(Bucket=self.name, Key=key)
        return Stored(sha256, response["ETag"], response["ContentLength"], headers, self._version(response))

    def _version(self, response: Any) -> str | None:
        version = response.get("VersionId")
        return str(version) if self.keep_versions and version and version != "null" else None


_NO_CONTINUE = "sitedeploy-no-continue-for-small-bodies"


def no_continue_for_small(params: dict[str, Any], model: Any, **_: Any) -> None:
    """botocore event handler (after its own ``add_expect_header``): drop ``Expect:
    100-continue`` from a PutObject or UploadPart whose body is smaller than ``SMALL``."""
    if model.name not in ("PutObject", "UploadPart"):
        return
    size = determine_content_length(params.get("body"))
    if size is not None and size < SMALL:
        params["headers"].pop("Expect", None)


@contextmanager
def compressed(file: Path) -> Iterator[IO[bytes]]:
    """``file`` gzip-compressed, reproducibly (no name, no mtime), positioned at its end."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spool:
        with file.open("rb") as src, gzip.GzipFile(filename="", fileobj=spool, mode="wb", mtime=0) as gz:
            shutil.copyfileobj(src, gz, 1024 * 1024)
        yield spool


def decoded_sha256(chunks: Iterable[bytes], gzipped: bool, limit: int) -> str | None:
    """sha256 of the bytes in ``chunks``, gunzipped first if ``gzipped``; None if they are not
    one whole gzip stream or come to more than ``limit`` bytes."""
    digest = hashlib.sha256()
    inflate = zlib.decompressobj(wbits=31) if gzipped else None  # 31: gzip header and trailer
    try:
        return _digest(chunks, digest, inflate, limit)
    except zlib.error:  # not a gzip stream
        return None


def _digest(
    chunks: Iterable[bytes], digest: hashlib._Hash, inflate: zlib._Decompress | None, limit: int
) -> str | None:
    total = 0
    for chunk in chunks:
        pending = True
        while pending:
            if inflate is None:
                out, pending = chunk, False
            else:  # at most CHUNK bytes out per call: the rest waits in unconsumed_tail
                out = inflate.decompress(chunk, CHUNK)
                chunk = inflate.unconsumed_tail
                pending = bool(chunk) or len(out) == CHUNK
            total += len(out)
            if total > limit:
                return None
            digest.update(out)
    if inflate is not None and not (inflate.eof and not inflate.unused_data):
        return None  # truncated, or bytes after the stream: not what sitedeploy wrote
    return str(digest.hexdigest())


def write_touch(bucket: Bucket, touch: Touch, key: str, source_key: str, build_dir: Path | None) -> Stored:
    """Carry out one planned write. ``source_key`` is where a ``copy`` takes its body from."""
    if touch.kind == "put" and touch.sha256 == EMPTY:  # a redirect object: nothing to read
        return bucket.put_bytes(key, b"", touch.sha256, touch.headers)
    if touch.kind == "put":
        assert build_dir is not None
        return bucket.put_file(key, build_dir / touch.path, touch.sha256, touch.headers)
    if touch.kind == "meta":
        return bucket.copy(key, key, touch.sha256, touch.stored_size, touch.headers)
    headers, size = touch.headers, touch.stored_size
    if touch.source is None or touch.version:  # a kept body: its encoding is whatever was kept
        size, encoding = bucket.head(source_key, touch.version)
        headers = headers._replace(content_encoding=encoding)
    return bucket.copy(source_key, key, touch.sha256, size, headers, touch.version)
