"""``status`` for a target following tags: which tag is newest, and why it is not live if not.

One ``git ls-remote`` per target with ``ref = "tag:…"``; the same choice the agent makes
(:func:`sitedeploy.agent.refs.resolve`, ordered by :mod:`sitedeploy.source.tag_order`), so the line
says exactly what the agent would deploy, and names a newer pre-release it leaves out.
"""

from __future__ import annotations

import fnmatch

from ..agent.refs import Refs, Tracked, ls_remote, parse_tracked, resolve
from ..config import Config, TargetConfig
from ..errors import SitedeployError
from ..source.tag_order import newest
from .common import open_source

NOT_YET = "the agent has not deployed it yet ('sitedeploy agent --once' does now)"


def tag_tracking(
    config: Config, cfg: TargetConfig, live_commit: str | None, waiting: str | None
) -> str | None:
    """One line for ``status``; None unless the target follows tags."""
    if not (cfg.ref or "").startswith("tag:"):
        return None
    tracked = parse_tracked(cfg.ref, None, prereleases=cfg.prereleases)
    try:
        refs = ls_remote(open_source(config).url)
    except SitedeployError as exc:
        return f"{tracked.describe()}: cannot list the tags ({exc.message})"
    found, skipped = resolve(tracked, refs), _skipped_prerelease(tracked, refs)
    note = f"; {skipped} is newer but a pre-release (prereleases = false)" if skipped else ""
    if found is None:
        return f"{tracked.describe()}: no tag matches{note}"
    tag, sha = found[0].removeprefix("refs/tags/"), found[1]
    if sha == live_commit:
        return f"{tracked.describe()}: newest tag {tag} ({sha[:8]}) is live{note}"
    why = waiting.split(" is not live: ", 1)[-1] if waiting else NOT_YET
    return f"{tracked.describe()}: newest tag {tag} ({sha[:8]}) is not live: {why}{note}"


def _skipped_prerelease(tracked: Tracked, refs: Refs) -> str | None:
    """The newest matching tag when it is a pre-release the target leaves out."""
    if tracked.prereleases:
        return None
    names = [n.removeprefix("refs/tags/") for n in refs if n.startswith("refs/tags/")]
    tags = [n for n in names if fnmatch.fnmatchcase(n, tracked.pattern)]
    top, final = newest(tags, tracked.pattern), newest(tags, tracked.pattern, prereleases=False)
    return top if top != final else None
