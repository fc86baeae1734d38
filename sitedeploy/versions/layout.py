"""Where a family lives on a target: one root release line plus one release line per name.

A *family* is what a versioned target serves (its versions) or a target's previews. Every part
of it is a normal target, so the whole release transaction (lock, plan, atomic switch,
history, rollback, prune) applies to each part unchanged::

    <root>/lines/<name>/releases/<id>/, current, .sitedeploy/   one line per version or preview
    <root>/releases/<id>/                                       the root's releases: index.html,
                                                                versions.json and a symlink per
                                                                version and alias, e.g.
                                                                2.1    -> ../../lines/2.1/current
                                                                latest -> ../../lines/2.1/current
    <root>/current -> releases/<id>                             the web root, as for any target
    <root>/.sitedeploy/                                         the root line's state + family/

Readers are served ``<root>/current/``: ``/2.1/page/`` resolves through the version's own
``current``, so publishing 2.1 switches 2.1 alone and never touches 1.4's files. Moving an alias
or the default is a new root release switched by one ``rename(2)`` of ``current`` (and recorded
in the root's history, so ``sitedeploy rollback`` undoes it). Lines live under ``lines/`` so a
version may be called anything without clashing with ``releases``, ``current`` or the state.

On S3 (no symlinks), each line's prefix is the served folder itself (``<prefix><name>/``) and an
alias is a line of its own that receives copies of its version's files: an alias move is a
deploy to that prefix, with the S3 target's ordering (assets, then pages, deletes kept for
``retain_releases`` switches), so a deep link into the alias never breaks.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import Config, LocalTargetConfig, S3TargetConfig, SSHTargetConfig, TargetConfig
from ..errors import ConfigError, TargetError
from ..names import check_line_name
from ..progress import Progress
from ..release.diff import Plan
from ..release.manifest import Manifest
from ..release.records import ReleaseRecord
from ..release.transaction import Rules, Transaction
from ..targets import Drift, Target, open_target
from ..targets.base import PreparedFolder
from ..targets.dryrun import DryRun
from ..targets.local import LocalTarget
from .state import FamilyState, forget_state, read_state

Kind = Literal["versions", "previews"]
LINES = "lines"


def plain(cfg: TargetConfig) -> TargetConfig:
    """The target's settings without the family keys: what a line (or the root) publishes with,
    so editing an alias rule does not make every version look changed."""
    base = TargetConfig(type=cfg.type)
    fields = ("versions", "version_format", "version_title", "version_site", "aliases")
    more = ("default_version", "previews", "preview_path", "preview_url", "preview_max_age_days")
    return dataclasses.replace(cfg, **{f: getattr(base, f) for f in (*fields, *more)})


@dataclass(frozen=True)
class Family:
    target: str
    """The target's name in deploy.toml."""
    cfg: TargetConfig
    config: Config
    kind: Kind

    @classmethod
    def of(cls, config: Config, target: str, kind: Kind) -> Family:
        cfg = config.target(target)[target]
        if getattr(cfg, kind) is None:
            raise ConfigError(
                f"{config.path.name}: target '{target}' has no {kind} key; add "
                + ('versions = "tag:v*"' if kind == "versions" else 'previews = "branch:*"')
                + f" to [targets.{target}]"
            )
        return cls(target, cfg, config, kind)

    @property
    def name(self) -> str:
        return self.target if self.kind == "versions" else f"{self.target}:previews"

    @property
    def links(self) -> bool:
        """Aliases are symlinks in the root release (local, SSH); otherwise copies (S3)."""
        return not isinstance(self.cfg, S3TargetConfig)

    def _subpath(self) -> str:
        return "" if self.kind == "versions" else self.cfg.preview_path.strip("/")

    def _cfg_at(self, *parts: str) -> TargetConfig:
        rel = posixpath.join(self._subpath(), *parts).strip("/")
        cfg = plain(self.cfg)
        if isinstance(cfg, S3TargetConfig):
            prefix = posixpath.join(cfg.prefix.strip("/"), rel).strip("/")
            return dataclasses.replace(cfg, prefix=prefix)
        assert isinstance(cfg, LocalTargetConfig | SSHTargetConfig)
        return dataclasses.replace(cfg, path=posixpath.join(cfg.path, rel) if rel else cfg.path)

    def root(self) -> Target:
        cfg = self._cfg_at()
        if isinstance(cfg, LocalTargetConfig):
            return LinkedRoot(self.name, self.config.resolve(cfg.path), self.kind)
        if isinstance(cfg, SSHTargetConfig):
            from .ssh import LinkedSSHRoot

            return LinkedSSHRoot(self.name, cfg, self.kind)
        return open_target(self.name, cfg, self.config)

    def line(self, name: str) -> Target:
        """The release line of one version, preview or (S3) alias (a plain name, or refused)."""
        check_line_name(name, f"target '{self.target}': {self.kind[:-1]}")
        parts = (LINES, name) if self.links else (name,)
        line = open_target(f"{self.name}/{name}", self._cfg_at(*parts), self.config)
        if not self.links:  # S3: a redirect's Location is a URL path, which includes the line's
            from ..targets.s3.target import S3Target

            assert isinstance(line, S3Target)
            line.served_at = "/" + posixpath.join(self._subpath(), name) + "/"
        return line

    def remove_line(self, name: str, *, dry_run: bool = False, force: bool = False) -> int:
        """Delete a line that the live root no longer serves: the transaction's ``retire`` mode
        on the root (its holds, ``max_delete``, its history); the files the line served."""
        cfg = self.cfg
        rules = Rules(
            cfg.keep_releases, cfg.max_delete, cfg.lock_timeout, cfg.lock_ttl, force=force, force_delete=force
        )
        what = f"{self.kind[:-1]} {name}"
        with self.root() as root, self.line(name) as line:
            into, gone = (DryRun(root), DryRun(line)) if dry_run else (root, line)
            with Transaction(into, rules, "retire") as tx:
                return tx.retire(gone, what)

    def orphans(self, state: FamilyState) -> list[str]:
        """Lines the root recorded as deleted or removed that still hold something (a run that
        died between unlinking a line and retiring it, or halfway through the delete)."""
        gone = {*state.extra.get("deleted", {}), *state.extra.get("removed", {})}
        found = []
        for name in sorted(n for n in gone if state.line(n) is None):
            with self.line(name) as line:
                if line.live_release() or line.list_releases() or line.read_meta("history.json"):
                    found.append(name)
        return found

    def finish_retirements(self, state: FamilyState) -> list[str]:
        """Retire every orphaned line; the ones finished. Forced: each was checked against the
        holds and ``max_delete`` before the root stopped serving it."""
        done = self.orphans(state)
        for name in done:
            self.remove_line(name, force=True)
        return done

    def url(self, name: str) -> str | None:
        template = self.cfg.preview_url if self.kind == "previews" else None
        return template.format(slug=name, name=name) if template else None


