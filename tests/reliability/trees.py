"""What a target serves, as {path: sha256}, and comparisons with recorded manifests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sitedeploy.release.manifest import Manifest
from sitedeploy.release.records import read_manifest


def tree_digests(root: Path) -> dict[str, str]:
    """Every regular file below ``root`` (symlinks followed at the top only)."""
    root = root.resolve()
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def digests(manifest: Manifest) -> dict[str, str]:
    return {path: entry.sha256 for path, entry in manifest.items()}


def bytes_digests(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(body).hexdigest() for path, body in files.items()}


def release_tree_matches(target: Any, release_id: str, folder: Path) -> bool:
    manifest = read_manifest(target, release_id)
    return manifest is not None and tree_digests(folder) == digests(manifest)


def which(served: dict[str, str], candidates: dict[str, dict[str, str]]) -> str | None:
    """The name of the candidate release ``served`` is exactly, or None (a mix, a torn file)."""
    return next((name for name, want in candidates.items() if want == served), None)
