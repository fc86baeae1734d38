"""A folder on this machine: ``releases/<id>/`` plus a ``current`` symlink.

    <path>/releases/<id>/     one complete release per folder, never modified once live
    <path>/current            -> releases/<id>, swapped atomically (temp link + rename)
    <path>/.sitedeploy/       state files (see sitedeploy.release.records)

Crash windows: a release is built in ``releases/.<id>.tmp`` and renamed into place only when
complete, so a crash leaves at most a ``.tmp`` folder that the next stage removes. ``current``
changes in one ``rename(2)``, so a web server serving it sees the old release or the new one.

Retained releases stay as recorded. Unchanged files are hard links shared between releases,
so one write into a live file would change every release holding that inode. Every file of a
release is made read-only (``a-w``) as it is staged, so an editor or ``echo >>`` run by anyone
but root is refused; :meth:`LocalTarget.repair` replaces a damaged file by rename in the live
release *and* in every retained release sharing its inode (they recorded the same bytes); and
the transaction verifies a retained release against its manifest before switching to it.
A release left staged by a dead run is verified before it is reused, and staged again if not.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ..config.statedir import ignored_folder
from ..errors import LockHeld, TargetError
from ..progress import Progress
from ..release.diff import Plan
from ..release.lock import LOCK, fence, token_of
from ..release.manifest import Manifest, hash_file
from ..release.records import ReleaseRecord, read_manifest
from .base import Closing, Drift, PreparedFolder, TransferStats

GUARD = "lock.guard"


def _flock(target: str, fd: int) -> None:
    """Wait a little for the guard (held for a read and a rename only); never hang on a holder
    that was stopped inside it."""
    deadline = time.monotonic() + 10
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockHeld(f"target '{target}': the lock's guard stayed taken 10 s; try again") from None
            time.sleep(0.02)


class LocalTarget(Closing):
    reload_command: tuple[str, ...] = ()
    """Run after a switch (``reload_command``): nginx then reads the new release's rules."""

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
        with self._guard(name), self._errors(f"write {name}"):
            atomic_write(self.meta_dir / name, data)

    def create_meta(self, name: str, data: bytes) -> bool:
        path = self.meta_dir / name
        with self._guard(name), self._errors(f"create {name}"):
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
        with self._guard(name), self._errors(f"delete {name}"):
            (self.meta_dir / name).unlink(missing_ok=True)

    def renew_lock(self, token: str, data: bytes) -> bool:
        """Replace the lock with ``data`` only while it holds ``token``, under the guard."""
        with self._guard(), self._errors("renew the lock"):
            if token_of(self.read_meta(LOCK)) != token:
                return False
            atomic_write(self.meta_dir / LOCK, data)  # not write_meta: the guard is held here
            return True

    @contextmanager
    def _guard(self, name: str = LOCK) -> Iterator[None]:
        """The flock that every change of the lock and the switch hold, so that the switch's
        check of the lease and its rename are one step for a run taking the lock over."""
        if name != LOCK:
            yield
            return
        with self._errors("take the lock's guard"):
            self.meta_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.meta_dir / GUARD, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _flock(self.name, fd)
            yield
        finally:
            os.close(fd)

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
    ) -> PreparedFolder:
        final = self.releases_dir / record.id
        if build_dir is None or final.is_dir():  # retained, or staged by a run that died before the switch
            if not final.is_dir():
                raise TargetError(f"target '{self.name}': release {record.id} is not on the target any more")
            if build_dir is None or self._intact(record.id, manifest):
                return PreparedFolder(self, record.id, created=False)
            self.remove_release(record.id)  # staged by a dead run and changed since: stage it again
        with self._errors("stage a release"):
            self._remove_partial_releases()
            tmp = self.releases_dir / f".{record.id}.tmp"
            tmp.mkdir(parents=True)
            stats = self._fill(tmp, build_dir, manifest, plan, progress)
            os.rename(tmp, final)
        return PreparedFolder(self, record.id, created=True, stats=stats)

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
                    make_read_only(target)  # a release staged before files were read-only
                else:
                    shutil.copyfile(build_dir / path, target)
                    make_read_only(target)
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
        with self._guard(), self._errors("switch current"):
            fence(self.name, self.read_meta(LOCK))  # under the flock a takeover needs too
            tmp = _temp_name(self.current)
            tmp.unlink(missing_ok=True)
            os.symlink(Path("releases") / release_id, tmp)
            os.replace(tmp, self.current)  # the atomic switch: rename(2) over the old link

    def reload_server(self) -> None:
        if self.reload_command:
            from ..redirects.reload import run_here

            run_here(self.name, self.reload_command)

    def remove_release(self, release_id: str) -> None:
        if release_id == self.live_release():
            raise TargetError(f"target '{self.name}': refusing to remove the live release {release_id}")
        with self._errors(f"remove release {release_id}"):
            shutil.rmtree(self.releases_dir / release_id, ignore_errors=False)

    def retire(self) -> None:
        """Served folder and releases first, the state (lock included) last, then the folder."""
        with self._errors("retire the line"):
            if not self.root.exists():
                return
            for child in self.root.iterdir():
                if child.name != ".sitedeploy":
                    _remove_any(child)
            shutil.rmtree(self.root)

    # --- drift ----------------------------------------------------------------------------

    def verify(self, release_id: str, manifest: Manifest) -> list[Drift]:
        """Hash every file whose size matches (a few threads: hashlib releases the GIL)."""
        root = self.releases_dir / release_id
        drift = Drift(where=str(root))
        same_size: list[tuple[str, Path]] = []
        seen = set()
        for rel, full, size in _files(root):
            seen.add(rel)
            entry = manifest.get(rel)
            if entry is None:
                drift.extra.append(rel)
            elif size != entry.size:
                drift.changed.append(rel)
            else:
                same_size.append((rel, full))
        with ThreadPoolExecutor(4) as pool:
            digests = pool.map(lambda item: hash_file(item[1]), same_size)
            hashed = zip(same_size, digests, strict=True)
            drift.changed += [rel for (rel, _), d in hashed if d != manifest[rel].sha256]
        drift.changed.sort()
        drift.missing = [p for p in manifest if p not in seen]
        return [drift]

    def _intact(self, release_id: str, manifest: Manifest) -> bool:
        return all(d.clean for d in self.verify(release_id, manifest))

    def repair(self, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]) -> None:
        """Put back the manifest's files by rename, never writing into a (shared) inode.

        A file changed in place changed every release that shares its inode; those releases
        recorded the same bytes at the same path (that is why they were linked), so the
        rebuilt file replaces the damaged inode in each of them too.
        """
        root = self.releases_dir / release_id
        manifests: dict[str, Manifest | None] = {}
        with self._errors("repair the live release"):
            for d in drift:
                for rel in d.missing + d.changed:
                    if hash_file(build_dir / rel) != manifest[rel].sha256:
                        raise TargetError(
                            f"target '{self.name}': the rebuilt {rel} differs from the release; not repaired"
                        )
                    sharing = self._sharing_inode(root / rel, rel, release_id, manifest, manifests)
                    self._replace(root / rel, build_dir / rel, sharing)
                for rel in d.extra:
                    (root / rel).unlink(missing_ok=True)

    def _sharing_inode(
        self,
        damaged: Path,
        rel: str,
        release_id: str,
        manifest: Manifest,
        manifests: dict[str, Manifest | None],
    ) -> list[Path]:
        """The same path in other releases, same inode as ``damaged``, recorded with its bytes."""
        try:
            inode = damaged.stat()
        except FileNotFoundError:
            return []
        found = []
        for rid in self.list_releases():
            other = self.releases_dir / rid / rel
            try:
                same = rid != release_id and os.path.samestat(other.stat(), inode)
            except FileNotFoundError:
                continue
            if not same:
                continue
            if rid not in manifests:
                manifests[rid] = read_manifest(self, rid)
            recorded = manifests[rid]
            if recorded is not None and recorded.get(rel) == manifest[rel]:
                found.append(other)
        return found

    @staticmethod
    def _replace(dest: Path, source: Path, sharing: list[Path]) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_name(dest)
        shutil.copyfile(source, tmp)
        make_read_only(tmp)
        for other in sharing:  # each gets a link to the good copy, renamed over the bad one
            link = _temp_name(other)
            link.unlink(missing_ok=True)
            os.link(tmp, link)
            os.replace(link, other)
        os.replace(tmp, dest)  # never rewrite in place: other releases share the inode

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


def _files(root: Path, prefix: str = "") -> Iterator[tuple[str, Path, int]]:
    """(relative path, path, size) of every regular file below ``root``, one ``lstat`` each
    (``walk`` costs three: verifying 5,000 files is bound by them, not by hashing)."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return
    for entry in entries:
        rel = f"{prefix}{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            yield from _files(Path(entry.path), f"{rel}/")
        elif entry.is_file(follow_symlinks=False):
            yield rel, Path(entry.path), entry.stat(follow_symlinks=False).st_size


def make_read_only(path: Path) -> None:
    """``chmod a-w``: a release's files are never written again (hard links share them)."""
    mode = path.stat().st_mode
    if mode & 0o222:
        os.chmod(path, stat.S_IMODE(mode) & ~0o222)


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


def _remove_any(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
