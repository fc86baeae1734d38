"""What the S3 target knows about its bucket, and the pure plan of one switch.

The state object (``<prefix>.sitedeploy/live.json``) names the live release and records what
sitedeploy last wrote at every live key: sha256, ETag, stored size and headers. Normal
deploys and rollbacks compare the wanted release with this record, never with a listing of
the bucket. It also holds:

``stale``    keys that left the live release but stay for ``retain_releases`` switches, so pages
             held in browser and CDN caches keep their assets: path -> switches still to wait.
             0: the key's time is up and it is deleted right after the commit that says so;
             it leaves ``stale`` only in a later commit, once that switch has deleted it
             again (``Switch.confirm``, before its own writes). So a run stopped between its
             commit and its deletes (killed, or the delete refused) leaves keys the state still
             owns: leftovers the next switch deletes, never extra keys (drift) that would block
             a rollback.
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
``homes``    on a versioned bucket: sha256 -> :class:`Home`, the noncurrent version of a live
             key that still holds a body retained releases need (see ``bodies``).
``switches`` how many switches committed a state: every tenth sweeps the bucket's versions.

On a versioned bucket each :class:`Stored` also keeps the VersionId its write returned: when the
key is overwritten or deleted, that version is where the old body stays, with no copy.

:func:`plan_switch` turns (state, wanted manifest) into the work of one switch, with no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ...release.manifest import Manifest
from .headers import KeyHeaders, ObjectHeaders, publish_group
from .site_rules import EMPTY


@dataclass(frozen=True)
class Stored:
    """What sitedeploy wrote at one live key."""

    sha256: str
    etag: str
    size: int
    """Stored size (differs from the file's when it is gzip-compressed)."""
    headers: ObjectHeaders
    version_id: str | None = None
    """The version the write made, on a versioned bucket; None otherwise (and in older states)."""

    def to_json(self, header_index: int) -> list[object]:
        row: list[object] = [self.sha256, self.etag, self.size, header_index]
        return [*row, self.version_id] if self.version_id else row


class Home(NamedTuple):
    """Where a replaced or removed body stays on a versioned bucket: a noncurrent version."""

    path: str
    version_id: str
    until: str
    """The newest release id listed when the body last left the live keys: the home is needed
    while any release this old or older is retained (``bodies.expired``)."""


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
    homes: dict[str, Home] = field(default_factory=dict)
    switches: int = 0

    def copy(self) -> LiveState:
        known = None if self.known is None else set(self.known)
        history = None if self.history is None else list(self.history)
        return LiveState(
            self.release,
            dict(self.objects),
            dict(self.stale),
            self.pending,
            set(self.dirty),
            known,
            history,
            dict(self.homes),
            self.switches,
        )

    def to_json(self) -> bytes:
        table: dict[ObjectHeaders, int] = {}
        objects = {
            path: s.to_json(table.setdefault(s.headers, len(table)))
            for path, s in sorted(self.objects.items())
        }
        body: dict[str, Any] = {
            "version": 1,
            "release": self.release,
            "headers": [h.to_row() for h in table],
            "objects": objects,
            "stale": self.stale,
            "pending": {"release": self.pending, "dirty": sorted(self.dirty)} if self.pending else None,
        }
        if self.known is not None:
            body["known"] = sorted(self.known)
        if self.history is not None:
            body["history"] = self.history
        if self.homes:
            body["homes"] = {sha: list(home) for sha, home in sorted(self.homes.items())}
        if self.switches:
            body["switches"] = self.switches
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | None) -> LiveState:
        if not data:
            return cls(known=set())  # no state yet: every release record found is a dead run's
        body: dict[str, Any] = json.loads(data)
        table = [ObjectHeaders.from_row(h) for h in body.get("headers", [])]
        objects = {path: _stored(row, table) for path, row in body.get("objects", {}).items()}
        pending = body.get("pending") or {}
        return cls(
            body.get("release"),
            objects,
            {str(k): int(v) for k, v in body.get("stale", {}).items()},
            pending.get("release"),
            set(pending.get("dirty", [])),
            {str(r) for r in body["known"]} if "known" in body else None,
            body.get("history"),
            {str(sha): Home(*map(str, home)) for sha, home in body.get("homes", {}).items()},
            int(body.get("switches", 0)),
        )


def _stored(row: list[Any], table: list[ObjectHeaders]) -> Stored:
    """``[sha256, etag, size, headers]`` plus the version id on a versioned bucket."""
    sha, etag, size, index, *version = row
    if len(version) > 1:
        raise ValueError(f"unexpected state row {row!r}")
    return Stored(str(sha), str(etag), int(size), table[index], str(version[0]) if version else None)


Kind = Literal["put", "copy", "meta"]


@dataclass(frozen=True)
class Touch:
    """One live key to write: ``put`` the local file, ``copy`` a body already in the bucket
    (from the live key ``source``, from its noncurrent ``version`` when that is set, or from
    the object area when ``source`` is None), or rewrite only the headers (``meta``: a copy of
    the key onto itself)."""

    path: str
    kind: Kind
    sha256: str
    size: int
    headers: ObjectHeaders
    source: str | None = None
    stored_size: int = 0
    """Size of the body a ``copy`` or ``meta`` starts from (after any compression)."""
    version: str | None = None


