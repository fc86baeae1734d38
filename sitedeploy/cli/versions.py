"""``sitedeploy versions …``, ``sitedeploy previews …`` and ``sitedeploy import-mike``.

Each subcommand is a few lines around one call into :mod:`sitedeploy.versions`. ``--json``
works before the group (``sitedeploy --json versions list``) or after the subcommand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click

from .main import Options, cli, emit, pass_options, run
from .verbs import target_option

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
force_option = click.option(
    "--force",
    is_flag=True,
    help="Change the root although it is pinned or suspended (delete: and beyond max_delete).",
)


def _opts(opts: Options, as_json: bool) -> Options:
    return dataclasses.replace(opts, json=opts.json or as_json)


def _show(opts: Options, data: Any, text: Callable[[], str]) -> None:
    emit(opts, data, text)


@cli.group()
def versions() -> None:
    """Versioned docs: every matching tag served side by side, with aliases and a default."""


@versions.command("deploy")
@target_option
@click.option("--version", "only", help="Only this version [default: every version the refs define].")
@click.option("--rebuild", is_flag=True, help="Publish again even if the line serves the ref's commit.")
@force_option
@json_option
@pass_options
def versions_deploy(
    opts: Options, target: str | None, only: str | None, rebuild: bool, force: bool, as_json: bool
) -> None:
    """Build and publish each version whose tag is new or moved; old versions are left alone."""
    from ..versions import api

    opts = _opts(opts, as_json)
    results = run(
        opts,
        lambda: api.deploy_versions(
            opts.load(), target=target, only=only, rebuild=rebuild, force=force, progress=opts.progress()
        ),
    )
    _show(opts, [dataclasses.asdict(r) for r in results], lambda: "\n".join(r.summary() for r in results))
    if any(r.outcome in ("held", "failed") for r in results):
        raise SystemExit(1)


@versions.command("list")
@target_option
@json_option
@pass_options
def versions_list(opts: Options, target: str | None, as_json: bool) -> None:
    """Versions (newest first), their aliases, and the commit each serves."""
    from ..versions.info import list_versions

    opts = _opts(opts, as_json)
    infos = run(opts, lambda: list_versions(opts.load(), target=target))
    _show(opts, [dataclasses.asdict(i) for i in infos], lambda: "\n\n".join(family_text(i) for i in infos))


def family_text(info: Any) -> str:
    lines = [f"{info.target}: default {info.default or '-'}"]
    for v in info.versions:
        aliases = f" [{', '.join(v.aliases)}]" if v.aliases else ""
        pin = "  PINNED" if v.pinned else ""
        commit = (v.commit or "-")[:8]
        lines.append(f"  {v.version:<10} {commit}  {v.ref or '(imported)':<12} {v.title}{aliases}{pin}")
    return "\n".join(lines) if info.versions else f"{info.target}: no versions yet"


@versions.command("alias")
@click.argument("alias")
@click.argument("version")
@target_option
@force_option
@json_option
@pass_options
def versions_alias(
    opts: Options, alias: str, version: str, target: str | None, force: bool, as_json: bool
) -> None:
    """Serve VERSION under ALIAS too (moved in one atomic switch if it exists)."""
    from ..versions import api

    opts = _opts(opts, as_json)
    result = run(opts, lambda: api.set_alias(opts.load(), target, alias, version, force=force))
    _root_out(opts, result, f"{alias} -> {version}")


dry_run_option = click.option("--dry-run", is_flag=True, help="Run every check; change nothing.")


@versions.command("unalias")
@click.argument("alias")
@target_option
@force_option
@dry_run_option
@json_option
@pass_options
def versions_unalias(
    opts: Options, alias: str, target: str | None, force: bool, dry_run: bool, as_json: bool
) -> None:
    """Stop serving ALIAS."""
    from ..versions import api

    opts = _opts(opts, as_json)
    result = run(opts, lambda: api.remove_alias(opts.load(), target, alias, force=force, dry_run=dry_run))
    _root_out(opts, result, f"{alias} {_removed(dry_run, result.retired_files)}")


def _removed(dry_run: bool, files: int) -> str:
    said = "would be removed (dry run, nothing changed)" if dry_run else "removed"
    return said + (f", {files} file(s) of its line" if files else "")


@versions.command("set-default")
@click.argument("name")
@target_option
@force_option
@json_option
@pass_options
def versions_set_default(opts: Options, name: str, target: str | None, force: bool, as_json: bool) -> None:
    """Send readers of the root to NAME (a version or an alias)."""
    from ..versions import api

    opts = _opts(opts, as_json)
    result = run(opts, lambda: api.set_default(opts.load(), target, name, force=force))
    _root_out(opts, result, f"default -> {name}")


@versions.command("delete")
@click.argument("version")
@target_option
@force_option
@dry_run_option
@json_option
@pass_options
def versions_delete(
    opts: Options, version: str, target: str | None, force: bool, dry_run: bool, as_json: bool
) -> None:
    """Remove VERSION and its files (refused while an alias or the default names it)."""
    from ..versions import api

    opts = _opts(opts, as_json)
    result = run(opts, lambda: api.delete_version(opts.load(), target, version, force=force, dry_run=dry_run))
    _root_out(opts, result, f"{version} {_removed(dry_run, result.retired_files)}")


@versions.command("rollback")
@click.argument("version")
@target_option
@click.option("--to", help="A retained release id or commit of that version [default: the previous one].")
@click.option("--force", is_flag=True, help="Roll back to a release whose commit is marked bad.")
@json_option
@pass_options
def versions_rollback(
    opts: Options, version: str, target: str | None, to: str | None, force: bool, as_json: bool
) -> None:
    """Put VERSION's previous release back (that version only; pins it)."""
    from ..versions import api

    opts = _opts(opts, as_json)
    r = run(opts, lambda: api.rollback_version(opts.load(), target, version, to=to, force=force))
    _show(
        opts,
        {"target": r.target, "version": version, "commit": r.commit.sha, "release": r.release},
        lambda: (
            f"{r.target}: {version} rolled back to {r.commit.short} ({r.release}); that version is "
            "pinned until 'sitedeploy versions deploy --force' or 'sitedeploy resume'"
        ),
    )


