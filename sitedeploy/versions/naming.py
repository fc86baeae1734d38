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
from ..names import RESERVED as RESERVED
from ..names import check_line_name, is_line_name
from ..source.tag_order import tag_key

_TAG = re.compile(r"^\D*?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-.+_]?([0-9A-Za-z][0-9A-Za-z.+-]*))?$")
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
    of tags, :func:`sitedeploy.source.tag_order.tag_key`."""
    return tag_key(ref)


def check_name(name: str, what: str) -> str:
    """A version, alias or preview name (see :mod:`sitedeploy.names`), or a one-line ConfigError."""
    return check_line_name(name, what)


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
        if not is_line_name(name):
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


def branch_slug(branch: str) -> str:
    """A branch's preview slug: ``Feature/Login_Form`` → ``br-feature-login-form``.

    It depends on the branch's name alone (never on which other branches exist), and the
    ``br-`` prefix keeps it apart from requests' ``pr-<n>`` and ``mr-<n>``. A name longer than
    48 characters keeps 40 and a hash of the whole name, so long names sharing a start differ;
    a name with no ASCII letter or digit (``ドキュメント``) is ``br-branch-<hash>``.
    """
    base = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")
    if len(base) > 48 or not base:
        whole = branch.encode(errors="surrogatepass")  # a ref git could not decode still hashes
        digest = hashlib.sha1(whole, usedforsecurity=False).hexdigest()[:7]
        base = f"{base[:40].strip('-') or 'branch'}-{digest}"
    return f"br-{base}"
