"""The two kinds of change to a family, each one release transaction.

- :func:`publish_line` publishes a build to one version's (or preview's) own line: the
  transaction of any deploy, on ``lines/<name>/``; nothing else of the family is touched.
- :func:`update_root` applies a change to the family's state (a new version, an alias moved,
  the default, a version removed) by publishing a new root release: ``index.html``,
  ``versions.json`` and (local) the symlinks. The state is read from the live root release
  *after* the root's lock is taken, so two changes never lose each other's edits.

Ordering, for readers: a new version's files are live in its line before the root release
that links it; a version is unlinked from the root before its files are removed; on S3 an
alias prefix receives its new copies before ``versions.json`` names the new version.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..build.planning import BuildPlan
from ..commands import DeployResult, publish
from ..commands.deploy import Gate
from ..progress import SILENT, Progress
from ..redirects.removed import RemovedPages
from ..release import records
from ..release.manifest import scan
from ..release.records import ReleaseRecord
from ..release.transaction import Rules, Transaction
from ..targets import Target
from .layout import Family, plain
from .naming import rule_target, tag_fields
from .state import Alias, FamilyState, forget_state, read_state, root_files, write_state

FamilyChange = Callable[[FamilyState], FamilyState]
"""An edit of a family's state (versions, aliases, default), published as one root release."""


@dataclass(frozen=True)
class RootResult:
    state: FamilyState
    changed: bool
    release: str | None
    retired_files: int = 0
    """Files of a line removed with it (or that a dry run would remove)."""


def rules_of(family: Family, *, force: bool = False, removed_pages: RemovedPages = "warn") -> Rules:
    """The family's rules; ``removed_pages``: the target's own for a version's line (roots,
    previews and S3 alias copies only warn)."""
    cfg = family.cfg
    return Rules(
        cfg.keep_releases,
        cfg.max_delete,
        cfg.lock_timeout,
        cfg.lock_ttl,
        force=force,
        removed_pages=removed_pages,
    )


def publish_line(
    family: Family,
    name: str,
    lazy: BuildPlan,
    rules: Rules,
    *,
    dry_run: bool = False,
    gate: Gate | None = None,
    notes: list[str] | None = None,
) -> DeployResult:
    """Publish ``lazy``'s build as line ``name`` (built only if the line does not serve it)."""
    with family.line(name) as line:
        key = lazy.key_for(plain(family.cfg))
        return publish(line, rules, lazy, key, dry_run=dry_run, gate=gate, notes=notes)


def live_state(family: Family) -> FamilyState:
    with family.root() as root:
        return read_state(root, root.live_release(), family.kind)


def update_root(
    family: Family, change: FamilyChange, *, note: str, rules: Rules, progress: Progress = SILENT
) -> RootResult:
    """Publish a root release for ``change(live state)``; nothing when it serves the same."""
    # The folder outlives the transaction: S3 sends the files at the switch, on leaving it.
    with (
        tempfile.TemporaryDirectory(prefix="sitedeploy-root-") as folder,
        family.root() as root,
        Transaction(root, rules, "deploy", note=note, progress=progress) as tx,
    ):
        live = tx.live_record.id if tx.live_record else None
        new = change(read_state(root, live, family.kind))
        if not family.links:  # S3: each alias prefix serves its version's live release first
            from .s3 import sync_alias_copies

            sync_alias_copies(family, new, rules, progress)
        if tx.live_record is not None and tx.live_record.build_key == new.key:
            return RootResult(new, False, live)
        _publish_root(root, tx, new, note, Path(folder))
        assert tx.record is not None
        return RootResult(new, True, tx.record.id)


def _publish_root(root: Target, tx: Transaction, state: FamilyState, note: str, folder: Path) -> None:
    for rel, data in root_files(state).items():
        (folder / rel).write_bytes(data)
    manifest = scan(folder)
    record = root_record(root, state, note, manifest.total_bytes, len(manifest))
    write_state(root, record.id, state)  # before prepare: the local root links from it
    try:
        tx.publish(record, manifest, folder)
    except BaseException:
        forget_state(root, record.id)
        raise


def root_record(root: Target, state: FamilyState, note: str, size: int, files: int) -> ReleaseRecord:
    """A root release has no commit of its own: its "commit" is the state's fingerprint."""
    fingerprint = hashlib.sha1(state.key.encode(), usedforsecurity=False).hexdigest()
    rid = records.release_id(fingerprint)
    existing = set(root.list_releases())
    n = 2
    while rid in existing:
        rid, n = f"{records.release_id(fingerprint)}-{n}", n + 1
    now, who = records.now_iso(), records.whoami()
    return ReleaseRecord(rid, fingerprint, note, who, now, now, who, state.key, files, size)


# --- changes of the state -----------------------------------------------------------------------


def follow_rules(family: Family) -> FamilyChange:
    """Point every alias of deploy.toml at what its rule says now, and apply the default."""

    def change(state: FamilyState) -> FamilyState:
        for alias, rule in family.cfg.aliases.items():
            target = _rule_target(rule, state)
            state = state.with_alias(Alias(alias, target, rule)) if target else state.without_alias(alias)
        default = family.cfg.default_version or state.default
        if default is None and state.alias("latest"):
            default = "latest"
        return FamilyState(state.kind, state.lines, state.aliases, default, state.extra)

    return change


def _rule_target(rule: str, state: FamilyState) -> str | None:
    from .naming import RefVersion

    versions = {
        v.name: RefVersion(
            v.name, v.title, v.ref or v.name, "", bool(tag_fields(v.ref or v.name)["prerelease"])
        )
        for v in state.lines
    }
    return rule_target(rule, versions)


def then(*changes: FamilyChange) -> FamilyChange:
    def change(state: FamilyState) -> FamilyState:
        for step in changes:
            state = step(state)
        return state

    return change
