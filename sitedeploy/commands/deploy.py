"""build and deploy: publish a commit to targets through the release transaction.

A manual deploy obeys the same rules as the agent: a pinned or suspended target, a commit
marked bad, a failed signature check or a failed link gate refuse with one line, and
``--force`` overrides them (history records that it did). The build runs before the target's
lock is taken, so a rollback during a long build is not blocked by it.
"""

from __future__ import annotations

from collections.abc import Callable

from ..build import BuildPlan, Built, SiteJob, plan, shared
from ..config import Config, TargetConfig
from ..config.from_git import uncommitted_note
from ..errors import GateError, PlanRefused
from ..progress import SILENT, Progress, stage
from ..release.control import pinned_after_rollback
from ..release.records import Action, ReleaseRecord, read_control, read_history, read_release
from ..release.transaction import Rules, Transaction, check_hold
from ..source import Source
from ..targets import Target, open_target
from ..targets.base import MultiHost
from ..targets.dryrun import DryRun
from .common import (
    DeployResult,
    Failures,
    Outcome,
    each_target,
    new_record,
    open_source,
    rules_for,
)

Gate = Callable[[Built], None]


def build(
    config: Config,
    *,
    ref: str | None = None,
    site: str | None = None,
    progress: Progress = SILENT,
    site_index: int | None = None,
    push: bool = False,
) -> Built:
    """Build ``ref`` into the state folder; ``push``: and put every site's build in the shared
    cache (CI's half of ``[build] cache``); ``site_index``: the n-th site only (an Indexed Job)."""
    config = shared.for_push(config) if push else config
    source = _fetched(config, progress)
    commit = source.resolve(ref, config.source.branch)
    if site_index is not None:
        site = shared.site_at(plan(config, source, commit, trust="production").jobs, site_index)
    planned = plan(config, source, commit, progress, trust="production", only=site)
    _say_uncommitted(config, planned.jobs, progress)
    built = planned.get()
    if push:
        stored, present, evicted = shared.push_built(planned.config, planned.jobs, progress)
        progress.step(
            f"shared cache: {stored} stored, {present} already there, {evicted} old entries evicted"
        )
    return built


def deploy(
    config: Config,
    *,
    target: str | None = None,
    ref: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    force_delete: bool = False,
    link_check: bool = True,
    lock_timeout: float | None = None,
    progress: Progress = SILENT,
    failures: Failures | None = None,
) -> list[DeployResult]:
    """Build ``ref`` (default: the tip of the source branch) and publish it to the targets.

    A target that serves versions (``versions = "tag:…"``) is published by ``sitedeploy
    versions deploy``, never by a plain deploy of one commit over its root: named, it is
    refused; among all targets, it is skipped with a note. ``failures``: see ``each_target``.
    """
    targets = _plain_targets(config, target, progress)
    source = _fetched(config, progress)
    commit = source.resolve(ref, config.source.branch)
    notes: list[str] = []
    lazy = plan(config, source, commit, progress, trust="production")
    _say_uncommitted(config, lazy.jobs, progress)
    gate = _link_gate(config, force, notes) if link_check and config.agent.link_check else None

    def deploy_one(name: str, cfg: TargetConfig) -> DeployResult:
        rules = rules_for(cfg, force=force, force_delete=force_delete, lock_timeout=lock_timeout)
        with open_target(name, cfg, config) as t:
            check_hold(name, read_control(t), commit.sha, force=force)  # refuse before building
            return publish(t, rules, lazy, lazy.key_for(cfg), dry_run=dry_run, gate=gate, notes=notes)

    return each_target(targets, failures, deploy_one)


def _fetched(config: Config, progress: Progress) -> Source:
    source = open_source(config)
    with stage(progress, "fetch", say=f"fetching {source.url}"):  # a first clone takes long
        source.sync()
    return source


def _say_uncommitted(config: Config, jobs: list[SiteJob], progress: Progress) -> None:
    note = uncommitted_note(config, sorted({job.config.path for job in jobs}))
    if note:
        progress.step(note)


