"""What a versioned (or previewed) target serves: versions, titles, aliases, and the commit
and release each line serves (``versions list``, ``previews list``, ``status``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..release.records import read_control, read_history, read_release
from .api import families
from .layout import Family
from .state import FamilyState, Line, read_state


@dataclass(frozen=True)
class VersionInfo:
    version: str
    title: str
    ref: str
    aliases: list[str]
    commit: str | None
    release: str | None
    deployed_at: str | None
    pinned: bool


@dataclass(frozen=True)
class FamilyInfo:
    target: str
    default: str | None
    versions: list[VersionInfo]
    aliases: dict[str, str]
    root_release: str | None


def list_versions(config: Config, *, target: str | None = None, kind: str = "versions") -> list[FamilyInfo]:
    return [family_info(f) for f in families(config, target, kind)]


def family_info(family: Family) -> FamilyInfo:
    with family.root() as root:
        rid = root.live_release()
        state = read_state(root, rid, family.kind)
    infos = [_version_info(family, state, v) for v in state.newest_first()]
    aliases = {a.name: a.version for a in state.aliases}
    return FamilyInfo(family.target, state.default, infos, aliases, rid)


def _version_info(family: Family, state: FamilyState, v: Line) -> VersionInfo:
    with family.line(v.name) as line:
        live = line.live_release()
        record = read_release(line, live) if live else None
        entry = next((e for e in reversed(read_history(line)) if e.release == live), None)
        pinned = read_control(line).pin is not None
    return VersionInfo(
        v.name,
        v.title,
        v.ref,
        state.aliases_of(v.name),
        record.commit if record else None,
        live,
        entry.deployed_at if entry else None,
        pinned,
    )


def versions_status(config: Config, target: str) -> dict[str, Any]:
    """What ``status`` shows of a versioned target (plain data, for --json and text)."""
    return dataclasses.asdict(family_info(Family.of(config, target, "versions")))
