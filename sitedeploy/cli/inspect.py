"""The read-only subcommands: what is live (``status``), what happened (``history``), whether
targets serve what they should (``verify``, which may also repair through the transaction), and
``serve`` for browsing a local target."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from .. import commands
from ..commands import Failures, TargetStatus, VerifyResult
from ..config import LocalTargetConfig
from ..errors import ConfigError
from ..release.records import HistoryEntry
from .main import Options, cli, emit_each, pass_options, run
from .verbs import lock_timeout_option, target_option


@cli.command()
@target_option
@click.option("--serve", is_flag=True, help="Serve the status page (/, /status.json, badges) instead.")
@click.option("--bind", default="127.0.0.1", show_default=True, help="With --serve: the address.")
@click.option(
    "--port", "-p", type=click.IntRange(0, 65535), default=8080, show_default=True,
    help="With --serve: the port (0 picks a free one).",
)  # fmt: skip
@pass_options
def status(opts: Options, target: str | None, serve: bool, bind: str, port: int) -> None:
    """What is live on each target: commit, release, who deployed it and when."""
    if serve:
        from ..web.cli import serve_status

        run(opts, lambda: serve_status(opts.load(), bind, port))
        return
    failures: Failures = []
    result: list[TargetStatus] = run(
        opts, lambda: commands.status(opts.load(), target=target, failures=failures)
    )
    data = [_status_json(s) for s in result]
    emit_each(opts, failures, data, lambda: "\n\n".join(_status_text(s) for s in result))


def _status_json(s: TargetStatus) -> dict[str, Any]:
    data = dataclasses.asdict(s)
    data["pin"] = data.pop("pinned")
    data["pinned"] = s.pinned is not None
    data["hosts_disagree"] = s.hosts_disagree
    return data


def _status_text(s: TargetStatus) -> str:
    if s.release is None:
        return f"{s.target} ({s.location}): nothing deployed yet" + (
            (f"\n  tracking: {s.tracking}" if s.tracking else "")
            + (f"\n  LOCKED by {s.lock}" if s.lock else "")
        )
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
    if s.tracking:
        where = f"at {s.tip[:12]}" if s.tip else f"(tip unknown: {s.tip_error})"
        lines.append(f"  tracking: {s.tracking} {where}")
    if s.lock:
        lines.append(f"  LOCKED by {s.lock} ('sitedeploy unlock' shows and removes it)")
    if s.waiting:
        lines.append(f"  waiting:  {s.waiting}")
    if s.newest_tag:
        lines.append(f"  newest:   {s.newest_tag}")
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
    failures: Failures = []
    result: dict[str, list[HistoryEntry]] = run(
        opts, lambda: commands.history(opts.load(), target=target, limit=limit, failures=failures)
    )
    rows = sorted(
        ((name, e) for name, entries in result.items() for e in entries),
        key=lambda pair: pair[1].deployed_at,
        reverse=True,
    )
    emit_each(
        opts,
        failures,
        [{"target": name, **dataclasses.asdict(e)} for name, e in rows],
        lambda: "\n".join(_history_line(name, e) for name, e in rows) or _no_history(result),
    )


def _no_history(result: dict[str, list[HistoryEntry]]) -> str:
    return "\n".join(f"{name}: no history yet" for name in result)


def _history_line(name: str, e: HistoryEntry) -> str:
    counts = f"+{e.added} ~{e.changed} -{e.removed}"
    return (
        f"{e.deployed_at}  {name:<10} {e.action:<9} {e.commit[:8]}  {e.release}  {counts:<14} "
        f"{e.deployed_by}  {e.subject}"
    )


@cli.command()
@target_option
@click.option("--repair", is_flag=True, help="Restore the live release where it drifted.")
@click.option("--dry-run", is_flag=True, help="With --repair: run every check of the repair; change nothing.")
@click.option("--force", is_flag=True, help="With --repair: repair a suspended target too.")
@click.option("--force-delete", is_flag=True, help="With --repair: delete more extra files than max_delete.")
@lock_timeout_option
@pass_options
def verify(
    opts: Options,
    target: str | None,
    repair: bool,
    dry_run: bool,
    force: bool,
    force_delete: bool,
    lock_timeout: float | None,
) -> None:
    """Compare what targets serve with the live release; exit 1 on drift (unless repaired)."""
    failures: Failures = []
    results: list[VerifyResult] = run(
        opts,
        lambda: commands.verify(
            opts.load(),
            target=target,
            repair=repair,
            lock_timeout=lock_timeout,
            progress=opts.progress(),
            dry_run=dry_run,
            force=force,
            force_delete=force_delete,
            failures=failures,
        ),
    )
    text = "\n".join(_verify_text(r) for r in results)
    emit_each(opts, failures, [dataclasses.asdict(r) for r in results], lambda: text)
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
    """Serve local targets' live releases over HTTP for browsing, one port per target.

    What a target's current/ holds is served (its versions too); branch and pull-request
    previews are not: point a web server at the target's <preview_path>/current/."""
    from .serve import Preview

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
    from .serve import start, wait

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