@dataclass
class Switch:
    preserve: dict[str, str] = field(default_factory=dict)
    """sha256 -> a live path holding it: copied into the object area before anything else
    (a body whose write returned no version id: an unversioned bucket, or an older state)."""
    homes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """sha256 -> (path, version id) of a body that leaves the live keys and stays as that
    version: recorded in the state object at the commit, nothing is written for it."""
    groups: list[list[Touch]] = field(default_factory=lambda: [[], [], []])
    keep: dict[str, Stored] = field(default_factory=dict)
    """Live keys left as they are."""
    stale: dict[str, int] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    """Keys whose time is up: deleted after the commit, which still records them (at 0)."""
    confirm: list[str] = field(default_factory=list)
    """Keys an earlier commit recorded at 0: deleted (again) first thing in this switch, in
    case that run never deleted them; dropped from ``stale`` only if that delete went through.
    Not in the live release, so readers miss nothing; first, so it follows the lease check."""

    @property
    def touches(self) -> list[Touch]:
        return [t for group in self.groups for t in group]

    def recorded_stale(self, undeleted: Iterable[str]) -> dict[str, int]:
        """``stale`` as the commit writes it: ``deletes`` and the ``confirm`` keys whose delete
        failed stay, at 0, until a later switch has deleted them."""
        return {**self.stale, **dict.fromkeys([*self.deletes, *undeleted], 0)}


def plan_switch(
    state: LiveState, manifest: Manifest, rules: KeyHeaders, *, local: bool, retain: int
) -> Switch:
    """The work of making ``manifest`` live, given what ``state`` says the bucket holds.

    ``local``: the release's files are on this machine (a deploy); otherwise (a rollback) every
    body must come from the bucket. An empty body (a redirect object) is always written from
    nothing, never copied or kept.
    """
    switch = Switch()
    for path, entry in manifest.items():
        want = rules.headers_for(path, entry.content_type)
        if entry.sha256 == EMPTY:
            want = want._replace(content_encoding=None)
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
        kind: Kind = "put" if local or entry.sha256 == EMPTY else "copy"
        switch.groups[publish_group(path)].append(Touch(path, kind, entry.sha256, entry.size, want))
    _choose_sources(switch, state)
    _plan_preserve(switch, state, manifest)
    _plan_deletes(switch, state, manifest, retain)
    return switch


def touched_by(state: LiveState, manifest: Manifest, rules: KeyHeaders | None) -> set[str]:
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


def _choose_sources(switch: Switch, state: LiveState) -> None:
    """A rollback copies each body from an untouched live key holding it, if there is one
    (its encoding comes along), else from the version that kept it, else from the object area."""
    homes = _stable_homes(switch)
    for group in switch.groups:
        for i, t in enumerate(group):
            if t.kind != "copy":
                continue
            home = homes.get(t.sha256)
            if home is not None:
                encoding = switch.keep[home].headers.content_encoding
                headers = t.headers._replace(content_encoding=encoding)
                group[i] = Touch(t.path, "copy", t.sha256, t.size, headers, home, switch.keep[home].size)
            elif t.sha256 in state.homes:  # its encoding is read from the version before the copy
                kept = state.homes[t.sha256]
                group[i] = Touch(
                    t.path, "copy", t.sha256, t.size, t.headers, kept.path, version=kept.version_id
                )


def _plan_preserve(switch: Switch, state: LiveState, manifest: Manifest) -> None:
    """Bodies about to be overwritten or dropped that no untouched key keeps: a rollback
    needs them. On a versioned bucket the version that holds one stays where it is, and only
    its id is noted (``homes``); a version is immutable, so this holds even for a key a dead
    run may have rewritten. Otherwise the body goes to the object area first (a server-side
    copy, no upload), unless the key is suspect: the dead run's own prepare kept it."""
    homes = _stable_homes(switch)
    replaced = {t.path: t.sha256 for t in switch.touches if t.kind != "meta"}
    leaving = [*replaced, *(p for p in state.objects if p not in manifest)]
    for path in leaving:
        stored = state.objects.get(path)
        if stored is None or stored.sha256 in homes or stored.sha256 == EMPTY:
            continue
        if replaced.get(path) == stored.sha256:
            continue  # the same bytes stay at this key (only their encoding changes)
        if stored.version_id:
            switch.homes.setdefault(stored.sha256, (path, stored.version_id))
        elif path not in state.dirty:
            switch.preserve.setdefault(stored.sha256, path)


def _plan_deletes(switch: Switch, state: LiveState, manifest: Manifest, retain: int) -> None:
    """Keys no longer in the live release wait ``retain - 1`` more switches, then go. Keys
    already gone by the state (at 0) are deleted once more, first thing (``confirm``)."""
    leaving = _union(state.objects, state.dirty)
    waiting: dict[str, int] = {}
    for path, left in state.stale.items():
        if left > 0:
            waiting[path] = left - 1
        elif path not in manifest and path not in leaving:  # a dead run's key: stale anew below
            switch.confirm.append(path)
    for path in leaving:
        if path not in manifest:
            waiting[path] = retain - 1
    for path, left in sorted(waiting.items()):
        if path in manifest:
            continue
        if left <= 0:
            switch.deletes.append(path)
        else:
            switch.stale[path] = left
    switch.confirm.sort()


def _union(*groups: Iterable[str]) -> set[str]:
    return {p for g in groups for p in g}
