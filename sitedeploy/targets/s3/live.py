"""What the S3 target knows about its bucket, and the pure plan of one switch.

The state object (``<prefix>.sitedeploy/live.json``) names the live release and records what
sitedeploy last wrote at every live key: sha256, ETag, stored size and headers. Normal
deploys and rollbacks compare the wanted release with this record, never with a listing of
the bucket. It also holds:

``stale``    keys that left the live release but stay for ``retain_releases`` switches, so pages
             held in browser and CDN caches keep their assets: path -> switches still to wait.
``known``    every release id that existed when the state was committed. A release record
             not in it was written later by a run that never committed: a deploy writes its
             release record and manifest before it touches any live key, so such a record is
             the evidence of an interrupted switch. The next switch rewrites every key that run
             may have touched (:func:`touched_by`, with the header rules it stored beside its
             manifest), whatever it deploys, so a half-finished switch always converges.
``pending``  the same evidence for switches that write no new release record (a rollback to a
             retained release): written before the first live key is touched, naming the
             release being switched to and every key that may hold its bytes. Also set when a
             state is read with interrupted releases folded in (``dirty``: the suspect keys).

:func:`plan_switch` turns (state, wanted manifest) into the work of one switch, with no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ...release.manifest import Manifest
from .headers import HeaderRules, ObjectHeaders, publish_group


@dataclass(frozen=True)
class Stored:
    """What sitedeploy wrote at one live key."""

    sha256: str
    etag: str
    size: int
    """Stored size (differs from the file's when it is gzip-compressed)."""
    headers: ObjectHeaders


@dataclass
class LiveState:
    release: str | None = None
    objects: dict[str, Stored] = field(default_factory=dict)
    stale: dict[str, int] = field(default_factory=dict)
    pending: str | None = None
    dirty: set[str] = field(default_factory=set)
    known: set[str] | None = None
    """None in a state written before ``known`` existed: its ``pending`` is the whole story."""
    history: list[dict[str, Any]] | None = None
    """The target's history (``records.HistoryEntry`` as dicts, oldest first); None in a state
    written before history moved in here (it is then the ``history.json`` object)."""

    def copy(self) -> LiveState:
        known = None if self.known is None else set(self.known)
        history = None if self.history is None else list(self.history)
        return LiveState(
            self.release, dict(self.objects), dict(self.stale), self.pending, set(self.dirty), known, history
        )

    def to_json(self) -> bytes:
        table: dict[ObjectHeaders, int] = {}
        objects = {
            path: [s.sha256, s.etag, s.size, table.setdefault(s.headers, len(table))]
            for path, s in sorted(self.objects.items())
        }
        body: dict[str, Any] = {
            "version": 1,
            "release": self.release,
            "headers": [list(h) for h in table],
            "objects": objects,
            "stale": self.stale,
            "pending": {"release": self.pending, "dirty": sorted(self.dirty)} if self.pending else None,
        }
        if self.known is not None:
            body["known"] = sorted(self.known)
        if self.history is not None:
            body["history"] = self.history
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | None) -> LiveState:
        if not data:
            return cls(known=set())  # no state yet: every release record found is a dead run's
        body: dict[str, Any] = json.loads(data)
        table = [ObjectHeaders(*h) for h in body.get("headers", [])]
        objects = {
            path: Stored(sha, etag, int(size), table[index])
            for path, (sha, etag, size, index) in body.get("objects", {}).items()
        }
        pending = body.get("pending") or {}
        return cls(
            body.get("release"),
            objects,
            {str(k): int(v) for k, v in body.get("stale", {}).items()},
            pending.get("release"),
            set(pending.get("dirty", [])),
            {str(r) for r in body["known"]} if "known" in body else None,
            body.get("history"),
        )


Kind = Literal["put", "copy", "meta"]


@dataclass(frozen=True)
class Touch:
    """One live key to write: ``put`` the local file, ``copy`` a body already in the bucket
    (from the live key ``source``, or from the object area when ``source`` is None), or
    rewrite only the headers (``meta``: a copy of the key onto itself)."""

    path: str
    kind: Kind
    sha256: str
    size: int
    headers: ObjectHeaders
    source: str | None = None
    stored_size: int = 0
    """Size of the body a ``copy`` or ``meta`` starts from (after any compression)."""


