"""One file holding an incremental MkDocs build's cache: an index and its chunks.

Layout of ``pages.pack``::

    b"sitedeploy-mkdocs-cache 3\\n"      magic line with the format number
    chunk, chunk, …                       each the JSON of one cached piece, named by its key
    index                                 JSON: the build's state and {key: [offset, length]}
    trailer (24 bytes)                    index offset, index length (8 bytes each), CRC-32 of
                                          everything before the trailer, b"SDPK"

Why one file: 5,000 small JSON files for a build of 5,000 pages (and deleting the previous
5,000) cost more than encoding them. A build writes a new pack beside the
old one — chunks it made, and chunks of the old pack it still uses copied as raw bytes, never
decoded and encoded again — and renames it over the old one, so a reader sees a whole pack or
the previous one. The CRC finds a pack that a disk error or a crash of the file system left
short or damaged; any unreadable pack is reported as such and the build runs in full.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

FORMAT = 3
MAGIC = b"sitedeploy-mkdocs-cache "
HEADER = MAGIC + str(FORMAT).encode() + b"\n"
_TRAILER = struct.Struct(">QQI4s")
_END = b"SDPK"
_BUFFER = 1 << 20


# Chunks are trees of lists, dicts and strings made by this builder: no cycles to check for.
_ENCODE = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


class PackError(Exception):
    """The pack cannot be used; the message says why, for the build's reason."""


class PackReader:
    """A pack read whole into memory: its index, and its chunks by key."""

    def __init__(self, path: Path) -> None:
        try:
            self.data = memoryview(path.read_bytes())
        except FileNotFoundError:
            raise
        except OSError as e:
            raise PackError(f"cannot read it ({e.strerror})") from e
        self.index = _parse(self.data)
        chunks = self.index.get("chunks")
        if not isinstance(chunks, dict):
            raise PackError("its index has no chunk table")
        self.chunks: dict[str, list[int]] = chunks

    def raw(self, key: str) -> memoryview | None:
        where = self.chunks.get(key)
        if where is None:
            return None
        offset, length = where
        return self.data[offset : offset + length]

    def load(self, key: str) -> Any:
        raw = self.raw(key)
        return None if raw is None else json.loads(bytes(raw))


def _parse(data: memoryview) -> dict[str, Any]:
    if data[: len(MAGIC)] != MAGIC:
        raise PackError("it is not a sitedeploy cache pack")
    if data[: len(HEADER)] != HEADER:
        line = bytes(data[len(MAGIC) : len(MAGIC) + 8]).split(b"\n")[0].decode("ascii", "replace")
        raise PackError(f"it is in format {line}, this builder reads format {FORMAT}")
    if len(data) < len(HEADER) + _TRAILER.size:
        raise PackError("it is truncated")
    offset, length, crc, end = _TRAILER.unpack(data[-_TRAILER.size :])
    body = len(data) - _TRAILER.size
    if end != _END or offset + length != body or offset < len(HEADER):
        raise PackError("it is truncated or damaged (no valid trailer)")
    if zlib.crc32(data[:body]) != crc:
        raise PackError("it is damaged (checksum mismatch)")
    try:
        index = json.loads(bytes(data[offset:body]))
    except ValueError as e:
        raise PackError(f"its index is not valid JSON ({e})") from e
    if not isinstance(index, dict):
        raise PackError("its index is not a JSON object")
    for key, where in index.get("chunks", {}).items():
        if not (isinstance(where, list) and len(where) == 2 and where[0] >= len(HEADER)):
            raise PackError(f"chunk {key!r} has no valid place")
        if where[0] + where[1] > offset:
            raise PackError(f"chunk {key!r} runs past the chunk area")
    return index


class PackWriter:
    """Writes a new pack under a temporary name; :meth:`commit` renames it into place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.file: BinaryIO = self.tmp.open("wb", buffering=_BUFFER)
        self.chunks: dict[str, list[int]] = {}
        self.offset = 0
        self.crc = 0
        self._write(HEADER)

    def _write(self, data: bytes | memoryview) -> None:
        self.file.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.offset += len(data)

    def has(self, key: str) -> bool:
        return key in self.chunks

    def add(self, key: str, data: bytes | memoryview) -> None:
        """Add a chunk (once per key: keys name their content)."""
        if key not in self.chunks:
            self.chunks[key] = [self.offset, len(data)]
            self._write(data)

    def add_json(self, key: str, value: Any) -> None:
        if key not in self.chunks:
            self.add(key, _ENCODE(value).encode())

    def commit(self, index: dict[str, Any]) -> None:
        """Write the index and trailer, then put the pack in place (whole, by rename)."""
        start = self.offset
        self._write(json.dumps({**index, "chunks": self.chunks}, separators=(",", ":")).encode())
        length = self.offset - start
        self.file.write(_TRAILER.pack(start, length, self.crc, _END))
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)