class LinkedRoot(LocalTarget):
    """A local root line whose releases also hold a symlink per line and alias.

    The links are made in ``prepare``, before the release can go live, from the family state
    that was recorded for the release (so a retained release that is switched back to, or one
    staged by a run that died, gets exactly its own links); a release is never changed once
    live. ``os.walk`` does not follow them, so manifests and ``verify`` see files only.
    """

    def __init__(self, name: str, root: Path, kind: Kind) -> None:
        super().__init__(name, root)
        self.kind = kind

    def prepare(
        self,
        record: ReleaseRecord,
        manifest: Manifest,
        plan: Plan,
        build_dir: Path | None,
        progress: Progress,
    ) -> PreparedFolder:
        prepared = super().prepare(record, manifest, plan, build_dir, progress)
        state = read_state(self, record.id, self.kind)
        with self._errors(f"link the lines of release {record.id}"):
            self._ensure_links(self.releases_dir / record.id, state)
        return prepared

    def _ensure_links(self, folder: Path, state: FamilyState) -> None:
        for name, line in state.links().items():
            link, target = folder / name, Path("..", "..", LINES, line, "current")
            if link.is_symlink() and Path(os.readlink(link)) == target:
                continue
            tmp = link.with_name(f".{name}.link.tmp")
            tmp.unlink(missing_ok=True)
            os.symlink(target, tmp)
            os.replace(tmp, link)

    def remove_release(self, release_id: str) -> None:
        super().remove_release(release_id)
        forget_state(self, release_id)


def own_drift(cfg: TargetConfig, drift: list[Drift]) -> list[Drift]:
    """``verify`` of a target that also holds lines (S3 lists them under its prefix): the
    lines' own files are not the target's drift, and must never be "repaired" away."""
    if cfg.versions:  # the root serves top-level files only; every folder is a line or alias
        return [dataclasses.replace(d, extra=[p for p in d.extra if "/" not in p]) for d in drift]
    folder = cfg.preview_path.strip("/") + "/"
    return [dataclasses.replace(d, extra=[p for p in d.extra if not p.startswith(folder)]) for d in drift]


def missing_line(family: Family, name: str) -> TargetError:
    return TargetError(
        f"target '{family.target}': no {family.kind[:-1]} '{name}'; see 'sitedeploy {family.kind} list'"
    )