def _root_out(opts: Options, result: Any, what: str) -> None:
    data = {"changed": result.changed, "release": result.release, "state": dataclasses.asdict(result.state)}
    _show(
        opts,
        data,
        lambda: f"{what} ({'root release ' + str(result.release) if result.changed else 'nothing changed'})",
    )


def family_status_lines(data: dict[str, Any]) -> list[str]:
    """``status`` of a versioned target: one line per version, with its aliases and commit."""
    lines = [f"  default:  {data.get('default') or '-'}"]
    for v in data.get("versions", []):
        aliases = f" [{', '.join(v['aliases'])}]" if v["aliases"] else ""
        lines.append(f"  version   {v['version']:<10} {(v['commit'] or '-')[:12]}  {v['ref']}{aliases}")
    return lines


@cli.group()
def previews() -> None:
    """Preview deploys: every matching branch or pull request at its own URL, never indexed."""


@previews.command("deploy")
@target_option
@click.option("--force", is_flag=True, help="Publish although unsigned, pinned or suspended.")
@json_option
@pass_options
def previews_deploy(opts: Options, target: str | None, force: bool, as_json: bool) -> None:
    """Deploy new and moved branches; remove previews of deleted or expired branches."""
    from ..versions import previews as pv

    opts = _opts(opts, as_json)
    results = run(
        opts, lambda: pv.deploy_previews(opts.load(), target=target, force=force, progress=opts.progress())
    )
    _show(opts, [dataclasses.asdict(r) for r in results], lambda: "\n".join(r.summary() for r in results))
    if any(r.outcome in ("held", "failed") for r in results):
        raise SystemExit(1)


@previews.command("list")
@target_option
@json_option
@pass_options
def previews_list(opts: Options, target: str | None, as_json: bool) -> None:
    """Previews, the branch and commit each serves, and their URLs."""
    from ..versions.info import list_versions
    from ..versions.layout import Family

    opts = _opts(opts, as_json)
    config = run(opts, opts.load)
    infos = run(opts, lambda: list_versions(config, target=target, kind="previews"))
    rows = [
        {
            "target": i.target,
            "slug": v.version,
            "branch": v.ref,
            "commit": v.commit,
            "deployed_at": v.deployed_at,
            "url": Family.of(config, i.target, "previews").url(v.version),
        }
        for i in infos
        for v in i.versions
    ]
    _show(
        opts,
        rows,
        lambda: (
            "\n".join(
                f"{r['target']}: {r['slug']:<24} {(r['commit'] or '-')[:8]}  {r['branch']}  {r['url'] or ''}"
                for r in rows
            )
            or "no previews"
        ),
    )


@previews.command("delete")
@click.argument("slug")
@target_option
@force_option
@dry_run_option
@pass_options
def previews_delete(opts: Options, slug: str, target: str | None, force: bool, dry_run: bool) -> None:
    """Remove the preview SLUG now (it comes back when its branch moves)."""
    from ..versions import previews as pv

    files = run(opts, lambda: pv.delete_preview(opts.load(), target, slug, dry_run=dry_run, force=force))
    data = {"deleted": slug, "dry_run": dry_run, "files": files}
    _show(opts, data, lambda: f"preview {slug} {_removed(dry_run, files)}")


@cli.command("import-mike")
@target_option
@click.option("--branch", default="gh-pages", show_default=True, help="mike's branch in the source repo.")
@click.option("--prefix", default="", help="mike's --deploy-prefix, if it used one.")
@click.option("--force", is_flag=True, help="Publish although the branch's commit is unsigned.")
@json_option
@pass_options
def import_mike(
    opts: Options, target: str | None, branch: str, prefix: str, force: bool, as_json: bool
) -> None:
    """Publish the versions of a mike gh-pages branch as they are, without rebuilding."""
    from ..versions.mike import import_mike as run_import

    opts = _opts(opts, as_json)
    results = run(
        opts,
        lambda: run_import(
            opts.load(), target=target, branch=branch, prefix=prefix, force=force, progress=opts.progress()
        ),
    )
    _show(opts, [dataclasses.asdict(r) for r in results], lambda: "\n".join(r.summary() for r in results))
