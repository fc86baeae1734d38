"""The one interface every target implements, and the small values it returns.

A target stores releases and a pointer to the live one. The deploy and rollback logic
(``sitedeploy.commands``) is written once against this interface:

    stage(release)      make the release complete on the target, not yet visible
    activate(release)   make it the live one, atomically for readers
    remove_release(id)  drop an old release (never the live one)

plus the :class:`~sitedeploy.release.records.MetaStore` calls for small state files. ``local``, ``ssh``
and ``s3`` implement it; tests add in-memory fakes of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..progress import Progress
from ..release.diff import Plan
from ..release.manifest import Manifest
from ..release.records import MetaStore, ReleaseRecord


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
    """How a target's live files differ from the live release's manifest."""

    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    where: str = ""
    """Which host or bucket, for messages."""

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


class Target(MetaStore, Protocol):
    name: str

    def describe(self) -> str:
        """Where it is, for people: ``/srv/www/public``, ``s3://bucket/prefix``."""

    def live_release(self) -> str | None:
        """The id of the release readers are served now, or None before the first deploy."""

    def list_releases(self) -> list[str]:
        """Ids of the complete releases kept on the target, oldest first."""

    def stage(
        self,
        record: ReleaseRecord,
        build_dir: Path,
        manifest: Manifest,
        plan: Plan,
        progress: Progress,
    ) -> TransferStats:
        """Put the release on the target, complete, without changing what readers see.

        ``plan`` is ``diff(manifest, live manifest)``: unchanged files may be reused from the
        live release instead of sent again. Safe to call again after a crash.
        """

    def activate(self, record: ReleaseRecord, manifest: Manifest, previous: Manifest | None) -> None:
        """Make a staged (or retained) release live, atomically for readers."""

    def remove_release(self, release_id: str) -> None:
        """Delete a release that is not live; its record is removed by the caller."""

    def verify(self, release_id: str, manifest: Manifest) -> list[Drift]:
        """Compare what is served with ``manifest``: one Drift per host (or one for a bucket)."""

    def repair(self, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]) -> None:
        """Make the live files match ``manifest`` again, taking content from ``build_dir``."""

    def close(self) -> None: ...


@runtime_checkable
class MultiHost(Protocol):
    """A target made of several servers (SSH): status reports each one's live release."""

    def live_by_host(self) -> dict[str, str | None]: ...
