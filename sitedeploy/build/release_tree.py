"""The release tree of a commit: every site's cached build hard-linked under its mount, plus
the deploy marker, in the state folder (``releases/<key>/``), ready for any target.

Folders appear complete or not at all (made under a dot-name, then renamed), and old entries
are evicted in a thread beside the build, so deleting a 5,000-page tree costs no wall time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..redirects.release import release_files
from ..release.manifest import FileEntry, Manifest
from ..source import Commit
from .mounts import SiteFiles, check_outputs

if TYPE_CHECKING:
    from .sites import SiteJob

MARKER = ".well-known/sitedeploy.json"
"""The deploy marker: which commit a release holds, served beside the sites."""
KEEP_BUILDS_PER_SITE = 3


@contextmanager
def evicting(folder: Path, keep: int, spare: str = "") -> Iterator[None]:
    """Remove all but the ``keep`` newest entries of ``folder`` (and ``spare``, an entry about
    to be used) while the block runs.

    Deleting a 5,000-page build takes seconds; done in a thread beside the MkDocs subprocess
    it costs no wall time. Entries being made are dot-named and never touched.
    """
    janitor = threading.Thread(target=_evict_old_builds, args=(folder, keep, spare), name="evict")
    janitor.start()
    try:
        yield
    finally:
        janitor.join()


def _evict_old_builds(folder: Path, keep: int, spare: str = "") -> None:
    if not folder.is_dir():
        return
    entries = sorted(
        (p for p in folder.iterdir() if not p.name.startswith(".") and p.name != spare),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def assemble(
    releases: Path, key: str, commit: Commit, outputs: list[tuple[SiteJob, Path, Manifest]]
) -> tuple[Path, Manifest]:
    """Hard-link each site's output under its mount, and add the deploy marker and the files
    generated from the sites' redirects and headers (:mod:`.redirects.release`)."""
    root = releases / key
    files: dict[str, FileEntry] = {}
    for site, _, manifest in outputs:
        prefix = site.config.mount.lstrip("/")
        files.update({prefix + path: entry for path, entry in manifest.items()})
    generated = release_files([out for _, out, _ in outputs], set(files))
    sites = [SiteFiles(s.config.name, s.config.mount, m) for s, _, m in outputs]
    check_outputs(sites, reserved=(MARKER, *generated))
    mounts = {site.config.name: site.config.mount for site, _, _ in outputs}
    facts = {"commit": commit.sha, "committed_at": commit.committed_iso, "sites": mounts}
    generated[MARKER] = json.dumps(facts).encode() + b"\n"
    for path, data in generated.items():
        kind = "application/json" if path.endswith(".json") else "text/plain"
        files[path] = FileEntry(hashlib.sha256(data).hexdigest(), len(data), kind)
    if root.exists() and not _linked_from(root, outputs, generated):
        shutil.rmtree(root)  # not made of the verified builds any more: assemble it again
    if not root.exists():  # old trees were evicted beside the build (build_release)
        _link_tree(releases, root, outputs, generated)
    return root, Manifest(files)


def _linked_from(
    root: Path, outputs: list[tuple[SiteJob, Path, Manifest]], generated: dict[str, bytes]
) -> bool:
    """Whether an existing release tree still is hard links to the (verified) site builds:
    the same inodes, so the same bytes, checked with a stat per file instead of a hash."""
    try:
        for site, out, manifest in outputs:
            base = root / site.config.mount.lstrip("/")
            for path in manifest:
                mine, cached = os.stat(base / path), os.stat(out / path)
                if (mine.st_dev, mine.st_ino) != (cached.st_dev, cached.st_ino):
                    return False
        return all((root / path).read_bytes() == data for path, data in generated.items())
    except OSError:
        return False


def _link_tree(
    releases: Path, root: Path, outputs: list[tuple[SiteJob, Path, Manifest]], generated: dict[str, bytes]
) -> None:
    releases.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".assemble-", dir=releases))
    for site, out, manifest in outputs:
        base = tmp / site.config.mount.lstrip("/")
        for path in manifest:
            dest = base / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(out / path, dest)
    for path, data in generated.items():  # reserved: no site wrote these names
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp / path).write_bytes(data)
    publish_dir(tmp, root)


def publish_dir(tmp: Path, final: Path) -> None:
    """Rename a finished folder into place. If another process finished the same (identical,
    since builds are reproducible) folder first, keep theirs."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
