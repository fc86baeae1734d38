"""The command line: parse, load the config, call one function of ``commands``, print.

The only module that prints or exits. Every SitedeployError becomes one line on stderr and
its exit code (2 for configuration mistakes); ``--debug`` shows the traceback too. A command
over several targets (:func:`emit_each`) prints every target's result, then one such line per
failed target, and exits with the first failure's code. Everything
printed passes through :func:`~sitedeploy.errors.clean` here: credentials scrubbed (a token in
``source.repo``, a webhook's secret path), control characters escaped (a file name carrying an
escape sequence cannot retitle or rewrite the operator's terminal). JSON output is escaped by
``json.dumps`` itself and scrubbed like the rest.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .. import config as config_mod
from ..errors import BuildError, ConfigError, SitedeployError, clean
from ..progress import SILENT, Progress

if TYPE_CHECKING:
    from ..commands.common import Failures


@dataclasses.dataclass
class Options:
    config_path: Path | None
    """None: find deploy.toml in the working folder or above it (``config.find_config``)."""
    state_dir: Path | None
    json: bool
    verbose: int
    quiet: bool
    debug: bool

    def load(self) -> config_mod.Config:
        path = self.config_path or config_mod.find_config(Path.cwd())
        return config_mod.load(path, self.state_dir)

    def progress(self) -> Progress:
        if self.json:
            return SILENT
        from .progress_rich import for_stream

        return for_stream(self.quiet) or SILENT


pass_options = click.make_pass_decorator(Options)


class _Group(click.Group):
    """Global options are also accepted after the subcommand: ``sitedeploy status --json``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))


_GLOBAL_FLAGS = ("--json", "-q", "--quiet", "--verbose", "--debug")
_GLOBAL_VALUED = ("--config", "--state-dir")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the subcommand's name to before it."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in _GLOBAL_VALUED else 1
    head, rest = args[: i + 1], args[i + 1 :]
    moved: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(rest):
        arg = rest[j]
        if arg == "--":
            kept += rest[j:]
            break
        if arg in _GLOBAL_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            moved.append(arg)
        elif arg in _GLOBAL_VALUED and j + 1 < len(rest):
            moved += rest[j : j + 2]
            j += 1
        elif arg.partition("=")[0] in _GLOBAL_VALUED:
            moved.append(arg)
        else:
            kept.append(arg)
        j += 1
    return head[:-1] + moved + head[-1:] + kept if len(head) > i else args


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The deploy.toml to use [default: ./deploy.toml, else the nearest one above, up to the repo root].",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    help="Cache and mirror folder [default: .sitedeploy/ beside deploy.toml].",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("-v", "--verbose", count=True, help="More detail (build logs on failure).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="sitedeploy")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    state_dir: Path | None,
    as_json: bool,
    verbose: int,
    quiet: bool,
    debug: bool,
) -> None:
    """GitOps for documentation sites: build, publish atomically, roll back."""
    ctx.obj = Options(config_path, state_dir, as_json, verbose, quiet, debug)


def run(opts: Options, action: Callable[[], Any]) -> Any:
    """Call the library; turn its errors into one line and an exit code."""
    try:
        return action()
    except SitedeployError as exc:
        if opts.debug:
            _echo(traceback.format_exc(), err=True)
        _fail(opts, exc)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


def _fail(opts: Options, exc: SitedeployError) -> NoReturn:
    lines = exc.problems if isinstance(exc, ConfigError) else [exc.message]
    for line in lines:
        _echo(f"error: {one_line(line)}", err=True)
    if opts.json:  # the same error, for programs reading stdout
        _echo(json.dumps({"error": error_json(exc)}))
    _build_log(opts, exc)
    sys.exit(exc.exit_code)


def error_json(exc: SitedeployError) -> dict[str, Any]:
    lines = exc.problems if isinstance(exc, ConfigError) else [exc.message]
    error = {"kind": type(exc).__name__, "message": lines[0], "problems": lines}
    return {**error, "exit_code": exc.exit_code, "retryable": exc.retryable}


def _build_log(opts: Options, exc: SitedeployError) -> None:
    if isinstance(exc, BuildError) and exc.log_tail:
        if opts.verbose:
            _echo("build log (last lines):\n" + exc.log_tail, err=True)
        else:
            click.echo("(run with -v to see the build log)", err=True)


def emit_each(opts: Options, failures: Failures, data: list[Any], text: Callable[[], str]) -> None:
    """A command over several targets: every target's result (``data``/``text``), then each
    failed target's error on its own line; exit with the first failure's code if any failed.
    ``--json`` gets one list: the results, then ``{"target": …, "error": {…}}`` per failure."""
    if len(failures) == 1 and not data:  # nothing else to show: the plain one-error form
        _fail(opts, failures[0].error)
    if opts.json:
        data = [*data, *({"target": f.target, "error": error_json(f.error)} for f in failures)]
    emit(opts, data, text)
    for failed in failures:
        _echo(f"error: {one_line(failed.summary())}", err=True)
        _build_log(opts, failed.error)
    if failures:
        sys.exit(failures[0].error.exit_code)


def emit(opts: Options, data: Any, text: Callable[[], str]) -> None:
    if opts.json:
        _echo(json.dumps(data, indent=2, default=_jsonable))
    elif not opts.quiet:
        out = text()
        if out:
            _echo(out)


def _echo(text: str, err: bool = False) -> None:
    """The one way text reaches the terminal: scrubbed, control characters escaped."""
    click.echo(clean(text), err=err)


def one_line(text: str) -> str:
    """An error stays one line even if a name in it holds a newline."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except Exception as exc:  # a bug, not a user mistake: say so, and how to see more
        if "--debug" in sys.argv:  # scrubbed too: a traceback quotes URLs and messages
            _echo(traceback.format_exc(), err=True)
        message = f"{exc.__class__.__name__}: {exc}"
        _echo(f"internal error: {one_line(message)} (run with --debug for a traceback)", err=True)
        sys.exit(70)