@dataclass
class Switch:
    preserve: dict[str, str] = field(default_factory=dict)
    """sha256 -> a live path holding it: copied into the object area before anything else."""
    groups: list[list[Touch]] = field(default_factory=lambda: [[], [], []])
    keep: dict[str, Stored] = field(default_factory=dict)
    """Live keys left as they are."""
    stale: dict[str, int] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)

    @property
    def touches(self) -> list[Touch]:
        return [t for group in self.groups for t in group]


def plan_switch(
    state: LiveState, manifest: Manifest, rules: HeaderRules, *, local: bool, retain: int
) -> Switch:
    """The work of making ``manifest`` live, given what ``state`` says the bucket holds.

    ``local``: the release's files are on this machine (a deploy); otherwise (a rollback) every
    body must come from the bucket.
    """
    switch = Switch()
    for path, entry in manifest.items():
        want = rules.headers_for(path, entry.content_type)
        have = None if path in state.dirty else state.objects.get(path)
        if have is not None and have.sha256 == entry.sha256:
            if not local:  # no file to compress or expand: the stored encoding stays
                want = want._replace(content_encoding=have.headers.content_encoding)
            if have.headers == want:
                switch.keep[path] = have
                continue
            if have.headers.content_encoding == want.content_encoding:
                # same bytes, other headers: a server-side copy onto itself, not an upload
                meta = Touch(path, "meta", entry.sha256, entry.size, want, stored_size=have.size)
                switch.groups[publish_group(path)].append(meta)
                continue
        kind: Kind = "put" if local else "copy"
        switch.groups[publish_group(path)].append(Touch(path, kind, entry.sha256, entry.size, want))
    _choose_sources(switch)
    _plan_preserve(switch, state, manifest)
    _plan_deletes(switch, state, manifest, retain)
    return switch


def touched_by(state: LiveState, manifest: Manifest, rules: HeaderRules | None) -> set[str]:
    """Keys a deploy of ``manifest`` from ``state`` may have written before it died: those its
    switch would touch (with the header rules it ran with), or all of its keys if they are
    unknown."""
    if rules is None:
        return set(manifest)
    return {t.path for t in plan_switch(state, manifest, rules, local=True, retain=1).touches}


def _stable_homes(switch: Switch) -> dict[str, str]:
    """sha256 -> an untouched live key holding it: safe to copy from during the switch."""
    homes: dict[str, str] = {}
    for path, stored in switch.keep.items():
        homes.setdefault(stored.sha256, path)
    return homes


def _choose_sources(switch: Switch) -> None:
    """A rollback copies each body from an untouched live key holding it, if there is one
    (its encoding comes along), else from the object area."""
    homes = _stable_homes(switch)
    for group in switch.groups:
        for i, t in enumerate(group):
            home = homes.get(t.sha256)
            if t.kind == "copy" and home is not None:
                encoding = switch.keep[home].headers.content_encoding
                headers = t.headers._replace(content_encoding=encoding)
                group[i] = Touch(t.path, "copy", t.sha256, t.size, headers, home, switch.keep[home].size)


def _plan_preserve(switch: Switch, state: LiveState, manifest: Manifest) -> None:
    """Bodies about to be overwritten or dropped that no untouched key keeps: a rollback
    needs them, so they go to the object area first (a server-side copy, no upload)."""
    homes = _stable_homes(switch)
    replaced = {t.path: t.sha256 for t in switch.touches if t.kind != "meta"}
    leaving = [*replaced, *(p for p in state.objects if p not in manifest)]
    for path in leaving:
        stored = state.objects.get(path)
        if stored is None or path in state.dirty or stored.sha256 in homes:
            continue
        if replaced.get(path) == stored.sha256:
            continue  # the same bytes stay at this key (only their encoding changes)
        switch.preserve.setdefault(stored.sha256, path)


def _plan_deletes(switch: Switch, state: LiveState, manifest: Manifest, retain: int) -> None:
    """Keys no longer in the live release wait ``retain - 1`` more switches, then go."""
    waiting = {p: n - 1 for p, n in state.stale.items()}
    for path in _union(state.objects, state.dirty):
        if path not in manifest:
            waiting[path] = retain - 1
    for path, left in sorted(waiting.items()):
        if path in manifest:
            continue
        if left <= 0:
            switch.deletes.append(path)
        else:
            switch.stale[path] = left


def _union(*groups: Iterable[str]) -> set[str]:
    return {p for g in groups for p in g}
