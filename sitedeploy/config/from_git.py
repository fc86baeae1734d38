"""Configuration from git: what a release contains follows from its commit alone.

``deploy.toml`` holds two kinds of settings:

- **build settings** (``[[sites]]``, ``[images]``: ``config.BUILD_TABLES``) decide the bytes of a
  release. They are read from the ``deploy.toml`` *in the commit being deployed*, so an
  uncommitted edit never goes live, a committed one reaches the agent with its commit, and a
  rebuild of an old commit uses that commit's settings.
- **machine settings** (``[source]``, ``[targets]``, ``[agent]``, the state folder) say where a
  release goes and how this machine runs. They come from the file sitedeploy is run with: the
  working copy's ``deploy.toml``, or an operator file such as ``/etc/sitedeploy/deploy.toml``.

Precedence for build settings: the commit's ``deploy.toml``; when the commit has none, the
build tables of the file sitedeploy runs with; when that has none either, the layout is
discovered (a root ``mkdocs.yml``, or the folders under ``sites/``).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..source import Commit, Source, git_path, is_url
from ..source.gitrun import Git
from .deploy_toml import BUILD_TABLES, Config, check_top_level, parse_build_tables
from .limits import check_build_limits

Warn = Callable[[str], None]
MAX_KEYS_NAMED = 5
MAX_CONFIG_BYTES = 1024 * 1024
"""The largest committed deploy.toml read (settings are a few kilobytes)."""


def committed_path(config: Config) -> str:
    """Where the build settings live inside the repo: the path of the file sitedeploy runs
    with when that file is in the repo's working copy, else ``deploy.toml`` at the root."""
    return _in_working_copy(config) or "deploy.toml"


def _in_working_copy(config: Config) -> str | None:
    repo = config.source.repo
    if is_url(repo):
        return None
    try:
        return config.path.relative_to(config.resolve(repo)).as_posix()
    except ValueError:
        return None


def uncommitted_note(config: Config, paths: Sequence[str]) -> str | None:
    """One line when ``[source] repo`` is a local working copy with uncommitted changes (edited
    or untracked files) under ``paths``, the sites' folders: only commits deploy, and a deploy
    that says "already live" must not look as if it ignored the edit."""
    repo = config.source.repo
    root = None if is_url(repo) else config.resolve(repo)
    if root is None or not (root / ".git").exists():
        return None
    status = ("status", "--porcelain", "-z", "--untracked-files=all", "--", *paths)
    proc = Git().completed("-C", str(root), *status, doing="list uncommitted changes")
    files = _changed_files(proc.stdout.decode(errors="replace")) if proc.returncode == 0 else []
    if not files:
        return None
    named = ", ".join(files[:3]) + (", …" if len(files) > 3 else "")
    return (
        f"warning: the working copy {root} has uncommitted changes in {len(files)} file(s) under the "
        f"sites' paths ({named}); they do not deploy — only commits do: commit them to deploy them"
    )


def _changed_files(porcelain: str) -> list[str]:
    """Paths from ``git status --porcelain -z``; a rename's second entry is its old name."""
    files, entries = [], iter(porcelain.split("\0"))
    for entry in entries:
        if len(entry) > 3:
            files.append(entry[3:])
            if entry[0] in "RC":
                next(entries, None)
    return files


def build_config_at(config: Config, source: Source, commit: Commit, *, warn: Warn | None = None) -> Config:
    """``config`` with its build settings replaced by those committed in ``commit``.

    ``warn`` receives one line when the file sitedeploy runs with sets build settings that
    differ from the commit's (an uncommitted edit, or an operator file the commit overrides).
    """
    rel = committed_path(config)
    _check_size(source, commit, rel)
    text = source.read_text(commit.sha, rel)
    if text is None:  # the commit has no deploy.toml: the local file's build tables apply
        return config
    origin = f"{rel} at commit {commit.short}"
    tables = _committed_tables(text, origin)
    working_copy = _in_working_copy(config) is not None
    if warn is not None and (config.build_tables or working_copy) and config.build_tables != tables:
        _warn_differences(config, tables, origin, warn)
    return with_build_tables(config, tables, origin)


def _check_size(source: Source, commit: Commit, rel: str) -> None:
    """Refuse a committed deploy.toml too large to be settings, before reading it: git stores
    it compressed, so a few megabytes pushed (4 GB of spaces) would be read whole into memory."""
    size = source.git.probe("cat-file", "-s", f"{commit.sha}:{git_path(rel)}")
    if size is not None and size.isdigit() and int(size) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{rel} at commit {commit.short}: {int(size):,} bytes, over the {MAX_CONFIG_BYTES:,} a "
            "deploy.toml may have; it holds settings only: shorten it"
        )


def with_build_tables(config: Config, tables: Mapping[str, Any], origin: str) -> Config:
    """``config`` built with ``tables`` (``[[sites]]``, ``[images]``) instead of its own.

    Also how a release's recorded build settings (``Built.build_config``) are applied again
    to rebuild it exactly as it was built.
    """
    problems: list[str] = []
    images, sites = parse_build_tables(dict(tables), problems)
    if not problems:  # the commit may lower the operator's limits, never go past them
        check_build_limits(config.limits, images, sites, problems)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{origin}: {problems[0]}{more}", [f"{origin}: {p}" for p in problems])
    return dataclasses.replace(
        config, sites=sites, images=images, build_tables=dict(tables), build_origin=origin
    )


def _committed_tables(text: str, origin: str) -> dict[str, Any]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: TOML syntax error: {exc}; fix it in a new commit") from None
    problems: list[str] = []
    check_top_level(raw, problems)  # a typo in a machine table is still a typo
    if problems:
        raise ConfigError(f"{origin}: {problems[0]}", [f"{origin}: {p}" for p in problems])
    return {k: raw[k] for k in BUILD_TABLES if k in raw}


def _warn_differences(config: Config, committed: dict[str, Any], origin: str, warn: Warn) -> None:
    keys = differing_keys(config.build_tables, committed)
    if not keys:
        return
    named = ", ".join(keys[:MAX_KEYS_NAMED]) + (
        f" and {len(keys) - MAX_KEYS_NAMED} more" if len(keys) > MAX_KEYS_NAMED else ""
    )
    if _in_working_copy(config):
        warn(
            f"warning: {config.path.name} has uncommitted build settings ({named}) that differ from "
            f"{origin}; the committed ones are built — commit the change to deploy it"
        )
    else:
        warn(
            f"warning: {config.path} sets build settings ({named}) that differ from {origin}; the "
            "commit's are built — build settings belong in the repository's deploy.toml"
        )


def differing_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Key paths (``sites[1].mount``, ``images.widths``) whose values differ."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    return sorted(
        k for k in flat_old.keys() | flat_new.keys() if flat_old.get(k, _MISSING) != flat_new.get(k, _MISSING)
    )


_MISSING = object()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, item in enumerate(value):  # [[sites]]: one path per table and key
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}
