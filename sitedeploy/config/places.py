"""Where each target keeps its site, and the rule that no two targets share a place.

A target owns everything under its place (a local folder, a folder on each SSH host, a
prefix of an S3 bucket): ``verify --repair`` deletes what is there and not in the live
release. Two targets whose places are the same or nest (``prefix = ""`` and
``prefix = "versions/"`` in one bucket) would each see the other's files as extra, so such a
configuration is refused when ``deploy.toml`` is read. A target's own versions and previews
are not targets of their own in the file: they are lines *of* that target, below its place
(``sitedeploy.versions.layout``), which is the one declared way to nest sites.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from .targets import LocalTargetConfig, S3TargetConfig, SSHTargetConfig, TargetConfig


@dataclass(frozen=True)
class Place:
    """One place a target writes: a space (a machine, a bucket) and a folder in it."""

    space: str
    folder: str
    """Slash-separated, no trailing slash; ``""`` is the space's root."""
    shown: str

    def holds(self, other: Place) -> bool:
        """``other`` is this place or a folder below it."""
        if self.space != other.space:
            return False
        return not self.folder or other.folder == self.folder or other.folder.startswith(self.folder + "/")


def places(cfg: TargetConfig, base_dir: Path) -> list[Place]:
    """Every place a target writes (one per SSH host)."""
    if isinstance(cfg, LocalTargetConfig):
        folder = str((base_dir / Path(cfg.path).expanduser()).resolve())
        return [Place("local", folder.rstrip("/"), folder)]
    if isinstance(cfg, SSHTargetConfig):
        return [_ssh_place(cfg, host) for host in cfg.hosts]
    if isinstance(cfg, S3TargetConfig):
        prefix = posixpath.normpath("/" + cfg.prefix).strip("/")
        space = f"s3:{cfg.endpoint_url or 'aws'}:{cfg.bucket}"
        return [Place(space, prefix, f"s3://{cfg.bucket}/{prefix}")]
    return []


def _ssh_place(cfg: SSHTargetConfig, host: str) -> Place:
    """A relative path is below the login's home, so the user is part of the space then."""
    name = host.lower()
    name = name if name.count(":") != 1 else name.partition(":")[0]  # the port is the same machine
    path = posixpath.normpath(cfg.path)
    absolute = path.startswith("/")
    space = f"ssh:{name}" if absolute else f"ssh:{cfg.user or ''}@{name}:~"
    folder = path.rstrip("/") if absolute else ("" if path == "." else path)
    return Place(space, folder, f"{host}:{cfg.path}")


def overlap_problems(targets: dict[str, TargetConfig], base_dir: Path) -> list[str]:
    """One line per pair of targets that share a place."""
    found = [(name, p) for name, cfg in targets.items() for p in places(cfg, base_dir)]
    problems, seen = [], set()
    for i, (a, pa) in enumerate(found):
        for b, pb in found[i + 1 :]:
            if a == b or (a, b) in seen or not (pa.holds(pb) or pb.holds(pa)):
                continue
            seen.add((a, b))
            problems.append(_overlap_line(a, pa, b, pb))
    return problems


def _overlap_line(a: str, pa: Place, b: str, pb: Place) -> str:
    how = "the same place" if pa.folder == pb.folder else "nested places"
    return (
        f"targets.{a} ({pa.shown}) and targets.{b} ({pb.shown}) are {how}: each would see the "
        "other's files as its own and 'verify --repair' would delete them; give each target its "
        "own folder or prefix, or serve versions and previews from one target with its "
        "'versions' and 'previews' keys"
    )
