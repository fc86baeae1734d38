"""SSH: the local layout on every host — the root's releases hold a symlink per line and alias.

``cp -al`` stages a new root release from the live one, symlinks included, so the links of a
release are rebuilt from its own recorded state before it can go live: every top-level
symlink is removed and the wanted ones made (the release is not live yet, so this need not be
atomic; the switch of ``current`` is).
"""

from __future__ import annotations

from pathlib import Path

from ..config import SSHTargetConfig
from ..progress import Progress
from ..release.diff import Plan
from ..release.manifest import Manifest
from ..release.records import ReleaseRecord
from ..targets.base import PreparedFolder
from ..targets.ssh.target import SSHTarget
from .state import forget_state, read_state

_LINK = r"""
d=$1; shift
find "$d" -mindepth 1 -maxdepth 1 -type l -exec rm -f -- {} +
while [ $# -gt 0 ]; do ln -s -- "$2" "$d/$1"; shift 2; done
"""


class LinkedSSHRoot(SSHTarget):
    def __init__(self, name: str, cfg: SSHTargetConfig, kind: str) -> None:
        super().__init__(name, cfg)
        self.kind = kind

    def prepare(
        self,
        record: ReleaseRecord,
        manifest: Manifest,
        plan: Plan,
        build_dir: Path | None,
        progress: Progress,
    ) -> PreparedFolder:
        prepared = super().prepare(record, manifest, plan, build_dir, progress)
        state = read_state(self, record.id, self.kind)
        links = state.links()
        pairs = [part for name, line in links.items() for part in (name, f"../../lines/{line}/current")]
        folder = f"{self.root}/releases/{record.id}"
        self._each(lambda h: h.sh("link the lines", _LINK, folder, *pairs))
        return prepared

    def remove_release(self, release_id: str) -> None:
        super().remove_release(release_id)
        forget_state(self, release_id)
