"""The subcommands. Each is a few lines around one call into ``sitedeploy.commands``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from .. import commands
from ..commands import DeployResult, Failures
from ..config import Config, LocalTargetConfig
from ..progress import Timed
from .main import Options, cli, emit, emit_each, pass_options, run

target_option = click.option("--target", "-t", help="Act on this target only [default: all].")
full_build_option = click.option(
    "--full-build", is_flag=True, help="Build MkDocs sites in full, not incrementally ([build] incremental)."
)


def full(config: Config, full_build: bool) -> Config:
    """The config with incremental MkDocs builds off for this run, when asked."""
    if not full_build:
        return config
    return dataclasses.replace(config, build=dataclasses.replace(config.build, incremental=False))


lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Wait this long for another deploy's lock [default: the target's lock_timeout].",
)
force_option = click.option(
    "--force",
    is_flag=True,
    help="Deploy although the target is pinned or suspended, the commit is marked bad, "
    "unsigned or fails the link gate (history records it).",
)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path), default=".")
@pass_options
def init(opts: Options, directory: Path) -> None:
    """Write deploy.toml for the repo in DIRECTORY (a root mkdocs.yml, sites/, or an example site)."""
    from .scaffold import scaffold

    done = run(opts, lambda: scaffold(directory))
    data = {
        "layout": done.layout,
        "created": [str(p) for p in done.written],
        "appended": [str(p) for p in done.appended],
        "git_repo": done.in_git_repo,
    }
    lines = [f"found: {done.layout}", "created:", *(f"  {p}" for p in done.written)]
    lines += [f"appended sitedeploy's lines to {p}" for p in done.appended]
    emit(opts, data, lambda: "\n".join([*lines, done.next_step()]))


@cli.command()
@click.option(
    "--ref", "--commit", "ref", help="Branch, tag or commit [default: the tip of the source branch]."
)
@click.option("--site", help="Build this site only.")
@click.option(
    "--site-index",
    type=click.IntRange(min=0),
    metavar="N",
    help="Build the N-th site only (from 0, in the plan's order): one site per Kubernetes Indexed Job pod.",
)
@click.option(
    "--push", is_flag=True, help="Put every site's build in the shared cache ([build] cache), signed."
)
@full_build_option
@pass_options
def build(
    opts: Options, ref: str | None, site: str | None, site_index: int | None, push: bool, full_build: bool
) -> None:
    """Build a commit into the state folder without publishing it (--push: for other machines too)."""
    config = full(run(opts, opts.load), full_build)
    built = run(
        opts,
        lambda: commands.build(
            config, ref=ref, site=site, site_index=site_index, push=push, progress=opts.progress()
        ),
    )
    data = {
        "commit": built.commit.sha,
        "path": str(built.root),
        "files": len(built.manifest),
        "bytes": built.manifest.total_bytes,
        "sites": [dataclasses.asdict(s) for s in built.sites],
    }
    emit(
        opts,
        data,
        lambda: "\n".join(
            [f"built {built.commit.short} ({built.commit.subject}) into {built.root}"]
            + [f"  {s.name} at {s.mount}: {_site_state(s)}" for s in built.sites]
        ),
    )


def _site_state(site: Any) -> str:
    return "fetched from the shared cache" if site.fetched else "reused" if site.reused else str(site.summary)


@cli.command()
@target_option
@click.option("--ref", help="Branch, tag or commit [default: the tip of the source branch].")
@click.option("--dry-run", is_flag=True, help="Run every check and print the plan; change nothing.")
@force_option
@click.option("--force-delete", is_flag=True, help="Allow more deletes than max_delete.")
@click.option("--no-link-check", is_flag=True, help="Skip the link gate ([agent] link_check).")
@full_build_option
@lock_timeout_option
@pass_options
def deploy(
    opts: Options,
    target: str | None,
    ref: str | None,
    dry_run: bool,
    force: bool,
    force_delete: bool,
    no_link_check: bool,
    full_build: bool,
    lock_timeout: float | None,
) -> None:
    """Build a commit and publish it atomically to the targets."""
    config = full(run(opts, opts.load), full_build)
    failures: Failures = []
    timed = Timed(opts.progress())  # where the time went, shown under the results
    results: list[DeployResult] = run(
        opts,
        lambda: commands.deploy(
            config,
            target=target,
            ref=ref,
            dry_run=dry_run,
            force=force,
            force_delete=force_delete,
            link_check=not no_link_check,
            lock_timeout=lock_timeout,
            progress=timed,
            failures=failures,
        ),
    )
    emit_each(
        opts,
        failures,
        [_deploy_json(r) for r in results],
        lambda: "\n".join([*(_deploy_text(config, r, opts) for r in results), timed.summary()]).strip(),
    )


def _deploy_json(r: DeployResult) -> dict[str, Any]:
    plan = r.plan
    return {
        "target": r.target,
        "commit": r.commit.sha,
        "outcome": r.outcome,
        "release": r.release,
        "uploads": [dataclasses.asdict(u) for u in plan.uploads] if plan else [],
        "deletes": list(plan.deletes) if plan else [],
        "stats": dataclasses.asdict(r.stats) if r.stats else None,
        "warning_count": r.warning_count,
        "warnings": list(r.warnings),
    }


def _deploy_text(config: Any, r: DeployResult, opts: Options) -> str:
    lines = [r.summary()]
    if r.warning_count:
        lines.append(f"  {r.warning_count} build warning(s); the first:")
        lines += [f"    {w}" for w in r.warnings[:5]]
    if r.outcome == "dry-run" and r.plan:
        lines += [f"  {line}" for line in r.plan.lines()]
    elif r.stats:
        lines.append(f"  {r.stats.summary()}")
    target = config.targets[r.target]
    if isinstance(target, LocalTargetConfig) and r.outcome != "dry-run":
        current = config.resolve(target.path) / "current"
        lines.append(f"  served from {current}  (browse: sitedeploy serve --target {r.target})")
    return "\n".join(lines)


@cli.command()
@target_option
@click.option("--to", "to", help="A release id or commit [default: the release before the live one].")
@click.option("--force", is_flag=True, help="Roll back to a release whose commit is marked bad.")
@click.option("--version", "version", help="A versioned target: roll back this version only.")
@lock_timeout_option
@pass_options
@click.pass_context
def rollback(
    ctx: click.Context,
    opts: Options,
    target: str | None,
    to: str | None,
    force: bool,
    version: str | None,
    lock_timeout: float | None,
) -> None:
    """Put an earlier release back, without a rebuild when it is still kept. Pins the target."""
    if version is not None:  # one version's own line (sitedeploy.versions)
        from .versions import versions_rollback

        ctx.invoke(versions_rollback, version=version, target=target, to=to, force=force, as_json=False)
        return
    failures: Failures = []
    results: list[DeployResult] = run(
        opts,
        lambda: commands.rollback(
            opts.load(),
            target=target,
            to=to,
            force=force,
            lock_timeout=lock_timeout,
            progress=opts.progress(),
            failures=failures,
        ),
    )
    emit_each(
        opts,
        failures,
        [_deploy_json(r) for r in results],
        lambda: "\n".join(_rollback_text(r) for r in results),
    )


def _rollback_text(r: DeployResult) -> str:
    line = f"{r.target}: rolled back to {r.commit.sha[:8]} ({r.release})"
    if r.marked_bad:
        bad = r.marked_bad[:8]
        line += f"; marked {bad} bad, so no deploy brings it back ('sitedeploy unmark {bad}' clears it)"
    return line + "; pinned — 'sitedeploy resume' lets automatic deploys continue"


@cli.command()
@target_option
@lock_timeout_option
@pass_options
def resume(opts: Options, target: str | None, lock_timeout: float | None) -> None:
    """Unpin (and unsuspend) targets so deploys continue."""
    failures: Failures = []
    names = run(
        opts,
        lambda: commands.resume(opts.load(), target=target, lock_timeout=lock_timeout, failures=failures),
    )
    emit_each(opts, failures, names, lambda: "\n".join(f"{n}: resumed" for n in names))


@cli.command()
@target_option
@click.option("--reason", default="", help="Shown by status.")
@lock_timeout_option
@pass_options
def suspend(opts: Options, target: str | None, reason: str, lock_timeout: float | None) -> None:
    """A release freeze: no deploy, manual or automatic, until 'resume' (or --force)."""
    failures: Failures = []
    names = run(
        opts,
        lambda: commands.suspend(
            opts.load(), target=target, reason=reason, lock_timeout=lock_timeout, failures=failures
        ),
    )
    emit_each(opts, failures, names, lambda: "\n".join(f"{n}: suspended" for n in names))


@cli.command("mark-bad")
@click.argument("commit")
@target_option
@click.option("--reason", default="", help="Shown by status.")
@lock_timeout_option
@pass_options
def mark_bad(opts: Options, commit: str, target: str | None, reason: str, lock_timeout: float | None) -> None:
    """Never deploy COMMIT (a commit, branch or tag) to the targets until 'unmark'."""
    failures: Failures = []
    names = run(
        opts,
        lambda: commands.mark_bad(
            opts.load(), commit, target=target, reason=reason, lock_timeout=lock_timeout, failures=failures
        ),
    )
    emit_each(opts, failures, names, lambda: "\n".join(f"{n}: {commit} marked bad" for n in names))


@cli.command()
@click.argument("commit")
@target_option
@lock_timeout_option
@pass_options
def unmark(opts: Options, commit: str, target: str | None, lock_timeout: float | None) -> None:
    """Let a commit marked bad (by a rollback or by hand) be deployed again."""
    failures: Failures = []
    names = run(
        opts,
        lambda: commands.unmark(
            opts.load(), commit, target=target, lock_timeout=lock_timeout, failures=failures
        ),
    )
    emit_each(opts, failures, names, lambda: "\n".join(f"{n}: {commit} unmarked" for n in names))
