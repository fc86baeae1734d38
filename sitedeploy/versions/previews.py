"""Preview deploys: every branch and pull request matching ``previews`` served at
``<preview_path>/<slug>/``.

A preview is a line of the target's preview family (see :mod:`.layout`), built like a version
but with every page marked ``<meta name="robots" content="noindex, nofollow">`` and a
``robots.txt`` at the previews' root that keeps crawlers out. Its URL comes from
``preview_url`` (``{slug}``): ``br-<branch>``, ``pr-<n>`` or ``mr-<n>``, namespaced by kind
and made from the ref alone (:func:`match_previews`). A preview is removed when its branch
(or request ref) is deleted, when it was not updated for ``preview_max_age_days``, or by
``sitedeploy previews delete``; a preview removed for its age or by hand comes back only when
its ref moves.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from ..build import Trust
from ..commands import synced_source
from ..config import Config, preview_specs
from ..errors import PlanRefused, SitedeployError
from ..forge.pages import against_production
from ..progress import SILENT, Progress
from ..release.records import now_iso
from ..source import Source
from .api import LineResult, families, mirror_refs
from .building import LineBuild
from .engine_previews import engine_of, engine_previews
from .layout import Family, missing_line
from .naming import branch_slug
from .publish import live_state, publish_line, rules_of, update_root
from .state import FamilyState, Line

DAY = 86400.0


PULL_REFS = (
    (re.compile(r"refs/pull/(\d+)/head"), "pull/{0}", "pr-{0}"),  # GitHub
    (re.compile(r"refs/merge-requests/(\d+)/head"), "merge-requests/{0}", "mr-{0}"),  # GitLab
)
"""Where a remote keeps its pull (merge) requests' heads: the ref, its label and its slug.

The mirror fetches every ref of the remote, so these arrive with the branches wherever the
remote has them. GitHub keeps a closed request's ref: its preview goes with age (or by hand)."""


@dataclass(frozen=True)
class PreviewRefs:
    """What the specs match: slug → (ref label, commit), and the slugs two refs both make."""

    wanted: dict[str, tuple[str, str]]
    clashes: dict[str, tuple[str, ...]]
    """slug → the refs (full names) that make it: none of them is deployed or removed."""


def preview_trust(label: str) -> Trust:
    """The trust level a preview of ``label`` builds at: ``pull-preview`` for a pull (merge)
    request, which may come from a fork, else ``branch-preview``. A branch whose name looks
    like a request's label (``pull/7``) gets the lower level: wrong only in the safe way."""
    pulls = (re.escape(shown).replace(r"\{0\}", r"\d+") for _, shown, _ in PULL_REFS)
    return "pull-preview" if any(re.fullmatch(p, label) for p in pulls) else "branch-preview"


