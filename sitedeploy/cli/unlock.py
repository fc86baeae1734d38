"""``sitedeploy unlock``: break the lock of a deployer that is gone, after showing who held it.

A lock is a short lease (``[targets.X] lock_ttl``), so a dead deployer blocks others for at most
that long and the next run takes it over by itself; ``unlock`` is for the person who does not
want to wait, or who must clear a lock of a sitedeploy older than leases. It refuses while the
lease is fresh (its holder is probably still working) unless ``--force``.
"""

from __future__ import annotations

import time

import click

from ..errors import ConfigError
from ..release.lock import break_lock, read_lock
from ..targets import open_target
from .main import Options, cli, emit, pass_options, run


@cli.command()
@click.option("--target", "-t", required=True, help="The target whose lock to remove.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.option("--force", is_flag=True, help="Remove it even while its lease is fresh.")
@pass_options
def unlock(opts: Options, target: str, yes: bool, force: bool) -> None:
    """Show who holds a target's lock and remove it (after confirmation)."""
    config = run(opts, opts.load)
    cfg = run(opts, lambda: config.target(target))[target]
    with open_target(target, cfg, config) as t:
        holder = run(opts, lambda: read_lock(t))
        if holder is None:
            emit(opts, {"target": target, "held": False}, lambda: f"{target}: not locked")
            return
        click.echo(f"{target}: locked by {holder.details(time.time())}", err=True)
        if not yes and not click.confirm(f"remove the lock of {target}?", err=True):
            run(opts, _declined)
        removed = run(opts, lambda: break_lock(t, target, force=force))
    data = {"target": target, "held": True, "removed": removed.owner if removed else None}
    emit(opts, data, lambda: f"{target}: lock removed" + (f" (was {removed.describe()})" if removed else ""))


def _declined() -> None:
    raise ConfigError("unlock: not confirmed; nothing was removed (pass --yes to skip the question)")
