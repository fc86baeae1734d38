"""``sitedeploy compare``: one call into :mod:`sitedeploy.compare`, a rich summary, JSON, an
HTML report; exit 0 when every site is equivalent within the tolerance, 1 when not."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import click

from ..commands import open_source
from ..compare import Comparison, compare, parse_engines
from ..compare.report import as_json, write_report
from .main import Options, cli, emit, pass_options, run


@cli.command(name="compare")
@click.option("--site", help="Compare this site only [default: every site].")
@click.option(
    "--engine", help="Compare each site's current builder with this engine (mkdocs, properdocs, zensical)."
)
@click.option("--engines", help="Compare these two engines, e.g. mkdocs,zensical.")
@click.option(
    "--commit", "ref", help="Build this commit, branch or tag [default: the live release's commit]."
)
@click.option("--target", "-t", help="Whose live release to compare [default: the first target].")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    help="Folder for the HTML report [default: compare-report/ in the state folder].",
)
@click.option(
    "--tolerance",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Differences a site may have and still count as equivalent (exit 0).",
)
@pass_options
def compare_command(
    opts: Options,
    site: str | None,
    engine: str | None,
    engines: str | None,
    ref: str | None,
    target: str | None,
    report_dir: Path | None,
    tolerance: int,
) -> None:
    """Build one commit with two engines (sandboxed, nothing published) and report what differs."""
    config = run(opts, opts.load)

    def action() -> Comparison:
        one, pair = parse_engines(engine, engines)
        source = open_source(config)
        return compare(
            config, source, engine=one, engines=pair, ref=ref, site=site, target=target,
            tolerance=tolerance, progress=opts.progress(),
        )  # fmt: skip

    result = run(opts, action)
    path = write_report(result, report_dir or config.state_dir / "compare-report")
    data = {**as_json(result), "report": str(path)}
    emit(opts, data, lambda: summary(result) + f"\nreport: {path}")
    sys.exit(0 if result.equivalent else 1)


def summary(result: Comparison) -> str:
    """A rich table per site, rendered to plain text (the CLI scrubs and prints it)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, width=110, force_terminal=False, color_system=None, highlight=False)
    console.print(
        f"commit {result.commit.short} ({result.commit_from}): {result.commit.subject}", markup=False
    )
    for line in result.skipped:
        console.print(f"skipped {line}", markup=False)
    for site in result.sites:
        a, b = site.engines
        table = Table(title=escape(f"site '{site.site}': {a} vs {b}"), title_justify="left")
        for column in ("", a, b):
            table.add_column(column, overflow="fold")
        rows = [
            ("build time", *(f"{site.seconds[e]:.2f} s" for e in site.engines)),
            ("pages only here", *(str(len(site.only_in[e])) for e in site.engines)),
            ("links resolving only here", *(str(len(site.links[e])) for e in site.engines)),
            (
                "search index",
                *(f"{site.search[e].pages} pages, {site.search[e].headings} headings" for e in site.engines),
            ),
            (
                "files, bytes",
                *(f"{site.assets[e].files}, {site.assets[e].bytes}" for e in site.engines),
            ),
            ("plugins ignored", *(", ".join(site.plugins_ignored[e]) or "-" for e in site.engines)),
        ]
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # names from the build: never markup
        console.print(table)
        for page in site.text_differs[:5]:
            console.print(f"text differs: {page.page}", markup=False)
            for line in page.diff[:6]:
                console.print(f"    {line}", markup=False)
        for line in site.nav[:10]:
            console.print(f"navigation: {line}", markup=False)
        verdict = "equivalent" if site.equivalent else "differs"
        console.print(
            f"{verdict}: {site.differences} difference(s), tolerance {site.tolerance}", markup=False
        )
    return buffer.getvalue().rstrip()
