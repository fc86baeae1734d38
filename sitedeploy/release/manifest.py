"""A manifest: every file of a release with its hash, size and content type.

The manifest is the unit every later stage compares: the plan diffs two of them, targets
store one per release, ``verify`` checks a target against the live one.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..sandbox import untrusted

CHUNK = 1024 * 1024
HASH_THREADS = min(8, (os.cpu_count() or 1) * 2)

# Types mimetypes gets wrong or does not know on some systems; docs sites ship all of these.
_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".xml": "application/xml",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".ico": "image/vnd.microsoft.icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    ".gz": "application/gzip",
    ".pdf": "application/pdf",
    ".wasm": "application/wasm",
}
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/manifest+json", "image/svg+xml")


def content_type(path: str) -> str:
    """The Content-Type a web server should send for ``path`` (``charset=utf-8`` on text)."""
    ext = os.path.splitext(path)[1].lower()
    kind = _TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"
    if kind.startswith(_TEXT_TYPES):
        return f"{kind}; charset=utf-8"
    return kind


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int
    content_type: str

    def to_json(self) -> list[object]:
        return [self.sha256, self.size, self.content_type]

    @classmethod
    def from_json(cls, value: list[object]) -> FileEntry:
        sha, size, kind = value
        return cls(str(sha), int(size), str(kind))  # type: ignore[call-overload]


class Manifest(Mapping[str, FileEntry]):
    """Immutable mapping of release-relative POSIX paths (``guide/index.html``) to entries."""

    def __init__(self, files: Mapping[str, FileEntry]) -> None:
        self._files = dict(sorted(files.items()))

    def __getitem__(self, path: str) -> FileEntry:
        return self._files[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"Manifest({len(self)} files, {self.total_bytes} bytes)"

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self._files.values())

    def to_json(self) -> bytes:
        body = {path: entry.to_json() for path, entry in self._files.items()}
        return json.dumps({"version": 1, "files": body}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """A manifest read back from a target: every path is checked before anyone uses it to
        delete or write a file, because whoever can write the target can write this file."""
        body = json.loads(data)
        return cls({safe_path(path): FileEntry.from_json(v) for path, v in body["files"].items()})


def safe_path(path: object) -> str:
    """``path`` if it is a plain relative POSIX path inside a release, else ValueError."""
    if not isinstance(path, str) or not path or path.startswith("/"):
        raise ValueError(f"unsafe path in a manifest: {path!r}")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts) or any(ord(c) < 32 or c == "\x7f" for c in path):
        raise ValueError(f"unsafe path in a manifest: {path!r}")
    return path


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_regular(path: Path) -> str:
    """``hash_file`` for a file found by :func:`walk`: never through a link put there since."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files(root: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Every regular file below ``root`` as (POSIX relative path, absolute path, its stat),
    sorted: a folder's files, then its subfolders in turn.

    Walked by descriptor through :mod:`sitedeploy.sandbox.untrusted`: ``root`` itself is opened with
    ``O_NOFOLLOW`` (a link in its place is refused, not followed), and a link, FIFO, socket
    or device anywhere below it stops the walk (:class:`~sitedeploy.sandbox.untrusted.UnsafeOutput`):
    a release holds regular files and folders only.
    """
    fd = untrusted.open_dir(root.parent, [root.name], str(root))
    try:
        for found in untrusted.walk(fd, str(root)):
            if not isinstance(found, str):
                yield found.rel, root / found.rel, found.stat
    finally:
        os.close(fd)


def walk(root: Path) -> Iterator[tuple[str, Path]]:
    """:func:`files` without the stats."""
    for rel, full, _ in files(root):
        yield rel, full


def scan(root: Path, listed: list[tuple[str, Path, os.stat_result]] | None = None) -> Manifest:
    """Hash every file below ``root`` (``listed``: what :func:`files` just gave for it).

    A few threads read and hash at once: hashlib releases the GIL, so on a site of 400 MB
    of images the disk and every core stay busy instead of one.
    """
    found = list(files(root)) if listed is None else listed
    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        hashes = pool.map(lambda item: _hash_regular(item[1]), found)
        return Manifest(
            {
                rel: FileEntry(sha, st.st_size, content_type(rel))
                for (rel, _, st), sha in zip(found, hashes, strict=True)
            }
        )
