"""Pages a new version drops: what the previous version served and the new one does not.

The transaction already checks a version's own line (a new release of 2.0 against 2.0's live
one, :mod:`sitedeploy.redirects.removed`). A *new* version has no live release to compare with,
yet readers follow links from the previous version (and from search results for it) into the
new one: so a new line is compared with the newest live version older than it, with the same
rule (``removed_pages``: warn, refuse unless ``--force``, allow) and the same suggested
``_redirects`` lines. It runs as the publish's gate: on the build, before the line's lock is
taken, so a refusal writes nothing.
"""

from __future__ import annotations

from ..build import Built
from ..commands.deploy import Gate
from ..progress import Progress
from ..redirects.removed import check_removed
from ..release.diff import diff
from ..release.records import read_manifest
from ..release.transaction import Rules
from .layout import Family
from .naming import RefVersion, order_key
from .state import FamilyState


def previous_version(state: FamilyState, version: RefVersion) -> str | None:
    """The newest version of ``state`` older than ``version`` (by tag order)."""
    key = order_key(version.ref or version.name)
    older = [v for v in state.newest_first() if v.name != version.name and order_key(v.ref or v.name) < key]
    return older[0].name if older else None


def dropped_gate(
    family: Family,
    state: FamilyState,
    version: RefVersion,
    rules: Rules,
    notes: list[str],
    progress: Progress,
) -> Gate | None:
    """The check of a new version's build against the previous version's live pages; None when
    the version's line is live already (the transaction checks it) or there is no older one."""
    with family.line(version.name) as line:
        if line.live_release() is not None:
            return None
    previous = previous_version(state, version)
    if previous is None or rules.removed_pages == "allow":
        return None
    with family.line(previous) as line:
        live = line.live_release()
        before = read_manifest(line, live) if live else None
    if before is None:
        return None

    def gate(built: Built) -> None:
        plan = diff(built.manifest, before)
        said = check_removed(
            family.target, rules.removed_pages, rules.force, plan, built.manifest, built.root, progress,
            what=f"version {version.name} drops {{n}} page(s) of version {previous}",
        )  # fmt: skip
        notes.extend([said] if said else [])

    return gate
