"""A folder on this machine: ``releases/<id>/`` plus a ``current`` symlink.

    <path>/releases/<id>/     one complete release per folder, never modified once live
    <path>/current            -> releases/<id>, swapped atomically (temp link + rename)
    <path>/.sitedeploy/       state files (see sitedeploy.release.records)

Crash windows: a release is built in ``releases/.<id>.tmp`` and renamed into place only when
complete, so a crash leaves at most a ``.tmp`` folder that the next stage removes. ``current``
changes in one ``rename(2)``, so a web server serving it sees the old release or the new one.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TargetError
from ..progress import Progress
from ..release.diff import Plan
from ..release.manifest import Manifest, hash_file, walk
from ..release.records import HistoryEntry, ReleaseRecord
from ..statedir import ignored_folder
from .base import Closing, Drift, TransferStats


@dataclass
class LocalPrepared:
    target: LocalTarget
    release_id: str
    created: bool
    """This prepare wrote the folder (a retained or already staged one is never discarded)."""
    stats: TransferStats = field(default_factory=TransferStats)

    def switch(self, entry: HistoryEntry) -> bool:
        self.target.switch_to(self.release_id)
        return False

    def discard(self) -> bool:
        if not self.created or self.release_id == self.target.live_release():
            return False
        self.target.remove_release(self.release_id)
        return True


class LocalTarget(Closing):
    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self.meta_dir = root / ".sitedeploy"
        self.releases_dir = root / "releases"
        self.current = root / "current"

    def describe(self) -> str:
        return str(self.root)

    # --- MetaStore ------------------------------------------------------------------------

    def read_meta(self, name: str) -> bytes | None:
        with self._errors(f"read {name}"):
            try:
                return (self.meta_dir / name).read_bytes()
            except FileNotFoundError:
                return None

    def write_meta(self, name: str, data: bytes) -> None:
        with self._errors(f"write {name}"):
            atomic_write(self.meta_dir / name, data)

    def create_meta(self, name: str, data: bytes) -> bool:
        path = self.meta_dir / name
        with self._errors(f"create {name}"):
            tmp = _temp_name(path)
            atomic_write(tmp, data)
            try:  # link(2) fails if the name exists: an exclusive create of a complete file
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            finally:
                tmp.unlink()

    def delete_meta(self, name: str) -> None:
        with self._errors(f"delete {name}"):
            (self.meta_dir / name).unlink(missing_ok=True)

    # --- releases -------------------------------------------------------------------------

    def live_release(self) -> str | None:
        try:
            return Path(os.readlink(self.current)).name
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TargetError(
                f"target '{self.name}': {self.current} is not a symlink ({exc.strerror})"
            ) from None

    def list_releases(self) -> list[str]:
        if not self.releases_dir.is_dir():
            return []
        return sorted(p.name for p in self.releases_dir.iterdir() if not p.name.startswith("."))

    def prepare(
        self,
        record: ReleaseRecord,
        manifest: Manifest,
        plan: Plan,
        build_dir: Path | None,
        progress: Progress,
    ) -> LocalPrepared:
        final = self.releases_dir / record.id
        if build_dir is None or final.is_dir():  # retained, or staged by a run that died before the switch
            if not final.is_dir():
                raise TargetError(f"target '{self.name}': release {record.id} is not on the target any more")
            return LocalPrepared(self, record.id, created=False)
        with self._errors("stage a release"):
            self._remove_partial_releases()
            tmp = self.releases_dir / f".{record.id}.tmp"
            tmp.mkdir(parents=True)
            stats = self._fill(tmp, build_dir, manifest, plan, progress)
            os.rename(tmp, final)
        return LocalPrepared(self, record.id, created=True, stats=stats)

    def _fill(
        self, dest: Path, build_dir: Path, manifest: Manifest, plan: Plan, progress: Progress
    ) -> TransferStats:
        live = self.live_release()
        live_dir = self.releases_dir / live if live else None
        reuse = set(plan.unchanged) if live_dir else set()
        stats = TransferStats()
        made: set[Path] = set()
        with progress.bar("writing release", len(manifest)) as advance:
            for path, entry in manifest.items():
                target = dest / path
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                if live_dir and path in reuse and _link(live_dir / path, target):
                    stats.files_linked += 1
                else:
                    shutil.copyfile(build_dir / path, target)
                    stats.files_sent += 1
                    stats.bytes_sent += entry.size
                advance(1)
        return stats

    def _remove_partial_releases(self) -> None:
        ignored_folder(self.root)  # never committed by accident when it sits in the repo
        self.releases_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.releases_dir.glob(".*.tmp"):
            shutil.rmtree(leftover)

    def switch_to(self, release_id: str) -> None:
        if not (self.releases_dir / release_id).is_dir():
            raise TargetError(f"target '{self.name}': release {release_id} is not on the target any more")
        with self._errors("switch current"):
            tmp = _temp_name(self.current)
            tmp.unlink(missing_ok=True)
            os.symlink(Path("releases") / release_id, tmp)
            os.replace(tmp, self.current)  # the atomic switch: rename(2) over the old link

    def remove_release(self, release_id: str) -> None:
        if release_id == self.live_release():
            raise TargetError(f"target '{self.name}': refusing to remove the live release {release_id}")
        with self._errors(f"remove release {release_id}"):
            shutil.rmtree(self.releases_dir / release_id, ignore_errors=False)

    # --- drift ----------------------------------------------------------------------------

    def verify(self, release_id: str, manifest: Manifest) -> list[Drift]:
        root = self.releases_dir / release_id
        drift = Drift(where=str(root))
        seen = set()
        for rel, full in walk(root):
            seen.add(rel)
            entry = manifest.get(rel)
            if entry is None:
                drift.extra.append(rel)
            elif full.stat().st_size != entry.size or hash_file(full) != entry.sha256:
                drift.changed.append(rel)
        drift.missing = [p for p in manifest if p not in seen]
        return [drift]

    def repair(self, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]) -> None:
        root = self.releases_dir / release_id
        with self._errors("repair the live release"):
            for d in drift:
                for rel in d.missing + d.changed:
                    dest = root / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    tmp = _temp_name(dest)
                    shutil.copyfile(build_dir / rel, tmp)
                    os.replace(tmp, dest)  # never rewrite in place: other releases share the inode
                for rel in d.extra:
                    (root / rel).unlink(missing_ok=True)

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            where = exc.filename or self.root
            hint = (
                "check the folder's owner and permissions"
                if exc.errno in (errno.EACCES, errno.EPERM)
                else ("free some space" if exc.errno == errno.ENOSPC else "check the path")
            )
            raise TargetError(
                f"target '{self.name}': cannot {operation} at {where} ({exc.strerror}); {hint}",
                retryable=exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS),
            ) from exc


def _link(source: Path, dest: Path) -> bool:
    """Hard-link ``source`` to ``dest``; False when the filesystem refuses (then copy)."""
    try:
        os.link(source, dest)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP):
            return False
        raise


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary name in the same folder, fsync, rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
