"""The versions commands as library functions (the CLI and the agent call these).

deploy  build each version whose tag moved (or is new) into its own line, then update the root
alias / unalias / set-default   one root release each
delete  unlink a version from the root, then remove its line (refused while an alias names it)
rollback  a version's own line back to an earlier release (pins that line only)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..commands import DeployResult, switch_back, synced_source
from ..config import Config
from ..errors import ConfigError, PlanRefused, RollbackError, SitedeployError
from ..progress import SILENT, Progress
from ..release.records import now_iso, read_release
from ..source import Source
from .building import LineBuild
from .canonical import Canonical, plan_canonical
from .dropped import dropped_gate
from .layout import Family, missing_line
from .naming import RefVersion, check_name, versions_from_refs
from .publish import (
    FamilyChange,
    RootResult,
    follow_rules,
    live_state,
    publish_line,
    rules_of,
    then,
    update_root,
)
from .sitemap import site_of
from .state import Alias, FamilyState, Line


@dataclass(frozen=True)
class LineResult:
    target: str
    name: str
    ref: str
    commit: str
    outcome: str
    """deployed, unchanged (the line already serves the ref's commit), held or failed."""
    release: str | None = None
    detail: str = ""
    url: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
    retryable: bool = False
    """A failure that may pass by itself (a held lock, a network blip): the agent tries again."""
    pages: dict[str, list[str]] | None = None
    """A preview: the pages it adds, changes and removes against production (sitedeploy.forge.pages)."""
    site_url: str = ""
    """A version just published: the site its ``sitemap.xml`` names (:mod:`.sitemap`)."""

    def summary(self) -> str:
        where = f" at {self.url}" if self.url else ""
        text = f"{self.target}: {self.name} ({self.ref} {self.commit[:8]}) {self.outcome}{where}"
        return text + (f": {self.detail}" if self.detail else "")


def families(config: Config, target: str | None, kind: str = "versions") -> list[Family]:
    names = [n for n, cfg in config.target(target).items() if getattr(cfg, kind)]
    if not names:
        where = f"target '{target}' has no {kind} key" if target else f"no target has a {kind} key"
        raise ConfigError(
            f"{config.path.name}: {where}; add "
            + ('versions = "tag:v*"' if kind == "versions" else 'previews = "branch:*"')
            + " to a [targets.<name>] table"
        )
    return [Family.of(config, n, kind) for n in names]  # type: ignore[arg-type]


def mirror_refs(source: Source) -> dict[str, str]:
    """Branches and tags of the (just synced) mirror, annotated tags peeled to commits."""
    from ..agent.refs import parse_ls_remote

    return parse_ls_remote(source.git.text("ls-remote", str(source.mirror_dir), doing="list the refs"))


# --- deploy -------------------------------------------------------------------------------------


def deploy_versions(
    config: Config,
    *,
    target: str | None = None,
    only: str | None = None,
    rebuild: bool = False,
    force: bool = False,
    progress: Progress = SILENT,
) -> list[LineResult]:
    """Publish every version the refs define whose line does not serve its commit yet."""
    source = synced_source(config)
    refs = mirror_refs(source)
    results: list[LineResult] = []
    for family in families(config, target):
        cfg = family.cfg
        assert cfg.versions is not None
        wanted = versions_from_refs(refs, cfg.versions, cfg.version_format, cfg.version_title)
        if only is not None and only not in wanted:
            raise ConfigError(
                f"--version {only}: no ref of {cfg.versions} gives it; known: {', '.join(wanted)}"
            )
        deleted = live_state(family).extra.get("deleted", {})
        picked = [
            v for v in wanted.values() if only == v.name or (only is None and deleted.get(v.name) != v.commit)
        ]
        results += sync_versions(family, source, picked, rebuild=rebuild, force=force, progress=progress)
    return results


def sync_versions(
    family: Family,
    source: Source,
    versions: list[RefVersion],
    *,
    rebuild: bool = False,
    force: bool = False,
    progress: Progress = SILENT,
) -> list[LineResult]:
    """Publish each version whose line does not serve its ref's commit, then the root once."""
    family.finish_retirements(live_state(family))  # a run that died before retiring a line
    projected = _projected(family, live_state(family), versions)
    first = projected.resolve(projected.default or "")  # the default's pages: known before the others'
    done: dict[str, LineResult] = {}
    for v in sorted(versions, key=lambda v: v.name != first):
        canonical = plan_canonical(family, projected, v.name)
        done[v.name] = publish_version(
            family, source, v, rebuild=rebuild, force=force, progress=progress, canonical=canonical
        )
    results = [done[v.name] for v in versions]  # in the refs' order, whatever was published first
    state = live_state(family)
    # Link what was deployed, and a version whose line is live but not linked (a run that
    # died between the two transactions); leave every other version's entry as it is.
    fresh = {r.name for r in results if r.outcome == "deployed"}
    fresh |= {r.name for r in results if r.outcome == "unchanged" and state.line(r.name) is None}
    sites = {r.name: r.site_url for r in results if r.outcome == "deployed"}
    lines = [_line(v, state.line(v.name), sites.get(v.name)) for v in versions if v.name in fresh]
    if lines or family.cfg.aliases:
        change = then(*[_adding(line) for line in lines], follow_rules(family))
        update_root(family, change, note=_note(lines), rules=rules_of(family, force=force), progress=progress)
    return results


def _projected(family: Family, state: FamilyState, versions: list[RefVersion]) -> FamilyState:
    """The family state once ``versions`` are linked and the aliases follow their rules: whose
    pages the others' canonical links point at."""
    change = then(*[_adding(_line(v, state.line(v.name))) for v in versions], follow_rules(family))
    try:
        return change(state)
    except SitedeployError:  # a clash is reported by the root's own update
        return state


def publish_version(
    family: Family,
    source: Source,
    version: RefVersion,
    *,
    rebuild: bool = False,
    force: bool = False,
    progress: Progress = SILENT,
    canonical: Canonical | None = None,
) -> LineResult:
    """One version: nothing at all when its line serves the ref's commit (no build, no plan)."""
    base = LineResult(family.target, version.name, version.ref, version.commit, "unchanged")
    with family.line(version.name) as line:
        live = line.live_release()
        record = read_release(line, live) if live else None
    if record is not None and record.commit == version.commit and not rebuild:
        return dataclasses.replace(base, release=live)
    try:
        lazy = LineBuild(
            family.config,
            source,
            source.commit(version.commit),
            progress,
            trust="production",  # versions come from the operator's config: tags and branches
            site=family.cfg.version_site,
            canonical=canonical,
        )
        rules = rules_of(family, force=force, removed_pages=family.cfg.removed_pages)
        notes: list[str] = []
        gate = dropped_gate(family, live_state(family), version, rules, notes, progress)
        result = publish_line(family, version.name, lazy, rules, gate=gate, notes=notes)
    except PlanRefused as exc:
        return dataclasses.replace(base, outcome="held", detail=exc.message)
    except SitedeployError as exc:  # one version's failure must not hold back the others
        return dataclasses.replace(base, outcome="failed", detail=exc.message, retryable=exc.retryable)
    done = _result(base, result)
    if result.outcome == "deployed":
        built = lazy.get()  # built already: the transaction published it
        done = dataclasses.replace(done, site_url=site_of(built.root, built.manifest))
    return done


def _result(base: LineResult, result: DeployResult) -> LineResult:
    stats = dataclasses.asdict(result.stats) if result.stats else {}
    return dataclasses.replace(base, outcome=result.outcome, release=result.release, stats=stats)


def _line(version: RefVersion, old: Line | None, site_url: str | None = None) -> Line:
    """``site_url``: of the build just published; None: the line's recorded one stays."""
    now = now_iso()
    site = site_url if site_url is not None else (old.site_url if old else "")
    return Line(version.name, version.title, version.ref, old.added_at if old else now, now, site)


def _adding(line: Line) -> FamilyChange:
    def change(state: FamilyState) -> FamilyState:
        deleted = {k: v for k, v in state.extra.get("deleted", {}).items() if k != line.name}
        return dataclasses.replace(state.with_line(line), extra={**state.extra, "deleted": deleted})

    return change


def _note(lines: list[Line]) -> str:
    return "versions: " + (
        ", ".join(f"{v.name} ({v.ref})" for v in lines) if lines else "aliases follow their rules"
    )


# --- aliases, default, delete -------------------------------------------------------------------


def set_alias(
    config: Config, target: str | None, alias: str, version: str, *, force: bool = False
) -> RootResult:
    family = _one(config, target)
    check_name(alias, "alias")
    if alias in family.cfg.aliases:
        raise ConfigError(
            f"targets.{family.target}.aliases: '{alias}' follows the rule '{family.cfg.aliases[alias]}' in "
            f"{config.path.name}; change it there (git decides), or pick another alias name"
        )

    def change(state: FamilyState) -> FamilyState:
        if state.line(version) is None:
            raise missing_line(family, version)
        if state.line(alias) is not None:
            raise ConfigError(
                f"'{alias}' is a version of target '{family.target}'; an alias needs another name"
            )
        return state.with_alias(Alias(alias, version))

    return update_root(
        family, change, note=f"alias {alias} -> {version}", rules=rules_of(family, force=force)
    )


def remove_alias(
    config: Config, target: str | None, alias: str, *, force: bool = False, dry_run: bool = False
) -> RootResult:
    family = _one(config, target)
    if alias in family.cfg.aliases:
        raise ConfigError(
            f"targets.{family.target}.aliases: '{alias}' is set by a rule in {config.path.name}; "
            "remove it there"
        )

    def change(state: FamilyState) -> FamilyState:
        if state.alias(alias) is None:
            raise ConfigError(
                f"target '{family.target}' has no alias '{alias}'; see 'sitedeploy versions list'"
            )
        if state.default == alias:
            raise PlanRefused(
                f"'{alias}' is the default of target '{family.target}'; set-default another first"
            )
        return state.without_alias(alias)

    dry = _dry(family, change, alias if not family.links else None, force)  # refuse before any write
    if dry_run:
        return dry
    result = update_root(family, change, note=f"unalias {alias}", rules=rules_of(family, force=force))
    if not family.links:
        return dataclasses.replace(result, retired_files=family.remove_line(alias, force=force))
    return result


def _dry(family: Family, change: FamilyChange, line: str | None, force: bool) -> RootResult:
    """What a change and the retiring of ``line`` would do: every check, nothing written."""
    state = change(live_state(family))
    files = family.remove_line(line, dry_run=True, force=force) if line else 0
    return RootResult(state, changed=False, release=None, retired_files=files)


def set_default(config: Config, target: str | None, name: str, *, force: bool = False) -> RootResult:
    family = _one(config, target)
    if family.cfg.default_version:
        raise ConfigError(
            f"targets.{family.target}.default_version is '{family.cfg.default_version}' in "
            f"{config.path.name}; change it there (git decides)"
        )

    def change(state: FamilyState) -> FamilyState:
        if state.resolve(name) is None:
            raise missing_line(family, name)
        return dataclasses.replace(state, default=name)

    return update_root(family, change, note=f"default -> {name}", rules=rules_of(family, force=force))


def delete_version(
    config: Config, target: str | None, version: str, *, force: bool = False, dry_run: bool = False
) -> RootResult:
    """Unlink ``version`` from the root, then remove its line; refused while anything names it."""
    family = _one(config, target)

    def change(state: FamilyState) -> FamilyState:
        if state.line(version) is None:
            raise missing_line(family, version)
        names = state.aliases_of(version)
        if names:
            raise PlanRefused(
                f"target '{family.target}': version {version} is served as {', '.join(names)}; "
                f"move or remove {'that alias' if len(names) == 1 else 'those aliases'} first "
                "('sitedeploy versions alias' / 'unalias')"
            )
        if state.default == version:
            raise PlanRefused(
                f"target '{family.target}': {version} is the default; set-default another first"
            )
        # Its tag still exists: remember the commit so that deploys do not bring it back
        # until the tag moves (or 'versions deploy --version' asks for it).
        deleted = {**state.extra.get("deleted", {}), version: _live_commit(family, version)}
        return dataclasses.replace(state.without_line(version), extra={**state.extra, "deleted": deleted})

    dry = _dry(family, change, version, force)  # holds and max_delete refuse before any write
    if dry_run:
        return dry
    result = update_root(family, change, note=f"delete {version}", rules=rules_of(family, force=force))
    return dataclasses.replace(result, retired_files=family.remove_line(version, force=force))


def _live_commit(family: Family, name: str) -> str | None:
    with family.line(name) as line:
        live = line.live_release()
        record = read_release(line, live) if live else None
    return record.commit if record else None


def rollback_version(
    config: Config,
    target: str | None,
    version: str,
    *,
    to: str | None = None,
    force: bool = False,
    progress: Progress = SILENT,
) -> DeployResult:
    """Switch one version's line back to an earlier retained release; pins that line only."""
    family = _one(config, target)
    if live_state(family).line(version) is None:
        raise missing_line(family, version)
    with family.line(version) as line:
        release = _find(line.list_releases(), line, to) if to else None
        result = switch_back(line, rules_of(family, force=force), release, progress=progress, pin=True)
    if not family.links:
        from .s3 import sync_alias_copies

        sync_alias_copies(family, live_state(family), rules_of(family, force=True), progress)
    return result


def _find(releases: list[str], line: Any, to: str) -> str:
    if to in releases:
        return to
    for rid in reversed(releases):
        record = read_release(line, rid)
        if record and len(to) >= 4 and record.commit.startswith(to.lower()):
            return rid
    raise RollbackError(
        f"'{to}' is not a retained release or commit of this version; see 'sitedeploy versions list'"
    )


def _one(config: Config, target: str | None) -> Family:
    found = families(config, target)
    if len(found) > 1:
        raise ConfigError(
            f"several targets serve versions ({', '.join(f.target for f in found)}); pass --target"
        )
    return found[0]
