"""What a family serves at its root: its lines (versions or previews), aliases and default.

The state is kept per *root release* (``family/<release id>.json`` in the root's state
store), written before that release can go live. So what ``status`` reads for the live root
release is exactly what readers are served — an alias move, like any release, is switched
atomically, recorded in history and can be rolled back — and a run that dies before the switch
leaves a state file no live release names.

Every name in it is checked when it is read back (:meth:`FamilyState.check`): whoever can
write a target's state must not steer the deployer's deletes or links out of the family's
folder with ``../..``, so a state naming anything but plain line names is refused with one
line naming the target, the file and the entry, and nothing is done with it. An alias never
has a version's name (on S3 the alias's prefix *is* the version's).

The root files are rendered from it: ``versions.json`` in mike's format (newest first,
``[{"version", "title", "aliases"}]``, read by mkdocs-material's version selector), an
``index.html`` that sends readers to the default version (as ``mike set-default`` writes it),
a ``404.html`` offering the same path in the default version, a ``robots.txt`` letting
crawlers in (canonical links, not ``Disallow``, keep old versions out of results) and, when the
default's build names its site, a ``sitemap.xml`` index of its sitemap (:mod:`.sitemap`); for
previews a ``robots.txt`` that keeps crawlers out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..names import line_problem
from ..release.records import MetaStore, _parsing
from .sitemap import SITE, site_base, sitemap_index

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
    site_url: str = ""
    """The site its build's ``sitemap.xml`` names (``https://docs.example.com/``); empty
    without one (:mod:`.sitemap`). The root's sitemap index points at the default's."""


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
        served = [
            self.kind,
            self.default,
            [(v.name, v.title, *filter(None, [v.site_url])) for v in self.lines],
        ]
        served.append(sorted((a.name, a.version) for a in self.aliases))
        return hashlib.sha256(json.dumps(served).encode()).hexdigest()

    # --- changes ------------------------------------------------------------------------------

    def with_line(self, line: Line) -> FamilyState:
        if self.alias(line.name) is not None:
            raise ConfigError(_clash(line.name, self.alias(line.name), self.kind))
        others = tuple(v for v in self.lines if v.name != line.name)
        return dataclasses.replace(self, lines=(*others, line))

    def without_line(self, name: str) -> FamilyState:
        return dataclasses.replace(self, lines=tuple(v for v in self.lines if v.name != name))

    def with_alias(self, alias: Alias) -> FamilyState:
        if self.line(alias.name) is not None:
            raise ConfigError(_clash(alias.name, alias, self.kind))
        others = tuple(a for a in self.aliases if a.name != alias.name)
        return dataclasses.replace(self, aliases=tuple(sorted((*others, alias), key=lambda a: a.name)))

    def without_alias(self, name: str) -> FamilyState:
        return dataclasses.replace(self, aliases=tuple(a for a in self.aliases if a.name != name))

    # --- storage ------------------------------------------------------------------------------

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> FamilyState:
        """The state stored in ``data``; ValueError when it is not plain data of plain names."""
        raw = json.loads(data)
        state = cls(
            kind=raw.get("kind", "versions"),
            lines=tuple(Line(**v) for v in raw.get("lines", [])),
            aliases=tuple(Alias(**a) for a in raw.get("aliases", [])),
            default=raw.get("default"),
            extra=raw.get("extra", {}),
        )
        state.check()
        return state

    def check(self) -> None:
        """Refuse (ValueError) a name that is not one plain path segment, and an alias named
        like a line: names read back from a target are acted on (linked, deleted)."""
        if self.kind not in ("versions", "previews"):
            raise ValueError(f"kind {self.kind!r} is neither 'versions' nor 'previews'")
        named = [("line", v.name) for v in self.lines] + [("alias", a.name) for a in self.aliases]
        named += [("alias target", a.version) for a in self.aliases]
        named += [("default", self.default)] if self.default is not None else []
        for what, name in named:
            problem = line_problem(name, what)
            if problem is not None:
                raise ValueError(problem)
        texts = [(v.title, v.ref, v.added_at, v.updated_at, v.site_url) for v in self.lines]
        if not all(isinstance(t, str) for fields in texts for t in fields):
            raise ValueError("a line's title, ref, times and site_url must be strings")
        if not all(SITE.fullmatch(v.site_url) for v in self.lines if v.site_url):
            raise ValueError("a line's site_url must be a plain http(s) URL")
        if not all(a.rule is None or isinstance(a.rule, str) for a in self.aliases):
            raise ValueError("an alias's rule must be a string")
        clash = next((a for a in self.aliases if self.line(a.name) is not None), None)
        if clash is not None:
            raise ValueError(_clash(clash.name, clash, self.kind))


def _clash(name: str, alias: Alias | None, kind: str) -> str:
    points = f" (pointing at {alias.version!r})" if alias else ""
    return f"alias {name!r}{points} has the name of a {kind[:-1]}; an alias needs a name of its own"


def read_state(store: MetaStore, release_id: str | None, kind: str) -> FamilyState:
    """The family state recorded for ``release_id``; one line naming the target, the file and
    the bad entry when it is damaged or names anything but plain line names (never acted on)."""
    name = f"{STATE_DIR}/{release_id}.json"
    data = store.read_meta(name) if release_id else None
    if not data:
        return FamilyState(kind=kind)
    with _parsing(store, name, "nothing was changed; remove that entry from the file, or restore it"):
        return FamilyState.from_json(data)


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


def served_default(state: FamilyState) -> str | None:
    """The name the root sends readers to: the default when it names something, else the
    newest version; None without versions."""
    if state.default and state.resolve(state.default):
        return state.default
    return state.newest_first()[0].name if state.lines else None


def root_files(state: FamilyState) -> dict[str, bytes]:
    if state.kind == "previews":
        return {
            "index.html": listing_page(state, "Previews"),
            "robots.txt": b"User-agent: *\nDisallow: /\n",
        }
    files = {"versions.json": mike_versions_json(state)}
    default = served_default(state)
    files["index.html"] = redirect_page(default) if default else listing_page(state, "Versions")
    files["robots.txt"] = ROBOTS
    if default:
        names = [v.name for v in state.lines] + [a.name for a in state.aliases]
        files["404.html"] = not_found_page(default, names)
        line = state.line(state.resolve(default) or "")
        if line is not None and line.site_url:
            base = site_base(line.site_url, set(names))
            files["sitemap.xml"] = sitemap_index(base, default)
            files["robots.txt"] = ROBOTS + f"Sitemap: {base}sitemap.xml\n".encode()
    return files


ROBOTS = b"User-agent: *\nDisallow:\n"
"""Every version may be crawled, as on Read the Docs: a crawler kept out of an old version
never sees the canonical link that sends its ranking to the default version."""


def not_found_page(default: str, names: list[str]) -> bytes:
    """The root's 404 page: offers the same path in the default version (a small script swaps
    the version segment of the address; without script, a plain link to the default)."""
    url = html.escape(f"/{default}/", quote=True)
    script = (
        f"var names={json.dumps(sorted(names))},d={json.dumps(default)};"
        "var p=window.location.pathname.split('/'),i=p.findIndex(function(s){return names.indexOf(s)>=0;});"
        "if(i<0){i=1;p.splice(1,0,d);}else{p[i]=d;}"
        "var a=document.getElementById('same');a.href=p.join('/');a.textContent=p.join('/');"
    )
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        "<title>Page not found</title></head><body><h1>Page not found</h1>\n"
        f'<p>This page is not here. Try <a id="same" href="{url}">{url}</a> in the current version.</p>\n'
        f"<script>{script}</script>\n</body></html>\n"
    ).encode()
