"""What a publish will do: a pure diff of the new manifest against the live one.

Computed before any side effect, printed by ``--dry-run``, asserted on by tests. Every upload
carries its reason, so a user can see why a file is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .manifest import FileEntry, Manifest

Reason = Literal["new", "size", "hash", "type"]


@dataclass(frozen=True)
class Upload:
    path: str
    reason: Reason


@dataclass(frozen=True)
class Plan:
    uploads: tuple[Upload, ...] = ()
    deletes: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = field(default=(), repr=False)

    @property
    def added(self) -> int:
        return sum(1 for u in self.uploads if u.reason == "new")

    @property
    def changed(self) -> int:
        return len(self.uploads) - self.added

    def summary(self) -> str:
        return (
            f"{self.added} new, {self.changed} changed, {len(self.deletes)} removed, "
            f"{len(self.unchanged)} unchanged"
        )

    def lines(self) -> list[str]:
        """One line per change, for ``--dry-run``."""
        out = [f"upload {u.path} ({u.reason})" for u in self.uploads]
        out += [f"delete {path}" for path in self.deletes]
        return out


def diff(new: Manifest, live: Manifest | None) -> Plan:
    """Uploads (with reasons), deletes and unchanged paths that turn ``live`` into ``new``."""
    live = live or Manifest({})
    uploads: list[Upload] = []
    unchanged: list[str] = []
    for path, entry in new.items():
        old = live.get(path)
        reason = _reason(entry, old)
        if reason is None:
            unchanged.append(path)
        else:
            uploads.append(Upload(path, reason))
    deletes = tuple(path for path in live if path not in new)
    return Plan(tuple(uploads), deletes, tuple(unchanged))


def _reason(new: FileEntry, old: FileEntry | None) -> Reason | None:
    if old is None:
        return "new"
    if new.size != old.size:
        return "size"
    if new.sha256 != old.sha256:
        return "hash"
    if new.content_type != old.content_type:
        return "type"
    return None
