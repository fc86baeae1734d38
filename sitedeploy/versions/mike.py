"""``sitedeploy import-mike``: move a mike ``gh-pages`` branch onto a versioned target as is.

mike keeps each version's built files in a folder of the branch and lists them in its
``versions.json``. Each listed version's folder is published, unchanged and without a build,
as that version's line (its commit is the branch's commit); titles and aliases come from
``versions.json`` and the default from mike's root redirect page. Alias folders are not
copied: aliases are served from the version they name. A team thus moves without rebuilding
old versions whose toolchains no longer install.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..build import Built
from ..build.planning import BuildPlan
from ..commands import synced_source
from ..config import Config
from ..errors import ConfigError, SourceError
from ..progress import SILENT, Progress
from ..release.manifest import scan
from ..release.records import now_iso
from ..source import Commit, Source
from ..source.signatures import check_signature
from .api import LineResult, _one
from .naming import check_name
from .publish import FamilyChange, follow_rules, publish_line, rules_of, then, update_root
from .state import Alias, FamilyState, Line

_REDIRECT = re.compile(r'url=([^"\'>\s]+?)/?["\'\s>]')


class Imported(BuildPlan):
    """A version folder exported from the branch: "built" already."""

    def __init__(
        self, config: Config, source: Source, commit: Commit, folder: str, root: Path, progress: Progress
    ) -> None:
        self.signature = check_signature(config, source, commit)  # the branch's commit, as any line's
        self.config, self.source, self.commit, self.progress = config, source, commit, progress
        self.key = source.tree_id(commit.sha, folder) or commit.sha
        self.root, self.jobs = root, []
        self._built: Built | None = None

    def get(self) -> Built:
        if self._built is None:
            self._built = Built(self.commit, self.root, scan(self.root), self.key, ())
        return self._built


def import_mike(
    config: Config,
    *,
    target: str | None = None,
    branch: str = "gh-pages",
    prefix: str = "",
    force: bool = False,
    progress: Progress = SILENT,
) -> list[LineResult]:
    family = _one(config, target)
    source = synced_source(config)
    commit = source.resolve(branch)
    base = prefix.strip("/")
    entries = _versions_json(source, commit, base, branch)
    _check_aliases(entries, branch)  # before anything is published
    results = []
    with tempfile.TemporaryDirectory(prefix="sitedeploy-mike-") as tmp:
        for entry in entries:
            name = check_name(str(entry["version"]), f"{branch}: versions.json version")
            folder = f"{base}/{name}".strip("/")
            work = Path(tmp) / name
            source.checkout(commit.sha, folder, work)
            shutil.rmtree(work / ".git", ignore_errors=True)
            lazy = Imported(config, source, commit, folder, work, progress)
            result = publish_line(family, name, lazy, rules_of(family, force=force))
            results.append(
                LineResult(family.target, name, branch, commit.sha, result.outcome, result.release)
            )
    default = _default(source, commit, base)
    update_root(
        family,
        then(_imported(family.cfg.aliases, entries, default), follow_rules(family)),
        note=f"import from mike ({branch} {commit.short})",
        rules=rules_of(family),
        progress=progress,
    )
    return results


def _versions_json(source: Source, commit: Commit, base: str, branch: str) -> list[dict[str, Any]]:
    path = f"{base}/versions.json".strip("/")
    text = source.read_text(commit.sha, path)
    try:
        raw = json.loads(text) if text is not None else None
    except ValueError as exc:
        raise SourceError(f"{branch}:{path}: not valid JSON ({exc}); is this a mike branch?") from None
    if raw is None:
        raise SourceError(f"{branch}:{path}: no such file, so not a mike branch; pass --branch or --prefix")
    shaped = (
        isinstance(e, dict) and "version" in e and isinstance(e.get("aliases") or [], list) for e in raw
    )
    if not isinstance(raw, list) or not all(shaped):
        raise ConfigError(f"{branch}:{path}: expected mike's list of {{version, title, aliases}}")
    return raw


def _check_aliases(entries: list[dict[str, Any]], branch: str) -> None:
    """An alias may not take a version's name: served from the version's own folder (on S3
    its prefix *is* the version's), it would replace that version."""
    versions = {str(e["version"]) for e in entries}
    for e in entries:
        for alias in e.get("aliases") or []:
            check_name(str(alias), f"{branch}: versions.json alias")
            if str(alias) in versions:
                raise ConfigError(
                    f"{branch}: versions.json: alias {alias!r} of version {e['version']!r} is also the "
                    "name of a version; remove one of them from versions.json (or with 'mike delete')"
                )


def _default(source: Source, commit: Commit, base: str) -> str | None:
    page = source.read_text(commit.sha, f"{base + '/' if base else ''}index.html")
    if page is None:  # no redirect page: mike's set-default was never run
        return None
    match = _REDIRECT.search(page)
    return match.group(1).strip("./") if match else None


def _imported(rules: dict[str, str], entries: list[dict[str, Any]], default: str | None) -> FamilyChange:
    def change(state: FamilyState) -> FamilyState:
        now = now_iso()
        for e in entries:
            name = str(e["version"])
            state = state.with_line(Line(name, str(e.get("title") or name), "", now, now))
            for alias in e.get("aliases") or []:
                if alias not in rules:  # a rule of deploy.toml decides its own aliases
                    state = state.with_alias(Alias(check_name(str(alias), "mike alias"), name))
        if default and state.resolve(default) and state.default is None:
            state = dataclasses.replace(state, default=default)
        return state

    return change