def preview_refs(refs: dict[str, str], specs: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """slug → (ref label, commit) for every branch and pull request the specs match, but for
    slugs that two refs make (see :func:`match_previews`)."""
    return match_previews(refs, specs).wanted


def match_previews(refs: dict[str, str], specs: tuple[str, ...], branch: str | None = None) -> PreviewRefs:
    """``branch:<glob>`` matches branch names, ``pull:<glob>`` request numbers.

    Slugs are namespaced by kind (``br-<branch>``, ``pr-<n>``, ``mr-<n>``), so a branch named
    ``pr-8`` or ``pull/7`` can never take a request's URL; two branches that clean up to one
    slug (``Feature/X``, ``feature-x``) are a clash: neither is published over the other, and
    the preview that slug serves now is left as it is. ``engine:<engine>`` is ``branch`` (the
    branch the target follows) built with that engine (:mod:`.engine_previews`, ``en-<engine>``)."""
    made: dict[str, dict[str, tuple[str, str]]] = {}  # slug → full ref → (label, commit)
    for spec in specs:
        kind, _, pattern = spec.partition(":")
        matching = {"branch": _branches, "pull": _pulls}.get(kind)
        found = matching(refs, pattern) if matching else engine_previews(refs, pattern, branch)
        for full, label, name, sha in found:
            made.setdefault(name, {})[full] = (label, sha)
    wanted = {name: next(iter(by_ref.values())) for name, by_ref in made.items() if len(by_ref) == 1}
    clashes = {name: tuple(sorted(by_ref)) for name, by_ref in made.items() if len(by_ref) > 1}
    return PreviewRefs(wanted, clashes)


def _branches(refs: dict[str, str], pattern: str) -> list[tuple[str, str, str, str]]:
    heads = (n.removeprefix("refs/heads/") for n in refs if n.startswith("refs/heads/"))
    names = sorted(n for n in heads if fnmatch.fnmatchcase(n, pattern))
    return [(f"refs/heads/{name}", name, branch_slug(name), refs[f"refs/heads/{name}"]) for name in names]


def _pulls(refs: dict[str, str], pattern: str) -> list[tuple[str, str, str, str]]:
    found = []
    for ref, sha in refs.items():
        for shape, label, name in PULL_REFS:
            match = shape.fullmatch(ref)
            if match and fnmatch.fnmatchcase(match[1], pattern):
                found.append((int(match[1]), ref, label.format(match[1]), name.format(match[1]), sha))
    return [(ref, label, name, sha) for _, ref, label, name, sha in sorted(found)]


def deploy_previews(
    config: Config,
    *,
    target: str | None = None,
    force: bool = False,
    progress: Progress = SILENT,
    now: float | None = None,
) -> list[LineResult]:
    source = synced_source(config)
    refs = mirror_refs(source)
    results: list[LineResult] = []
    for family in families(config, target, "previews"):
        results += sync_previews(family, source, refs, force=force, progress=progress, now=now)
    return results


def sync_previews(
    family: Family,
    source: Source,
    refs: dict[str, str],
    *,
    force: bool = False,
    progress: Progress = SILENT,
    now: float | None = None,
) -> list[LineResult]:
    """Deploy new and moved branches, remove the deleted and the expired, one root release."""
    branch = family.config.source.branch or source.default_branch()
    matched = match_previews(refs, preview_specs(family.cfg), branch)
    wanted = matched.wanted
    state = live_state(family)
    family.finish_retirements(state)  # a run that died before retiring a preview's line
    skipped = state.extra.get("removed", {})
    results = [
        _publish(family, source, name, branch, sha, progress, force)
        for name, (branch, sha) in wanted.items()
        if skipped.get(name) != sha
    ]
    results += [_clash(family, name, clashing) for name, clashing in matched.clashes.items()]
    kept = {name: ("", "") for name in matched.clashes}  # a clash leaves what the slug serves
    expired = _expired(family, state, {**kept, **wanted}, now if now is not None else time.time())
    doomed, held = _removable(family, expired)
    results += held
    removed_by_age = {name: wanted[name][1] for name in doomed if name in wanted}
    fresh = [
        r for r in results if r.outcome == "deployed" or (r.outcome == "unchanged" and not state.line(r.name))
    ]

    def change(s: FamilyState) -> FamilyState:
        for r in fresh:
            s = s.with_line(Line(r.name, r.ref, r.ref, _added(s, r.name), now_iso()))
        for name in doomed:
            s = s.without_line(name)
        kept = {k: v for k, v in s.extra.get("removed", {}).items() if k in wanted and wanted[k][1] == v}
        return dataclasses.replace(s, extra={**s.extra, "removed": {**kept, **removed_by_age}})

    note = f"previews: +{len(fresh)} -{len(doomed)}"
    update_root(family, change, note=note, rules=rules_of(family), progress=progress)
    for name in doomed:
        family.remove_line(name)
        results.append(LineResult(family.target, name, "", "", "removed", url=family.url(name)))
    return results


def _publish(
    family: Family, source: Source, name: str, branch: str, sha: str, progress: Progress, force: bool
) -> LineResult:
    base = LineResult(family.target, name, branch, sha, "unchanged", url=family.url(name))
    try:
        lazy = LineBuild(
            family.config,
            source,
            source.commit(sha),
            progress,
            trust=preview_trust(branch),
            site=family.cfg.version_site,
            noindex=True,
            engine=engine_of(branch),
        )
        result = publish_line(family, name, lazy, rules_of(family, force=force))
    except PlanRefused as exc:
        return dataclasses.replace(base, outcome="held", detail=exc.message)
    except SitedeployError as exc:
        return dataclasses.replace(base, outcome="failed", detail=exc.message, retryable=exc.retryable)
    stats = dataclasses.asdict(result.stats) if result.stats else {}
    changes = against_production(family, lazy.unmarked) if result.outcome == "deployed" else None
    pages = dataclasses.asdict(changes) if changes else None
    return dataclasses.replace(base, outcome=result.outcome, release=result.release, stats=stats, pages=pages)


def _clash(family: Family, name: str, clashing: tuple[str, ...]) -> LineResult:
    refs = " and ".join(clashing)
    detail = f"{refs} both make the preview slug {name!r}; rename one of them (neither is published)"
    return LineResult(family.target, name, clashing[0], "", "failed", detail=detail, url=family.url(name))


def _removable(family: Family, names: list[str]) -> tuple[list[str], list[LineResult]]:
    """The previews whose removal the retire mode allows now (holds, ``max_delete``), checked
    before the root stops serving them; the others are reported held and stay served."""
    ok, held = [], []
    for name in names:
        try:
            family.remove_line(name, dry_run=True)
            ok.append(name)
        except PlanRefused as exc:
            held.append(LineResult(family.target, name, "", "", "held", detail=exc.message))
    return ok, held


def _added(state: FamilyState, name: str) -> str:
    old = state.line(name)
    return old.added_at if old else now_iso()


def _expired(family: Family, state: FamilyState, wanted: dict[str, tuple[str, str]], now: float) -> list[str]:
    """Previews whose branch is gone, and those not updated for ``preview_max_age_days``."""
    max_age = family.cfg.preview_max_age_days * DAY
    doomed = []
    for line in state.lines:
        gone = line.name not in wanted
        old = bool(max_age) and now - _seconds(line.updated_at) > max_age
        if gone or old:
            doomed.append(line.name)
    return doomed


def _seconds(iso: str) -> float:
    try:
        return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def delete_preview(
    config: Config, target: str | None, name: str, *, dry_run: bool = False, force: bool = False
) -> int:
    """Remove one preview now; it comes back only when its branch moves."""
    family = (
        families(config, target, "previews")[0] if target is None else Family.of(config, target, "previews")
    )
    state = live_state(family)
    line = state.line(name)
    if line is None:
        raise missing_line(family, name)
    with family.line(name) as t:
        from ..release.records import read_release

        live = t.live_release()
        record = read_release(t, live) if live else None

    def change(s: FamilyState) -> FamilyState:
        removed = {**s.extra.get("removed", {}), name: record.commit if record else ""}
        return dataclasses.replace(s.without_line(name), extra={**s.extra, "removed": removed})

    change(state)
    files = family.remove_line(name, dry_run=True, force=force)  # refuse before any write
    if dry_run:
        return files
    update_root(family, change, note=f"delete preview {name}", rules=rules_of(family, force=force))
    return family.remove_line(name, force=force)
