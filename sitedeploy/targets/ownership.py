"""Which of the files found at a target's place are the target's own.

``verify`` reports, and ``--repair`` deletes, files that are not in the live release. A folder
holding a ``.sitedeploy/`` of its own belongs to another target — a version or preview line,
an alias, or a target configured elsewhere that was pointed below this one — so nothing under
it is ever this target's drift, whatever the configuration says (S3's version sweep follows
the same rule, ``s3/bodies.py``). The configuration check refuses overlapping targets at load
(``sitedeploy.config.places``); this is the second line, for places made before that check or
by another deploy.toml.
"""

from __future__ import annotations

import dataclasses

from .base import Drift

STATE_FOLDER = ".sitedeploy"


def foreign_folders(paths: list[str]) -> set[str]:
    """``a/b/`` for every ``a/b/.sitedeploy/…`` among ``paths`` (the target's own state,
    ``.sitedeploy/`` at the top, is not a folder of another target)."""
    folders = set()
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts) - 1):
            if parts[i] == STATE_FOLDER:
                folders.add("/".join(parts[:i]) + "/")
                break
    return folders


def owned(drift: list[Drift]) -> list[Drift]:
    """``drift`` without the extra files that belong to another target."""
    return [_owned_one(d) for d in drift]


def _owned_one(d: Drift) -> Drift:
    foreign = tuple(foreign_folders(d.extra))
    if not foreign:
        return d
    return dataclasses.replace(d, extra=[p for p in d.extra if not p.startswith(foreign)])
