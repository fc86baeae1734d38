"""The interface every target implements, and the small values it returns.

A target stores releases and a pointer to the live one. What it serves changes only through
:class:`sitedeploy.release.transaction.Transaction`, written once against this interface (no
other module calls its write methods: ``tests/security/test_code_rules.py`` checks it):

    reading     describe(), live_release(), list_releases(), verify(id, manifest) -> [Drift]
    publishing  prepare(record, manifest, plan, build_dir, progress) -> Prepared
                Prepared.switch(entry)    make it the live one, atomically for readers
                Prepared.discard()        undo what prepare left (failed before the switch)
    upkeep      remove_release(id)        drop an old release (never the live one)
                repair(id, manifest, build_dir, drift)   make the live files match again
                retire()                  delete a whole version's or preview's line

plus the :class:`~sitedeploy.release.records.MetaStore` calls for small state files, written
under the target's lock: records, history and manifests by the transaction, ``control.json``
by :func:`sitedeploy.release.control.update_control`, ``lock.json`` by
:mod:`sitedeploy.release.lock`. A target is a context manager: leaving the block closes its
connections. ``local``, ``ssh`` and ``s3`` implement it for real; ``memory`` implements it in
a dict for tests and ``DryRun`` wraps any of them so that nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from ..progress import Progress
from ..release.diff import Plan
from ..release.manifest import Manifest
from ..release.records import HistoryEntry, MetaStore, ReleaseRecord


@dataclass
class TransferStats:
    files_sent: int = 0
    bytes_sent: int = 0
    files_linked: int = 0
    """Files reused from an earlier release (hard link, or server-side copy)."""
    requests: int = 0

    def summary(self) -> str:
        return f"sent {self.files_sent} files ({self.bytes_sent} bytes), reused {self.files_linked}"


@dataclass
class Drift:
    """How the files a target serves for a release differ from that release's manifest."""

    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    where: str = ""
    """Which folder, host or bucket, for messages."""
    host: str = ""
    """The host this drift was found on (SSH targets); empty for single-place targets."""

    @property
    def clean(self) -> bool:
        return not (self.missing or self.changed or self.extra)

    def summary(self) -> str:
        if self.clean:
            return "no drift"
        parts = [
            f"{len(v)} {k}"
            for k, v in (("missing", self.missing), ("changed", self.changed), ("extra", self.extra))
            if v
        ]
        return ", ".join(parts)


class Prepared(Protocol):
    """A release made complete on a target by ``prepare``; readers do not see it yet."""

    stats: TransferStats

    def switch(self, entry: HistoryEntry) -> bool:
        """Make the release live, atomically for readers. Called once, under the lock.

        True when the target recorded ``entry`` in history in the same atomic write as the
        switch (S3, whose commit point is one state object); False when the caller appends it.
        """

    def discard(self) -> bool:
        """Remove what ``prepare`` added and nothing else; the live release is untouched.

        True when nothing of the release can be visible any more, so its record may go too;
        False when it must stay (a retained release, or a switch that failed midway on S3,
        whose record is the evidence the next run recovers from).
        """


class Target(MetaStore, Protocol):
    name: str

    def describe(self) -> str:
        """Where it is, for people: ``/srv/www/public``, ``s3://bucket/prefix``."""

    def live_release(self) -> str | None:
        """The id of the release readers are served now, or None before the first deploy."""

    def list_releases(self) -> list[str]:
        """Ids of the complete releases kept on the target, oldest first."""

    def prepare(
        self,
        record: ReleaseRecord,
        manifest: Manifest,
        plan: Plan,
        build_dir: Path | None,
        progress: Progress,
    ) -> Prepared:
        """Make ``record``'s release complete on the target without changing what readers see.

        ``plan`` is ``diff(manifest, live manifest)``: unchanged files may be reused from the
        live release. ``build_dir`` holds the release's files; None means the release is
        already on the target (a rollback to a retained release). Safe to call again after a
        crash.
        """

    def remove_release(self, release_id: str) -> None:
        """Delete a release that is not live; its record is removed by the caller."""

    def retire(self) -> None:
        """Delete the whole target: what it serves, every release and its state, the lock
        last. Only for a version's or preview's line that the family root no longer serves,
        run by the transaction's ``retire`` mode under the root's lock and the line's own.
        Safe to call again after a crash (what is gone stays gone)."""

    def verify(self, release_id: str, manifest: Manifest) -> list[Drift]:
        """Compare a release's files with ``manifest``: one Drift per host (one for a bucket)."""

    def repair(self, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]) -> None:
        """Make the release's files match ``manifest`` again, taking content from ``build_dir``."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close connections and pools."""


class SwitchesFolders(Protocol):
    """A target whose releases are folders and whose live one is a pointer (local, SSH)."""

    def live_release(self) -> str | None: ...

    def switch_to(self, release_id: str) -> None: ...

    def remove_release(self, release_id: str) -> None: ...


@dataclass
class PreparedFolder:
    """A release folder complete on a folder target, not yet pointed at."""

    target: SwitchesFolders
    release_id: str
    created: bool
    """This prepare made the folder (a retained or already staged one is never discarded)."""
    stats: TransferStats = field(default_factory=TransferStats)

    def switch(self, entry: HistoryEntry) -> bool:
        self.target.switch_to(self.release_id)
        return False  # the transaction appends the history entry

    def discard(self) -> bool:
        if not self.created or self.release_id == self.target.live_release():
            return False
        self.target.remove_release(self.release_id)  # refuses while any host still serves it
        return True


@runtime_checkable
class MultiHost(Protocol):
    """A target made of several servers (SSH): status reports each one's live release."""

    def live_by_host(self) -> dict[str, str | None]: ...


class Closing:
    """Mixin: a target is a context manager that calls ``close()`` on exit."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
