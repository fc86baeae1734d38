"""A target that lives in a dict: the release logic's test double (as httpx's MockTransport).

It implements the whole :class:`~sitedeploy.targets.base.Target` protocol with the same rules
as the real targets (a prepared release is invisible until ``switch``; the live release cannot
be removed; an exclusive create fails on an existing name), so the transaction, deploy and
rollback logic can be tested in milliseconds without git servers, sshd or an S3 API.

``fail_at`` injects a failure at every step whose name starts with an armed one: ``prepare``,
``switch``, ``discard``, ``remove_release``, ``write_meta``/``create_meta``/``delete_meta`` (any
file), ``write_meta:history.json`` (one file) or ``write_meta:manifests`` (a folder). The failure
is a retryable :class:`TargetError` unless ``failure`` says otherwise. Every write is appended
to ``log`` for assertions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TargetError
from ..progress import Progress
from ..release.diff import Plan
from ..release.manifest import Manifest, hash_file
from ..release.records import HistoryEntry, ReleaseRecord
from .base import Closing, Drift, TransferStats

Files = dict[str, bytes]


@dataclass
class MemoryPrepared:
    target: MemoryTarget
    release_id: str
    created: bool
    stats: TransferStats = field(default_factory=TransferStats)

    def switch(self, entry: HistoryEntry) -> bool:
        self.target.step("switch")
        if self.release_id not in self.target.releases:
            raise TargetError(f"target '{self.target.name}': release {self.release_id} is gone")
        self.target.live = self.release_id
        self.target.log.append(f"switch {self.release_id}")
        return False

    def discard(self) -> bool:
        self.target.step("discard")
        if not self.created or self.release_id == self.target.live:
            return False
        del self.target.releases[self.release_id]
        self.target.log.append(f"discard {self.release_id}")
        return True


@dataclass
class MemoryTarget(Closing):
    name: str = "memory"
    releases: dict[str, Files] = field(default_factory=dict)
    live: str | None = None
    meta: Files = field(default_factory=dict)
    fail_at: set[str] = field(default_factory=set)
    failure: Callable[[str], BaseException] | None = None
    log: list[str] = field(default_factory=list)

    def step(self, name: str) -> None:
        """Raise the injected failure if ``name`` starts with an armed step."""
        if any(name.startswith(armed) for armed in self.fail_at):
            if self.failure is not None:
                raise self.failure(name)
            raise TargetError(f"target '{self.name}': injected failure at {name}", retryable=True)

    def describe(self) -> str:
        return f"memory://{self.name}"

    # --- MetaStore ------------------------------------------------------------------------

    def read_meta(self, name: str) -> bytes | None:
        return self.meta.get(name)

    def write_meta(self, name: str, data: bytes) -> None:
        self.step(f"write_meta:{name}")
        self.meta[name] = data
        self.log.append(f"write {name}")

    def create_meta(self, name: str, data: bytes) -> bool:
        self.step(f"create_meta:{name}")
        if name in self.meta:
            return False
        self.meta[name] = data
        return True

    def delete_meta(self, name: str) -> None:
        self.step(f"delete_meta:{name}")
        self.meta.pop(name, None)

    # --- releases -------------------------------------------------------------------------

    def live_release(self) -> str | None:
        return self.live

    def list_releases(self) -> list[str]:
        return sorted(self.releases)

    def prepare(
        self,
        record: ReleaseRecord,
        manifest: Manifest,
        plan: Plan,
        build_dir: Path | None,
        progress: Progress,
    ) -> MemoryPrepared:
        self.step("prepare")
        if build_dir is None or record.id in self.releases:
            if record.id not in self.releases:
                raise TargetError(f"target '{self.name}': release {record.id} is not on the target any more")
            return MemoryPrepared(self, record.id, created=False)
        files = {path: (build_dir / path).read_bytes() for path in manifest}
        self.releases[record.id] = files
        self.log.append(f"prepare {record.id}")
        sent = [u.path for u in plan.uploads]
        stats = TransferStats(len(sent), sum(manifest[p].size for p in sent), len(plan.unchanged))
        return MemoryPrepared(self, record.id, created=True, stats=stats)

    def remove_release(self, release_id: str) -> None:
        self.step("remove_release")
        if release_id == self.live:
            raise TargetError(f"target '{self.name}': refusing to remove the live release {release_id}")
        self.releases.pop(release_id, None)
        self.log.append(f"remove {release_id}")

    def retire(self) -> None:
        self.step("retire")
        self.releases.clear()
        self.live = None
        self.meta.clear()
        self.log.append("retire")

    def verify(self, release_id: str, manifest: Manifest) -> list[Drift]:
        files = self.releases.get(release_id, {})
        drift = Drift(where=self.describe())
        drift.missing = sorted(p for p in manifest if p not in files)
        drift.extra = sorted(p for p in files if p not in manifest)
        drift.changed = sorted(p for p in files if p in manifest and _sha(files[p]) != manifest[p].sha256)
        return [drift]

    def repair(self, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]) -> None:
        files = self.releases[release_id]
        for d in drift:
            for path in d.missing + d.changed:
                if hash_file(build_dir / path) != manifest[path].sha256:
                    raise TargetError(f"target '{self.name}': the rebuilt {path} differs; not repaired")
                files[path] = (build_dir / path).read_bytes()
            for path in d.extra:
                files.pop(path, None)

    def served(self) -> Files:
        """What a reader gets now."""
        return dict(self.releases[self.live]) if self.live else {}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
