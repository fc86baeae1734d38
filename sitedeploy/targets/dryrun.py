"""A wrapper that lets a transaction run in full against a target without writing to it.

``--dry-run`` is not a separate code path: the same transaction (lock, plan, checks, prepare,
record, switch, history, prune) runs over :class:`DryRun`, so it refuses exactly what a real
run refuses (a held lock, ``max_delete``, an empty build, a pinned target) — bep/s3deploy's
``noUpdateStore`` is the model. Reads go to the real target; writes land in an overlay in
memory that later reads see, so the transaction's own bookkeeping (taking the lock, reading
the record it just wrote) behaves as in a real run. Nothing is ever sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..progress import Progress
from ..release.diff import Plan
from ..release.manifest import Manifest
from ..release.records import HistoryEntry, ReleaseRecord
from .base import Closing, Drift, Target, TransferStats

_DELETED = b""  # overlay value for a file deleted in the dry run


@dataclass
class DryPrepared:
    target: DryRun
    release_id: str
    stats: TransferStats = field(default_factory=TransferStats)

    def switch(self, entry: HistoryEntry) -> bool:
        self.target.would_be_live = self.release_id
        return False

    def discard(self) -> bool:
        return True


class DryRun(Closing):
    def __init__(self, inner: Target) -> None:
        self.inner = inner
        self.name = inner.name
        self.overlay: dict[str, bytes] = {}
        self.would_be_live: str | None = None
        self.staged: set[str] = set()
        self.retired = False
        self.dry_run = True

    def describe(self) -> str:
        return self.inner.describe()

    def read_meta(self, name: str) -> bytes | None:
        if name in self.overlay:
            return self.overlay[name] or None
        return self.inner.read_meta(name)

    def write_meta(self, name: str, data: bytes) -> None:
        self.overlay[name] = data

    def create_meta(self, name: str, data: bytes) -> bool:
        if self.read_meta(name) is not None:
            return False
        self.overlay[name] = data
        return True

    def delete_meta(self, name: str) -> None:
        self.overlay[name] = _DELETED

    def live_release(self) -> str | None:
        return self.would_be_live or self.inner.live_release()

    def list_releases(self) -> list[str]:
        return sorted({*self.inner.list_releases(), *self.staged})

    def prepare(
        self,
        record: ReleaseRecord,
        manifest: Manifest,
        plan: Plan,
        build_dir: Path | None,
        progress: Progress,
    ) -> DryPrepared:
        self.staged.add(record.id)
        sent = [u.path for u in plan.uploads]
        return DryPrepared(self, record.id, TransferStats(len(sent), sum(manifest[p].size for p in sent)))

    def remove_release(self, release_id: str) -> None:
        pass

    def retire(self) -> None:
        self.retired = True  # what a real run would delete is told by the transaction's plan

    def verify(self, release_id: str, manifest: Manifest) -> list[Drift]:
        return self.inner.verify(release_id, manifest)

    def repair(self, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]) -> None:
        pass
