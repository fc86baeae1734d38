"""A release's record and manifest on S3: one object, ``releases/<id>.json``.

The release transaction writes a manifest and then its record (``records.write_release``); on
S3 each object written is a request, and the record alone is worth nothing without its
manifest, so the manifest is held back and both go up together as
``{"record": …, "manifest": …, "rules": …}``, carrying the header rules of the switch in its
metadata (for the run after a crash) and the release's ``_redirects`` and ``_headers`` in
``rules`` (``site_rules``: a rollback, the run after a crash and ``verify`` need them, and
the release's own ``rules.json`` is just another body somewhere in the bucket). Reads of
``manifests/<id>.json`` and ``releases/<id>.json`` are answered from that object; buckets
written before this layout keep their two objects, which are still read.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ...errors import TargetError
from .meta import MetaFiles

if TYPE_CHECKING:
    from .transfer import Bucket

RECORD, MANIFEST = "releases/", "manifests/"


def release_id(name: str, folder: str) -> str | None:
    """``abc`` for ``<folder>abc.json``; None for any other name."""
    if name.startswith(folder) and name.endswith(".json"):
        return name[len(folder) : -len(".json")]
    return None


class ReleaseFiles:
    def __init__(self, meta: MetaFiles, rules: dict[str, str]) -> None:
        self.meta = meta
        self.rules = rules
        self._held: dict[str, bytes] = {}
        """Manifests written but not sent yet, by release id: they go up with the record."""
        self.site_rules: dict[str, bytes] = {}
        """Release id -> its ``rules.json`` (set by ``prepare``), sent with its record."""

    def write(self, name: str, data: bytes) -> bool:
        """Handle a write of a manifest or a record; False for any other file."""
        rid = release_id(name, MANIFEST)
        if rid is not None:
            self._held[rid] = data
            return True
        rid = release_id(name, RECORD)
        if rid is None or rid not in self._held:
            return False
        both = {"record": json.loads(data), "manifest": json.loads(self._held.pop(rid))}
        if rid in self.site_rules:
            both["rules"] = json.loads(self.site_rules.pop(rid))
        self.meta.write(name, json.dumps(both, separators=(",", ":")).encode(), self.rules)
        return True

    def read(self, name: str) -> tuple[bool, bytes | None]:
        """(handled, bytes) for a manifest or a record; (False, None) for any other file."""
        rid = release_id(name, RECORD)
        if rid is not None:
            raw = self.meta.read(name)
            both = self._combined(raw)
            return True, json.dumps(both["record"]).encode() if both else raw
        rid = release_id(name, MANIFEST)
        if rid is not None:
            both = self._combined(self.meta.read(f"{RECORD}{rid}.json"))
            return True, json.dumps(both["manifest"]).encode() if both else self.meta.read(name)
        return False, None

    def read_with_rules(self, rid: str) -> tuple[bytes, dict[str, str]] | None:
        """A release's manifest and the metadata it was switched with (after a crash)."""
        found = self.meta.read_with_metadata(f"{RECORD}{rid}.json")
        both = self._combined(found[0]) if found else None
        if found is not None and both is not None:
            return json.dumps(both["manifest"]).encode(), found[1]
        return self.meta.read_with_metadata(f"{MANIFEST}{rid}.json")  # the older two-object layout

    def read_site_rules(self, rid: str) -> bytes | None:
        """The ``rules.json`` a release was switched with (None: it had none)."""
        both = self._combined(self.meta.read(f"{RECORD}{rid}.json"))
        rules = both.get("rules") if both else None
        return json.dumps(rules).encode() if rules else None

    @staticmethod
    def _combined(data: bytes | None) -> dict[str, Any] | None:
        if not data:
            return None
        body = json.loads(data)
        return body if isinstance(body, dict) and "manifest" in body and "record" in body else None


def retire_prefix(target: str, bucket: Bucket, keys: list[str], lock: str) -> None:
    """Delete a retired line's keys, all but its lock (which its holder releases last)."""
    refused = bucket.delete([k for k in keys if k != lock])
    if refused:
        raise TargetError(
            f"target '{target}': could not delete {len(refused)} key(s) of the line, first {refused[0]}; "
            "run the command again"
        )
