"""Every name that becomes a path segment, validated in one place.

Sites, targets, versions, aliases and previews become folder names on this machine (caches,
work folders under the state folder) and on targets (``lines/<name>/``, a symlink per alias,
an S3 prefix). They arrive from ``deploy.toml``, from a commit's tree (``sites/<name>/``), from
git refs (tags, branches, pull requests) and back from a target's state (``family/<id>.json``),
and each of those may be hostile: a git server may accept a tree entry ``..``, anyone who can
write a target's state can write ``../..``. So a name is one plain path segment, or refused:

- letters, digits, ``_``, ``-`` and ``.`` (lines also ``+``: ``1.0+build``), at most
  :data:`MAX_LENGTH` characters;
- first a letter or digit, so never ``.``, ``..`` or a hidden ``.lib``;
- no separator, no control character, no whitespace (the patterns are matched whole, so a
  trailing newline cannot slip past ``$``);
- a line is never one of the family root's own files (:data:`RESERVED`).
"""

from __future__ import annotations

import re

from .errors import ConfigError

MAX_LENGTH = 100
"""Far below a file name's 255 bytes, so a name plus a temporary suffix always fits."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""A site or target name (and an alias rule's key in deploy.toml)."""
LINE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
"""A version, alias or preview name: what a family serves at ``<root>/<name>/``."""
RESERVED = frozenset({"index.html", "versions.json", "robots.txt", "404.html", "sitemap.xml"})
"""Files of a family's root: no version, alias or preview may take their name."""
NAME_RULE = "letters, digits, '-', '_' or '.', not starting with '.'"
LINE_RULE = "letters, digits, '.', '_', '+', '-', starting with a letter or digit"


def is_name(name: object) -> bool:
    """A usable site or target name: one plain path segment."""
    return isinstance(name, str) and len(name) <= MAX_LENGTH and NAME.fullmatch(name) is not None


def is_line_name(name: object) -> bool:
    """A usable version, alias or preview name: one plain path segment, not a root file."""
    return (
        isinstance(name, str)
        and len(name) <= MAX_LENGTH
        and LINE.fullmatch(name) is not None
        and name not in RESERVED
    )


def line_problem(name: object, what: str) -> str | None:
    """Why ``name`` cannot be a version, alias or preview (``what``), or None when it can."""
    if is_line_name(name):
        return None
    return (
        f"{what} {name!r} is not a usable name: use {LINE_RULE}, at most {MAX_LENGTH} characters, "
        f"and avoid {', '.join(sorted(RESERVED))}"
    )


def check_line_name(name: str, what: str) -> str:
    """``name`` if it can be a version, alias or preview (``what``); else one-line ConfigError."""
    problem = line_problem(name, what)
    if problem is not None:
        raise ConfigError(problem)
    return name


def site_problem(name: object) -> str | None:
    """Why ``name`` cannot be a site (or target), or None when it can."""
    if is_name(name):
        return None
    return f"{name!r} is not a usable name: use {NAME_RULE}, at most {MAX_LENGTH} characters"


def check_site_folders(folders: list[str], where: str) -> None:
    """Refuse a ``sites/<folder>`` that cannot be a site name (``..``, ``.lib``, ``a\\nb``).

    Refused, not skipped: a folder the deployer silently ignored would look deployed."""
    bad = [name for name in folders if not is_name(name)]
    if bad:
        raise ConfigError(
            f"{where}: sites/{bad[0]!r} cannot be a site: {site_problem(bad[0])}; rename the folder, "
            "or name the sites to deploy in [[sites]] tables"
        )
