"""Which tag is newest: the one ordering every "newest tag" decision uses.

The agent's ``ref = "tag:v*"``, ``versions`` (which tag names a version, the ``newest`` and
``newest-stable`` aliases, the order of the version selector) all sort with :func:`tag_key`:

- A tag that is a semantic version once the glob's fixed prefix (``v`` of ``v*``, ``docs-`` of
  ``docs-*``) and any other text before its first digit are stripped (``v``, ``release-``, as
  ``version_format`` reads tags) sorts by semver.org §11 precedence:
  ``1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2 <
  1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0`` — numeric identifiers compare as numbers and below
  alphanumeric ones, a final release above every pre-release of it, build metadata
  (``+build.5``) ignored. Minor and patch may be left out (``v2.1`` is ``2.1.0``); a
  pre-release may also follow without a dash (``2.0rc1``).
- Any other tag (``latest-docs``, ``vintage``) sorts below every version, and among such tags
  by name with digit runs compared as numbers (``build-10`` after ``build-9``; a date stamp
  ``docs-2024-05-01`` orders by date). ``ls-remote``, which the agent decides from, tells no
  creation time, so the name is what there is to order by.
- Tags of equal precedence (``v1.0.0`` and ``1.0.0``, ``1.0.0+a`` and ``1.0.0+b``) are ordered
  by name, so the order is total and the same on every machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"^(\d+)(?:\.(\d+))?(?:\.(\d+))?"  # major[.minor[.patch]]
    rf"(?:-({_IDENT}(?:\.{_IDENT})*)|([A-Za-z][0-9A-Za-z-]*(?:\.{_IDENT})*))?"  # -pre or pre
    rf"(?:\+{_IDENT}(?:\.{_IDENT})*)?$"  # +build, ignored
)
_WILDCARDS = re.compile(r"[*?\[]")

Identifier = tuple[int, int | str]
TagKey = tuple[object, ...]


@dataclass(frozen=True)
class Semver:
    numbers: tuple[int, int, int]
    prerelease: tuple[str, ...]


def fixed_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard: ``v`` of ``v*``."""
    found = _WILDCARDS.search(pattern)
    return pattern if found is None else pattern[: found.start()]


def parse(tag: str, pattern: str = "") -> Semver | None:
    """The semantic version a tag names, or None."""
    core = tag.removeprefix(fixed_prefix(pattern))
    core = re.sub(r"^[^0-9]*", "", core)  # the rest of a prefix: v, V, release-
    match = _SEMVER.match(core)
    if match is None:
        return None
    major, minor, patch, dashed, bare = match.groups()
    pre = dashed or bare
    return Semver((int(major), int(minor or 0), int(patch or 0)), tuple(pre.split(".")) if pre else ())


def is_prerelease(tag: str, pattern: str = "") -> bool:
    found = parse(tag, pattern)
    return found is not None and bool(found.prerelease)


def tag_key(tag: str, pattern: str = "") -> TagKey:
    """Sort key: newer sorts later (see the module docstring)."""
    found = parse(tag, pattern)
    if found is None:
        return (0, _natural(tag), tag)
    # (1, …) after (0, …): a final release after every pre-release of the same numbers.
    pre = (1,) if not found.prerelease else (0, tuple(_identifier(p) for p in found.prerelease))
    return (1, found.numbers, pre, tag)


def newest(tags: list[str], pattern: str = "", *, prereleases: bool = True) -> str | None:
    """The newest of ``tags``; pre-releases left out unless ``prereleases``."""
    pool = [t for t in tags if prereleases or not is_prerelease(t, pattern)]
    return max(pool, key=lambda t: tag_key(t, pattern)) if pool else None


def _identifier(part: str) -> Identifier:
    """semver §11.4: numeric identifiers compare as numbers, below alphanumeric ones."""
    return (0, int(part)) if part.isdigit() else (1, part)


def _natural(name: str) -> tuple[Identifier, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|\D+", name))