def _plain_targets(config: Config, target: str | None, progress: Progress) -> dict[str, TargetConfig]:
    chosen = config.target(target)
    versioned = [name for name, cfg in chosen.items() if cfg.versions]
    if versioned and target is not None:
        raise PlanRefused(
            f"target '{target}' serves versions (versions = \"{chosen[target].versions}\"); "
            "publish it with 'sitedeploy versions deploy'"
        )
    for name in versioned:
        progress.step(f"{name}: serves versions; skipped (use 'sitedeploy versions deploy')")
    return {name: cfg for name, cfg in chosen.items() if not cfg.versions}


def publish(
    t: Target,
    rules: Rules,
    lazy: BuildPlan,
    key: str,
    *,
    action: Action = "deploy",
    dry_run: bool = False,
    gate: Gate | None = None,
    notes: list[str] | None = None,
    pin: bool = False,
) -> DeployResult:
    """Publish one commit to one target: signature, build (once, outside the lock), gate,
    transaction. Every release of a commit passes here, so the signature rule lives here.

    ``gate`` (the link check; the agent's also asks whether the ref moved on) runs on the build
    before the lock is taken; it raises to hold the release back, leaving the live one as it is.
    """
    target: Target = DryRun(t) if dry_run else t
    redo = _hosts_disagree(t)
    if action == "deploy" and _serves(_live_record(target), key) and not redo and _recorded(target):
        return DeployResult(t.name, lazy.commit, "unchanged", target.live_release())
    forced = lazy.signature.hold(force=rules.force)  # before the build: unsigned code never runs
    built = lazy.get()
    if gate is not None:
        gate(built)
    note = "; ".join([*([forced] if forced else []), *(notes or [])])
    with (
        stage(lazy.progress, f"publish {t.name}", say=f"{t.name}: publishing"),
        Transaction(target, rules, action, note=note, progress=lazy.progress) as tx,
    ):
        whole = tx.live_manifest is not None  # a deleted manifest: publish a new, recorded release
        if action == "deploy" and _serves(tx.live_record, key) and not redo and whole:
            assert tx.live_record is not None
            return DeployResult(t.name, lazy.commit, "unchanged", tx.live_record.id)
        record = new_record(target, built, key)
        tx.publish(record, built.manifest, built.root)
        if pin and tx.live_record is not None:
            tx.control_change = pinned_after_rollback(tx.live_record, record)
    outcome: Outcome = "dry-run" if dry_run else ("deployed" if action == "deploy" else "rolled back")
    bad = tx.live_record.commit if pin and tx.live_record and tx.live_record.commit != record.commit else None
    return DeployResult(
        t.name,
        lazy.commit,
        outcome,
        record.id,
        tx.plan,
        tx.stats,
        tuple(built.warnings),
        built.warning_count,
        marked_bad=bad,
    )


def _live_record(t: Target) -> ReleaseRecord | None:
    live = t.live_release()
    return read_release(t, live) if live else None


def _recorded(t: Target) -> bool:
    """False after a run died between the switch and its history entry (the transaction,
    entered below, records the live release), or when the live manifest was deleted."""
    history, live = read_history(t), t.live_release()
    return bool(history) and history[-1].release == live and read_meta_exists(t, live)


def read_meta_exists(t: Target, live: str | None) -> bool:
    return live is not None and t.read_meta(f"manifests/{live}.json") is not None


def _serves(record: ReleaseRecord | None, key: str) -> bool:
    return record is not None and record.build_key == key


def _hosts_disagree(t: Target) -> bool:
    """Servers of one target on different releases (a run died mid-switch): publish again."""
    return isinstance(t, MultiHost) and len(set(t.live_by_host().values())) > 1


def _link_gate(config: Config, force: bool, notes: list[str]) -> Gate:
    """The agent's link gate on a manual deploy; with ``force``, a failure becomes a note."""
    from ..build.linkgate import LinkIndex, check_links

    path = config.state_dir / "agent" / "links.json"

    def gate(built: Built) -> None:
        index = LinkIndex.load(path)
        try:
            check_links(built, index)
        except GateError as exc:
            if not force:
                raise GateError(f"{exc.message}; fix the links, or pass --no-link-check or --force") from None
            notes.append(f"forced: {exc.message}")
        finally:
            index.save(path)

    return gate
