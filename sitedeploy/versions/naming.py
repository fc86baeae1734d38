"""From git refs to names: tags to versions, alias rules to versions, branches to slugs.

Pure functions over ``{ref name: commit}`` (what ``git ls-remote`` answers), so the agent can
decide what to build from one query and the tests need no repository.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass

from ..agent.refs import Refs
from ..errors import ConfigError
from ..tag_order import tag_key

_TAG = re.compile(r"^\D*?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-.+_]?([0-9A-Za-z][0-9A-Za-z.+-]*))?$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
RESERVED = frozenset({"index.html", "versions.json", "robots.txt", "404.html", "sitemap.xml"})
"""Files of a family's root: no version, alias or preview may take their name."""
RULES = ("newest", "newest-stable")
_NUMBERED = ("major", "minor", "patch", "prerelease")


@dataclass(frozen=True)
class RefVersion:
    """A version as git names it: the ref that wins for a version name, and its commit."""

    name: str
    title: str
    ref: str
    """Short ref name: the tag (``v2.1.3``) or branch."""
    commit: str
    prerelease: bool

    @property
    def order(self) -> tuple[object, ...]:
        return order_key(self.ref)


def split_pattern(spec: str) -> tuple[str, str]:
    """``"tag:v*"`` → ``("tag", "v*")`` (the config check already refused other shapes)."""
    kind, _, pattern = spec.partition(":")
    return kind, pattern


def tag_fields(tag: str) -> dict[str, str]:
    """``v2.1.3-rc.1`` → major 2, minor 1, patch 3, prerelease ``rc.1``; missing parts are 0."""
    match = _TAG.match(tag)
    if match is None:
        return {"major": tag, "minor": "0", "patch": "0", "prerelease": "", "tag": tag, "name": tag}
    major, minor, patch, pre = match.groups()
    name = tag[1:] if tag[:1] in "vV" and tag[1:2].isdigit() else tag
    return {
        "major": major,
        "minor": minor or "0",
        "patch": patch or "0",
        "prerelease": pre or "",
        "tag": tag,
        "name": name,
    }


def order_key(ref: str) -> tuple[object, ...]:
    """Newer sorts later: ``v1.10`` after ``v1.9``, ``2.0`` after ``v1.4.2``, ``2.0.0`` after
    ``2.0.0-rc.1``; names that are not versions sort before every version. The one ordering
    of tags, :func:`sitedeploy.tag_order.tag_key`."""
    return tag_key(ref)


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name) or name in RESERVED:
        raise ConfigError(
            f"{what} {name!r} is not a usable name: use letters, digits, '.', '_', '+', '-' and avoid "
            f"{', '.join(sorted(RESERVED))}"
        )
    return name


def versions_from_refs(refs: Refs, spec: str, name_format: str, title_format: str) -> dict[str, RefVersion]:
    """Every version the refs define; of several tags giving one name, the newest wins."""
    kind, pattern = split_pattern(spec)
    prefix = "refs/tags/" if kind == "tag" else "refs/heads/"
    found: dict[str, RefVersion] = {}
    for full, sha in refs.items():
        short = full.removeprefix(prefix)
        if not full.startswith(prefix) or not fnmatch.fnmatchcase(short, pattern):
            continue
        fields = tag_fields(short)
        if _TAG.match(short) is None and any(f"{{{k}" in name_format for k in _NUMBERED):
            continue  # ``v*`` also matches ``vintage``, which has no major or minor number
        name = name_format.format(**fields, version=short)
        if not _NAME.match(name) or name in RESERVED:
            continue  # a tag the format cannot name (``v*`` matching ``vintage``) is not a version
        candidate = RefVersion(
            name, title_format.format(**fields, version=name), short, sha, bool(fields["prerelease"])
        )
        if name not in found or candidate.order > found[name].order:
            found[name] = candidate
    return found


def rule_target(rule: str, versions: dict[str, RefVersion]) -> str | None:
    """The version an alias rule points at now: ``newest``, ``newest-stable`` or a fixed name."""
    if rule not in RULES:
        return rule if rule in versions else None
    pool = [v for v in versions.values() if rule == "newest" or not v.prerelease]
    return max(pool, key=lambda v: v.order).name if pool else None


def slug(branch: str, taken: set[str] | None = None) -> str:
    """A URL-safe folder name for a branch: ``Feature/Login_Form`` → ``feature-login-form``.

    Two branches that clean up to the same slug are told apart by a hash of the full name.
    """
    base = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")[:48].strip("-") or "branch"
    if base in RESERVED or (taken is not None and base in taken):
        base = f"{base}-{hashlib.sha1(branch.encode(), usedforsecurity=False).hexdigest()[:6]}"
    return base
