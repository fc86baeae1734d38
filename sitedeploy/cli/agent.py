"""``sitedeploy agent``: the pull agent, long-running or ``--once`` (see ``sitedeploy.agent``)."""

from __future__ import annotations

import sys

import click

from .main import Options, cli, pass_options, run
from .verbs import target_option


@cli.command()
@click.option("--once", is_flag=True, help="One reconcile pass, then exit (for cron or a systemd timer).")
@target_option
@click.option(
    "--log-format",
    type=click.Choice(["kv", "json"]),
    default="kv",
    show_default=True,
    help="One line per event: key=value pairs or JSON objects.",
)
@pass_options
def agent(opts: Options, once: bool, target: str | None, log_format: str) -> None:
    """Deploy whatever the tracked refs point at, now and whenever they move."""
    from ..agent.log import EventLog
    from ..agent.runner import run_forever, run_once

    log = EventLog("json" if log_format == "json" else "kv", sys.stderr)
    config = run(opts, opts.load)
    if once:
        code = run(opts, lambda: run_once(config, log, target=target))
        sys.exit(code)
    run(opts, lambda: run_forever(config, log, target=target))
