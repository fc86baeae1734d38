"""The subcommands. Each is a few lines around one call into ``sitedeploy.commands``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from .. import commands
from ..commands import DeployResult, TargetStatus, VerifyResult
from ..config import Config, LocalTargetConfig
from ..errors import ConfigError
from ..release.records import HistoryEntry
from .main import Options, cli, emit, pass_options, run

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
    from ..scaffold import scaffold

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
@click.option("--ref", help="Branch, tag or commit [default: the tip of the source branch].")
@click.option("--site", help="Build this site only.")
@full_build_option
@pass_options
def build(opts: Options, ref: str | None, site: str | None, full_build: bool) -> None:
    """Build a commit into the state folder without publishing it."""
    config = full(run(opts, opts.load), full_build)
    built = run(opts, lambda: commands.build(config, ref=ref, site=site, progress=opts.progress()))
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
            + [f"  {s.name} at {s.mount}: {'reused' if s.reused else s.summary}" for s in built.sites]
        ),
    )


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
            progress=opts.progress(),
        ),
    )
    emit(
        opts,
        [_deploy_json(r) for r in results],
        lambda: "\n".join(_deploy_text(config, r, opts) for r in results),
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
@pass_options
def status(opts: Options, target: str | None) -> None:
    """What is live on each target: commit, release, who deployed it and when."""
    result: list[TargetStatus] = run(opts, lambda: commands.status(opts.load(), target=target))
    emit(opts, [_status_json(s) for s in result], lambda: "\n\n".join(_status_text(s) for s in result))


def _status_json(s: TargetStatus) -> dict[str, Any]:
    data = dataclasses.asdict(s)
    data["pin"] = data.pop("pinned")
    data["pinned"] = s.pinned is not None
    data["hosts_disagree"] = s.hosts_disagree
    return data


def _status_text(s: TargetStatus) -> str:
    if s.release is None:
        return f"{s.target} ({s.location}): nothing deployed yet"
    lines = [
        f"{s.target} ({s.location})",
        f"  live:     {s.commit and s.commit[:12]}  {s.subject}",
        f"  release:  {s.release}",
        f"  by:       {s.deployed_by} at {s.deployed_at} ({s.action})",
        f"  author:   {s.author}",
        f"  kept:     {len(s.releases)} release(s)",
    ]
    if s.pinned:
        lines.append(
            f"  PINNED by {s.pinned.by} at {s.pinned.at}: {s.pinned.reason} (sitedeploy resume to unpin)"
        )
    if s.suspended:
        lines.append(f"  SUSPENDED by {s.suspended.by} at {s.suspended.at}: {s.suspended.reason}")
    for sha, mark in s.bad_commits.items():
        lines.append(f"  BAD       {sha[:12]} marked by {mark.by} at {mark.at}: {mark.reason}")
    if s.waiting:
        lines.append(f"  waiting:  {s.waiting}")
    if s.agent:
        lines += _agent_lines(s.agent)
    if s.versions:
        from .versions import family_status_lines

        lines += family_status_lines(s.versions)
    if s.hosts:
        for host, rel in s.hosts.items():
            lines.append(f"  host {host}: {rel}{'  <- differs' if rel != s.release else ''}")
    return "\n".join(lines)


def _agent_lines(agent: dict[str, Any]) -> list[str]:
    def short(key: str) -> str:
        return str(agent.get(key) or "-")[:12]

    lines = [f"  agent:    applied {short('last_applied')}, attempted {short('last_attempted')}"]
    if agent.get("last_error"):
        lines.append(f"  error:    {agent['last_error']} (commit {short('failed_commit')})")
    return lines


@cli.command()
@target_option
@click.option("-n", "limit", type=int, default=20, show_default=True, help="How many entries.")
@pass_options
def history(opts: Options, target: str | None, limit: int) -> None:
    """Every deploy and rollback, newest first."""
    result: dict[str, list[HistoryEntry]] = run(
        opts, lambda: commands.history(opts.load(), target=target, limit=limit)
    )
    rows = sorted(
        ((name, e) for name, entries in result.items() for e in entries),
        key=lambda pair: pair[1].deployed_at,
        reverse=True,
    )
    emit(
        opts,
        [{"target": name, **dataclasses.asdict(e)} for name, e in rows],
        lambda: "\n".join(_history_line(name, e) for name, e in rows) or "no history yet",
    )


def _history_line(name: str, e: HistoryEntry) -> str:
    counts = f"+{e.added} ~{e.changed} -{e.removed}"
    return (
        f"{e.deployed_at}  {name:<10} {e.action:<9} {e.commit[:8]}  {e.release}  {counts:<14} "
        f"{e.deployed_by}  {e.subject}"
    )


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
    results: list[DeployResult] = run(
        opts,
        lambda: commands.rollback(
            opts.load(),
            target=target,
            to=to,
            force=force,
            lock_timeout=lock_timeout,
            progress=opts.progress(),
        ),
    )
    emit(
        opts,
        [_deploy_json(r) for r in results],
        lambda: "\n".join(
            f"{r.target}: rolled back to {r.commit.sha[:8]} ({r.release}); pinned — "
            "'sitedeploy resume' lets automatic deploys continue"
            for r in results
        ),
    )


@cli.command()
@target_option
@lock_timeout_option
@pass_options
def resume(opts: Options, target: str | None, lock_timeout: float | None) -> None:
    """Unpin (and unsuspend) targets so deploys continue."""
    names = run(opts, lambda: commands.resume(opts.load(), target=target, lock_timeout=lock_timeout))
    emit(opts, names, lambda: "\n".join(f"{n}: resumed" for n in names))


@cli.command()
@target_option
@click.option("--reason", default="", help="Shown by status.")
@lock_timeout_option
@pass_options
def suspend(opts: Options, target: str | None, reason: str, lock_timeout: float | None) -> None:
    """A release freeze: no deploy, manual or automatic, until 'resume' (or --force)."""
    names = run(
        opts,
        lambda: commands.suspend(opts.load(), target=target, reason=reason, lock_timeout=lock_timeout),
    )
    emit(opts, names, lambda: "\n".join(f"{n}: suspended" for n in names))


@cli.command("mark-bad")
@click.argument("commit")
@target_option
@click.option("--reason", default="", help="Shown by status.")
@lock_timeout_option
@pass_options
def mark_bad(opts: Options, commit: str, target: str | None, reason: str, lock_timeout: float | None) -> None:
    """Never deploy COMMIT (a commit, branch or tag) to the targets until 'unmark'."""
    names = run(
        opts,
        lambda: commands.mark_bad(
            opts.load(), commit, target=target, reason=reason, lock_timeout=lock_timeout
        ),
    )
    emit(opts, names, lambda: "\n".join(f"{n}: {commit} marked bad" for n in names))


@cli.command()
@click.argument("commit")
@target_option
@lock_timeout_option
@pass_options
def unmark(opts: Options, commit: str, target: str | None, lock_timeout: float | None) -> None:
    """Let a commit marked bad (by a rollback or by hand) be deployed again."""
    names = run(opts, lambda: commands.unmark(opts.load(), commit, target=target, lock_timeout=lock_timeout))
    emit(opts, names, lambda: "\n".join(f"{n}: {commit} unmarked" for n in names))


@cli.command()
@target_option
@click.option("--repair", is_flag=True, help="Restore the live release where it drifted.")
@lock_timeout_option
@pass_options
def verify(opts: Options, target: str | None, repair: bool, lock_timeout: float | None) -> None:
    """Compare what targets serve with the live release; exit 1 on drift (unless repaired)."""
    results: list[VerifyResult] = run(
        opts,
        lambda: commands.verify(
            opts.load(), target=target, repair=repair, lock_timeout=lock_timeout, progress=opts.progress()
        ),
    )
    emit(opts, [dataclasses.asdict(r) for r in results], lambda: "\n".join(_verify_text(r) for r in results))
    if any(not r.clean and not r.repaired for r in results):
        raise SystemExit(1)


def _verify_text(r: VerifyResult) -> str:
    if r.release is None:
        return f"{r.target}: nothing deployed"
    lines = [
        f"{r.target}: {r.release}: "
        + ("repaired: " if r.repaired else "")
        + "; ".join(f"{d.where}: {d.summary()}" for d in r.drift)
    ]
    for d in r.drift:
        lines += [f"  missing {p}" for p in d.missing] + [f"  changed {p}" for p in d.changed]
        lines += [f"  extra   {p}" for p in d.extra]
    return "\n".join(lines)


@cli.command()
@target_option
@click.option(
    "--port", "-p", type=click.IntRange(1, 65535), default=8000, show_default=True,
    help="Port of the first target; further local targets get the next ports.",
)  # fmt: skip
@click.option("--bind", default="127.0.0.1", show_default=True)
@pass_options
def serve(opts: Options, target: str | None, port: int, bind: str) -> None:
    """Serve local targets' live releases over HTTP (previews), one port per target."""
    from ..serve import Preview

    config = run(opts, opts.load)
    chosen = run(opts, lambda: config.target(target))
    local = {n: t for n, t in chosen.items() if isinstance(t, LocalTargetConfig)}
    if not local:
        kinds = ", ".join(f"'{n}' ({t.type})" for n, t in chosen.items())
        run(
            opts,
            _raise(
                ConfigError(f"serve shows local targets only, and {kinds} is not one; browse its own URL")
            ),
        )
    previews = [
        Preview(n, config.resolve(t.path) / "current", port + i) for i, (n, t) in enumerate(local.items())
    ]
    others = [n for n in chosen if n not in local]
    run(opts, lambda: _start_serving(previews, bind, others))


def _start_serving(previews: list[Any], bind: str, others: list[str]) -> None:
    from ..serve import start, wait

    servers = start(previews, bind)  # listen first: a busy port fails before any URL is shown
    for p in previews:
        base = f"http://{bind}:{p.port}"
        mounts = p.mounts() or {"": "/"}
        sites = ", ".join(f"{name + ' ' if name else ''}{base}{mount}" for name, mount in mounts.items())
        click.echo(f"serving target '{p.target}' ({p.current}): {sites}", err=True)
    if others:
        click.echo(f"not served here (not local): {', '.join(others)}", err=True)
    click.echo("Ctrl-C stops", err=True)
    wait(servers)


def _raise(exc: Exception) -> Any:
    def fail() -> None:
        raise exc

    return fail
