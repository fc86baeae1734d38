"""S3 has no symlinks: an alias is a line of its own holding copies of its version's files.

Before the root release that names an alias's new version goes live, the alias's prefix is
made to serve that version's live release: a normal deploy (the S3 target's ordering: new
assets, then pages, stale keys deleted only after ``retain_releases`` switches, so a deep link
or an open page never breaks). Only the files that differ from what the alias serves are
fetched from the version's prefix and sent; an alias already serving that release costs one
read of its record (and of the release's rules file: the alias's redirect objects and headers
are made from it, with the alias's own prefix in their locations). Removing a line is the
transaction's ``retire`` mode (``Family.remove_line``).
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..build import Built
from ..build.planning import BuildPlan
from ..commands import publish
from ..commands.common import commit_of
from ..errors import TargetError
from ..progress import Progress
from ..redirects.ruleset import RULES_FILE
from ..release.diff import diff
from ..release.manifest import Manifest
from ..release.records import ReleaseRecord, read_manifest, read_release
from ..release.transaction import Rules
from ..source.signatures import Signature
from ..targets import Target

if TYPE_CHECKING:
    from .layout import Family
    from .state import FamilyState


class Copied(BuildPlan):
    """A version's live release, fetched (only the files the alias lacks) into ``root``."""

    def __init__(
        self, record: ReleaseRecord, manifest: Manifest, root: Path, key: str, progress: Progress
    ) -> None:
        self.commit, self.progress, self.key, self.jobs = commit_of(record), progress, key, []
        self._built: Built | None = Built(self.commit, root, manifest, key, ())
        # Copies of a release that is live already: its commit passed (or was forced past)
        # the signature rule when it was published; an alias brings no commit of its own.
        self.signature = Signature()


def sync_alias_copies(family: Family, state: FamilyState, rules: Rules, progress: Progress) -> None:
    for alias in state.aliases:
        with family.line(alias.version) as version, family.line(alias.name) as copy:
            _sync_one(version, copy, alias.version, rules, progress)


def _sync_one(version: Target, copy: Target, name: str, rules: Rules, progress: Progress) -> None:
    live = version.live_release()
    record = read_release(version, live) if live else None
    manifest = read_manifest(version, live) if live else None
    if record is None or manifest is None:
        raise TargetError(f"target '{version.name}': version {name} has no live release to alias")
    key = f"alias-of-{name}-{live}"
    copy_live = copy.live_release()
    copy_record = read_release(copy, copy_live) if copy_live else None
    if copy_record is not None and copy_record.build_key == key:
        return
    have = read_manifest(copy, copy_live) if copy_live else None
    needed = [u.path for u in diff(manifest, have).uploads]
    if RULES_FILE in manifest and RULES_FILE not in needed:  # the copy's redirects and headers
        needed.append(RULES_FILE)  # are read from the folder it is published from
    with tempfile.TemporaryDirectory(prefix="sitedeploy-alias-") as tmp:
        _fetch(version, needed, Path(tmp))
        progress.step(f"{copy.name}: serving {name} ({len(needed)} files to copy)")
        publish(copy, rules, Copied(record, manifest, Path(tmp), key, progress), key)


def _fetch(t: Any, paths: list[str], into: Path) -> None:
    """Download ``paths`` of an S3 line's live site (gunzipping what was stored gzipped)."""
    from ..targets.s3.client import translated

    def one(path: str) -> None:
        answer = t.s3.get_object(Bucket=t.cfg.bucket, Key=t.prefix + path)
        body = answer["Body"].read()
        if answer.get("ContentEncoding") == "gzip":
            body = gzip.decompress(body)
        (into / path).parent.mkdir(parents=True, exist_ok=True)
        (into / path).write_bytes(body)

    with translated(t.name, t.describe(), "read the version's files"):
        t.run_all(one, paths)
