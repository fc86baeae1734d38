"""What a family serves at its root: its lines (versions or previews), aliases and default.

The state is kept per *root release* (``family/<release id>.json`` in the root's state
store), written before that release can go live. So what ``status`` reads for the live root
release is exactly what readers are served — an alias move, like any release, is switched
atomically, recorded in history and can be rolled back — and a run that dies before the switch
leaves a state file no live release names.

The root files are rendered from it: ``versions.json`` in mike's format (newest first,
``[{"version", "title", "aliases"}]``, read by mkdocs-material's version selector), an
``index.html`` that sends readers to the default version (as ``mike set-default`` writes it),
and for previews a ``robots.txt`` that keeps crawlers out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
from dataclasses import dataclass, field
from typing import Any

from ..release.records import MetaStore

STATE_DIR = "family"


@dataclass(frozen=True)
class Line:
    """One version (or preview): its own release line under ``lines/<name>/``."""

    name: str
    title: str
    ref: str = ""
    """The tag or branch it is built from; empty for an import or a version set by hand."""
    added_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class Alias:
    name: str
    version: str
    rule: str | None = None
    """``newest``/``newest-stable``: the alias follows it. None: set by command, stays put."""


@dataclass(frozen=True)
class FamilyState:
    kind: str = "versions"
    lines: tuple[Line, ...] = ()
    aliases: tuple[Alias, ...] = ()
    default: str | None = None
    """A version or alias name the root redirects to; None: no redirect page (previews)."""
    extra: dict[str, Any] = field(default_factory=dict)

    # --- queries ------------------------------------------------------------------------------

    def line(self, name: str) -> Line | None:
        return next((v for v in self.lines if v.name == name), None)

    def alias(self, name: str) -> Alias | None:
        return next((a for a in self.aliases if a.name == name), None)

    def links(self) -> dict[str, str]:
        """Every name the root serves (each line, then each alias) → the line it shows."""
        wanted = {line.name: line.name for line in self.lines}
        wanted.update({a.name: a.version for a in self.aliases})
        return wanted

    def aliases_of(self, version: str) -> list[str]:
        return [a.name for a in self.aliases if a.version == version]

    def resolve(self, name: str) -> str | None:
        """The version a name serves: itself, or the version an alias points at."""
        alias = self.alias(name)
        return alias.version if alias else (name if self.line(name) else None)

    def newest_first(self) -> list[Line]:
        from .naming import order_key

        return sorted(self.lines, key=lambda v: order_key(v.ref or v.name), reverse=True)

    @property
    def key(self) -> str:
        """A fingerprint of what the root serves: equal keys mean nothing to publish."""
        served = [self.kind, self.default, [(v.name, v.title) for v in self.lines]]
        served.append(sorted((a.name, a.version) for a in self.aliases))
        return hashlib.sha256(json.dumps(served).encode()).hexdigest()

    # --- changes ------------------------------------------------------------------------------

    def with_line(self, line: Line) -> FamilyState:
        others = tuple(v for v in self.lines if v.name != line.name)
        return dataclasses.replace(self, lines=(*others, line))

    def without_line(self, name: str) -> FamilyState:
        return dataclasses.replace(self, lines=tuple(v for v in self.lines if v.name != name))

    def with_alias(self, alias: Alias) -> FamilyState:
        others = tuple(a for a in self.aliases if a.name != alias.name)
        return dataclasses.replace(self, aliases=tuple(sorted((*others, alias), key=lambda a: a.name)))

    def without_alias(self, name: str) -> FamilyState:
        return dataclasses.replace(self, aliases=tuple(a for a in self.aliases if a.name != name))

    # --- storage ------------------------------------------------------------------------------

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> FamilyState:
        raw = json.loads(data)
        return cls(
            kind=raw.get("kind", "versions"),
            lines=tuple(Line(**v) for v in raw.get("lines", [])),
            aliases=tuple(Alias(**a) for a in raw.get("aliases", [])),
            default=raw.get("default"),
            extra=raw.get("extra", {}),
        )


def read_state(store: MetaStore, release_id: str | None, kind: str) -> FamilyState:
    data = store.read_meta(f"{STATE_DIR}/{release_id}.json") if release_id else None
    return FamilyState.from_json(data) if data else FamilyState(kind=kind)


def write_state(store: MetaStore, release_id: str, state: FamilyState) -> None:
    store.write_meta(f"{STATE_DIR}/{release_id}.json", state.to_json())


def forget_state(store: MetaStore, release_id: str) -> None:
    store.delete_meta(f"{STATE_DIR}/{release_id}.json")


# --- the files served at the family's root ---------------------------------------------------


def mike_versions_json(state: FamilyState) -> bytes:
    """mike's ``versions.json``: newest first, each version with the aliases naming it."""
    entries = [
        {"version": v.name, "title": v.title, "aliases": state.aliases_of(v.name)}
        for v in state.newest_first()
    ]
    return json.dumps(entries, indent=2).encode() + b"\n"


def redirect_page(to: str) -> bytes:
    """A page that sends the reader to ``to/`` keeping the fragment, with or without script."""
    url = html.escape(f"{to}/", quote=True)
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>Redirecting</title>\n'
        f'<noscript><meta http-equiv="refresh" content="0; url={url}"></noscript>\n'
        f"<script>window.location.replace({json.dumps(to + '/')} + window.location.hash);</script>\n"
        f'<link rel="canonical" href="{url}">\n'
        f'</head><body>Redirecting to <a href="{url}">{url}</a>…</body></html>\n'
    ).encode()


def listing_page(state: FamilyState, title: str) -> bytes:
    """The previews' root: a list of links, never indexed."""
    items = "".join(
        f'<li><a href="{html.escape(v.name)}/">{html.escape(v.title)}</a> '
        f"<small>updated {html.escape(v.updated_at)}</small></li>\n"
        for v in sorted(state.lines, key=lambda v: v.name)
    )
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>\n"
        f"<ul>\n{items}</ul></body></html>\n"
    ).encode()


def root_files(state: FamilyState) -> dict[str, bytes]:
    if state.kind == "previews":
        return {
            "index.html": listing_page(state, "Previews"),
            "robots.txt": b"User-agent: *\nDisallow: /\n",
        }
    files = {"versions.json": mike_versions_json(state)}
    default = state.default if state.default and state.resolve(state.default) else None
    if default is None and state.lines:
        default = state.newest_first()[0].name
    files["index.html"] = redirect_page(default) if default else listing_page(state, "Versions")
    return files
