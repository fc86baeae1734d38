"""build and deploy: publish a commit to targets, under each target's lock."""

from __future__ import annotations

from collections.abc import Callable

from ..build import Built, build_release, plan_sites
from ..config import Config, TargetConfig
from ..errors import PlanRefused
from ..gitconfig import build_config_at
from ..progress import SILENT, Progress
from ..release import records as state
from ..release.diff import Plan, diff
from ..release.manifest import Manifest
from ..targets import Target
from ..targets.base import MultiHost
from .common import (
    DeployResult,
    LazyBuild,
    Outcome,
    history_entry,
    new_record,
    opened,
    prune,
    record_interrupted_switch,
    synced_source,
)


def build(
    config: Config, *, ref: str | None = None, site: str | None = None, progress: Progress = SILENT
) -> Built:
    source = synced_source(config)
    commit = source.resolve(ref, config.source.branch)
    config = build_config_at(config, source, commit, warn=progress.step)
    plans = plan_sites(config, source, commit, only=site)
    return build_release(config, source, commit, plans=plans, progress=progress)


def deploy(
    config: Config,
    *,
    target: str | None = None,
    ref: str | None = None,
    dry_run: bool = False,
    force_delete: bool = False,
    progress: Progress = SILENT,
) -> list[DeployResult]:
    """Build ``ref`` (default: the tip of the source branch) and publish it to the targets."""
    targets = config.target(target)
    source = synced_source(config)
    commit = source.resolve(ref, config.source.branch)
    lazy = LazyBuild(config, source, commit, progress)
    results = []
    for name, target_config in targets.items():
        with opened(name, target_config, config) as t:
            results.append(publish(t, target_config, lazy, dry_run=dry_run, force_delete=force_delete))
    return results


def publish(
    t: Target,
    cfg: TargetConfig,
    lazy: LazyBuild,
    *,
    dry_run: bool = False,
    force_delete: bool = False,
    action: state.Action = "deploy",
    gate: Callable[[Built], None] | None = None,
) -> DeployResult:
    """Publish one commit to one target, under its lock.

    ``gate`` (the agent's link check) runs on the build before anything is staged; it raises
    (``GateError``) to hold the release back, leaving the live one untouched.
    """
    if dry_run:
        return _dry_run(t, cfg, lazy)
    with state.locked(t, t.name, purpose=action, timeout=cfg.lock_timeout):
        record_interrupted_switch(t)
        live = t.live_release()
        live_record = state.read_release(t, live) if live else None
        already_live = live_record is not None and live_record.build_key == lazy.key_for(cfg)
        if already_live and action == "deploy" and not _hosts_disagree(t):
            return DeployResult(t.name, lazy.commit, "unchanged", live)
        built = lazy.get()
        if gate is not None:
            gate(built)
        live_manifest = state.read_manifest(t, live) if live else None
        plan = diff(built.manifest, live_manifest)
        check_plan(t.name, cfg, plan, built.manifest, force_delete)
        record = new_record(t, built, lazy.key_for(cfg))
        lazy.progress.step(f"{t.name}: publishing {plan.summary()}")
        stats = t.stage(record, built.root, built.manifest, plan, lazy.progress)
        state.write_release(t, record, built.manifest)
        t.activate(record, built.manifest, live_manifest)
        state.append_history(t, history_entry(action, record, plan))
        prune(t, cfg.keep_releases)
    outcome: Outcome = "deployed" if action == "deploy" else "rolled back"
    return DeployResult(t.name, lazy.commit, outcome, record.id, plan, stats)


def _hosts_disagree(t: Target) -> bool:
    """Servers of one target on different releases (a run died mid-switch): publish again."""
    return isinstance(t, MultiHost) and len(set(t.live_by_host().values())) > 1


def _dry_run(t: Target, cfg: TargetConfig, lazy: LazyBuild) -> DeployResult:
    live = t.live_release()
    live_record = state.read_release(t, live) if live else None
    if live_record and live_record.build_key == lazy.key_for(cfg):
        return DeployResult(t.name, lazy.commit, "unchanged", live)
    built = lazy.get()
    plan = diff(built.manifest, state.read_manifest(t, live) if live else None)
    return DeployResult(t.name, lazy.commit, "dry-run", live, plan)


def check_plan(name: str, cfg: TargetConfig, plan: Plan, manifest: Manifest, force_delete: bool) -> None:
    """Refuse plans that are almost certainly mistakes, before anything is written."""
    pages = [p for p in manifest if p.endswith(".html")]
    if not pages:
        raise PlanRefused(
            f"target '{name}': the build has no HTML pages ({len(manifest)} files); refusing to publish "
            "an empty site — check the sites' paths and mounts"
        )
    if len(plan.deletes) > cfg.max_delete and not force_delete:
        raise PlanRefused(
            f"target '{name}' would delete {len(plan.deletes)} files (max_delete = {cfg.max_delete}); "
            "raise max_delete or pass --force-delete"
        )
