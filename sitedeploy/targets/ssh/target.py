"""Servers reached over SSH: the local target's layout on every host, switched together.

    <path>/releases/<id>/     one complete release per folder, never modified once live
    <path>/current            -> releases/<id> (relative), swapped with posix-rename
    <path>/.sitedeploy/       state files (see sitedeploy.release.records), the same on every host

``path`` is absolute or relative to the login's home folder. One connection per host is opened
on first use and reused for the whole deploy; hosts work in parallel (a thread each).

Two-phase switch (:meth:`SSHTarget.switch_to`): ``prepare`` completes the release on every host
first (see :mod:`.release`). Then *prepare*: on every host check the release folder is
there, remember where ``current`` points and create a temp symlink to the new release; any
failure removes the temp links and raises, nothing switched. Then *commit*: posix-rename every
temp link over ``current`` at once. If a host fails there, the hosts already switched are
switched back to what they served before, and the error names the failed host.

The lock (``create_meta``) is taken on every host in a fixed order, each with an atomic
``mkdir``-like step: a complete temp folder holding the file is renamed to ``<name>.d/``,
which fails when the folder exists. If any host refuses, the ones taken are released. A host
that refuses because it already holds *this very* lock (our random token) shares its folder
with a host taken before it (two names for one machine, a shared NFS web root): that is an
error, never a wait, since the two would stage and switch over each other.

Retained releases stay as recorded: every file of a finished release is made read-only
(``chmod a-w``; unchanged files are hard links shared with older releases), repairs replace
files by rename, and a release left staged by a dead run is verified before it is reused.
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ...config import SSHTargetConfig
from ...errors import LeaseLost, TargetError
from ...progress import Progress
from ...redirects.reload import command_argv, failed
from ...release.diff import Plan
from ...release.lock import held_tokens
from ...release.manifest import Manifest
from ...release.records import ReleaseRecord
from ..base import Closing, Drift, PreparedFolder
from .delta import SSHTransferStats
from .host import SSHHost, temp_name
from .release import nul_list, repair_host, stage_host, verify_host
from .scripts import CLEAR_BUT_STATE, FENCED_SWITCH, RENEW_LOCK

T = TypeVar("T")

class SSHTarget(Closing):
    def __init__(self, name: str, cfg: SSHTargetConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.root = cfg.path.rstrip("/") or "/"
        self.meta_dir = f"{self.root}/.sitedeploy"
        self.current = f"{self.root}/current"
        self.hosts = [SSHHost(name, entry, cfg) for entry in cfg.hosts]
        self._pool = ThreadPoolExecutor(max(1, len(self.hosts)), thread_name_prefix=f"ssh-{name}")

    def lease_store(self) -> SSHTarget:
        """Its own connections for the lock's heartbeat thread: an SFTP session is not shared
        between threads, and a renewal must not wait behind a long upload."""
        return SSHTarget(self.name, self.cfg)

    def describe(self) -> str:
        where = self.root if self.root.startswith("/") else f"/~/{self.root}"
        return f"ssh://{','.join(h.label for h in self.hosts)}{where}"

    # --- fan-out --------------------------------------------------------------------------

    def _each(self, work: Callable[[SSHHost], T], hosts: list[SSHHost] | None = None) -> dict[str, T]:
        """Run ``work`` on every host in parallel; raise one error naming each host that failed."""
        results, errors = self._each_outcome(work, hosts)
        if errors:
            raise _combined(errors)
        return results

    def _each_outcome(
        self, work: Callable[[SSHHost], T], hosts: list[SSHHost] | None = None
    ) -> tuple[dict[str, T], dict[str, TargetError]]:
        chosen = self.hosts if hosts is None else hosts
        futures = {h.label: self._pool.submit(work, h) for h in chosen}
        results: dict[str, T] = {}
        errors: dict[str, TargetError] = {}
        for label, future in futures.items():
            try:
                results[label] = future.result()
            except TargetError as exc:
                errors[label] = exc
        # A bug (any other exception) propagates from ``future.result()`` above, after the
        # hosts before it finished: it is not a host's failure and must not be retried.
        return results, errors

    # --- MetaStore ------------------------------------------------------------------------

    def read_meta(self, name: str) -> bytes | None:
        """The file from the first host that has it (all hosts hold the same state)."""
        for host in self.hosts:
            data = host.read_file(f"{self.meta_dir}/{name}")
            if data is None:  # a file made by create_meta lives in its own folder
                data = host.read_file(f"{self.meta_dir}/{name}.d/{posixpath.basename(name)}")
            if data is not None:
                return data
        return None

    def write_meta(self, name: str, data: bytes) -> None:
        self._each(lambda h: h.write_file(f"{self.meta_dir}/{name}", data))

    def create_meta(self, name: str, data: bytes) -> bool:
        """Exclusive create on every host, in a fixed order so two deployers cannot deadlock."""
        taken: list[SSHHost] = []
        try:
            for host in sorted(self.hosts, key=lambda h: h.label):
                if not self._create_on(host, name, data):
                    if taken and self._read_created(host, name) == data:
                        raise self._shared_folder(taken, host, name)
                    self._each(lambda h: self._delete_on(h, name), taken)
                    return False
                taken.append(host)
        except BaseException:
            self._each_outcome(lambda h: self._delete_on(h, name), taken)  # best effort
            raise
        return True

    def _create_on(self, host: SSHHost, name: str, data: bytes) -> bool:
        final = f"{self.meta_dir}/{name}.d"
        staging = temp_name(final)
        with host.step(f"take {name}", final):
            host.sh("create the state folder", 'mkdir -p -- "$1"', posixpath.dirname(final))
            host.sftp.mkdir(staging)
            host.write_file(f"{staging}/{posixpath.basename(name)}", data)
            try:  # SFTP rename refuses an existing target: the lock's one atomic step
                host.sftp.rename(staging, final)
                return True
            except OSError:
                host.sh("clean up", 'rm -rf -- "$1"', staging)
                return False

    def _read_created(self, host: SSHHost, name: str) -> bytes | None:
        return host.read_file(f"{self.meta_dir}/{name}.d/{posixpath.basename(name)}")

    def _shared_folder(self, taken: list[SSHHost], host: SSHHost, name: str) -> TargetError:
        # ``data`` carries a random token: seeing it through a second host means one folder.
        return TargetError(
            f"target '{self.name}': hosts {', '.join(h.label for h in taken)} and {host.label} share "
            f"one folder ({self.root}): the {name} just written through the first is seen through "
            f"{host.label}; list each machine once in hosts (two names for one machine, or a shared "
            "NFS web root, must not be separate hosts)",
            retryable=False,
        )

    def _delete_on(self, host: SSHHost, name: str) -> None:
        folder = f"{self.meta_dir}/{name}.d"
        for path in (f"{self.meta_dir}/{name}", f"{folder}/{posixpath.basename(name)}", folder):
            with host.step(f"delete {name}", path):
                try:
                    (host.sftp.rmdir if path == folder else host.sftp.remove)(path)
                except OSError as exc:
                    if exc.errno is not None and exc.errno != 2:  # gone already is fine
                        raise

    def delete_meta(self, name: str) -> None:
        self._each(lambda h: self._delete_on(h, name))

    # --- releases -------------------------------------------------------------------------

    def live_by_host(self) -> dict[str, str | None]:
        return self._each(self._live_on)

    def _live_on(self, host: SSHHost) -> str | None:
        link = host.readlink(self.current)
        return posixpath.basename(link.rstrip("/")) if link else None

    def live_release(self) -> str | None:
        """The first host's live release (``status`` flags hosts that disagree)."""
        live = self.live_by_host()
        return next((rid for rid in live.values() if rid is not None), None)

    def list_releases(self) -> list[str]:
        """Every complete release found on any host (``remove_release`` skips absent ones)."""
        found = self._each(lambda h: h.sh("list releases", LIST, f"{self.root}/releases"))
        return sorted({rid for out in found.values() for rid in out.split("\n") if rid})

    def prepare(
        self,
        record: ReleaseRecord,
        manifest: Manifest,
        plan: Plan,
        build_dir: Path | None,
        progress: Progress,
    ) -> PreparedFolder:
        """Complete the release on every host (see :mod:`.release`); None: check it is there."""
        _check_id(record.id)
        if build_dir is None:
            self._each(lambda h: self._require_release(h, record.id))
            return PreparedFolder(self, record.id, created=False)
        base = self.live_release()
        total = SSHTransferStats()
        lock = threading.Lock()
        expected = len(plan.uploads) * len(self.hosts)
        with progress.bar(f"uploading to {len(self.hosts)} host(s)", expected) as bar:

            def advance(n: int) -> None:
                with lock:
                    bar(n)

            per_host = self._each(lambda h: self._stage(h, record, build_dir, manifest, plan, base, advance))
        for stats in per_host.values():
            total.add(stats)
        return PreparedFolder(self, record.id, created=True, stats=total)

    def _stage(
        self,
        host: SSHHost,
        record: ReleaseRecord,
        build_dir: Path,
        manifest: Manifest,
        plan: Plan,
        base: str | None,
        advance: Callable[[int], None],
    ) -> SSHTransferStats:
        """Stage on one host; a release a dead run left staged is reused only if intact."""
        stats = stage_host(host, self.root, record, build_dir, manifest, plan, base, advance)
        reused = stats.files_sent == 0 and stats.files_linked == 0 and len(manifest) > 0
        if reused and not verify_host(host, self.root, record.id, manifest).clean:
            self._remove_on(host, record.id)
            stats = stage_host(host, self.root, record, build_dir, manifest, plan, base, advance)
        self._make_read_only(host, record.id)
        return stats

    def _make_read_only(self, host: SSHHost, release_id: str) -> None:
        host.sh("make the release read-only", READ_ONLY, f"{self.root}/releases/{release_id}")

    def _remove_on(self, host: SSHHost, release_id: str) -> None:
        host.sh(f"remove release {release_id}", 'rm -rf -- "$1"', f"{self.root}/releases/{release_id}")

    def _require_release(self, host: SSHHost, release_id: str) -> None:
        if not host.is_dir(f"{self.root}/releases/{release_id}"):
            raise TargetError(f"{host.where}: release {release_id} is not on the host; deploy it again")

    def switch_to(self, release_id: str) -> None:
        """Two-phase: a temp link on every host, then rename them all; switch back on failure."""
        _check_id(release_id)
        prepared, errors = self._each_outcome(lambda h: self._prepare_switch(h, release_id))
        if errors:
            self._each_outcome(lambda h: self._remove_link(h, prepared[h.label][0]), self._hosts(prepared))
            raise _combined(errors, "nothing was switched")
        switched, errors = self._each_outcome(lambda h: self._commit_switch(h, prepared[h.label][0]))
        if errors:
            back, stuck = self._each_outcome(
                lambda h: self._switch_to(h, prepared[h.label][1]), self._hosts(switched)
            )
            note = f"switched back {', '.join(back) or 'none'}"
            if stuck:
                note += f"; could NOT switch back {', '.join(stuck)} (run the deploy or rollback again)"
            raise _combined(errors, note)

    def _hosts(self, labels: Mapping[str, object]) -> list[SSHHost]:
        return [h for h in self.hosts if h.label in labels]

    def _prepare_switch(self, host: SSHHost, release_id: str) -> tuple[str, str | None]:
        """(temp link to the release, where ``current`` points now)."""
        self._require_release(host, release_id)
        before = host.readlink(self.current)
        return self._make_link(host, f"releases/{release_id}"), before

    def _make_link(self, host: SSHHost, to: str) -> str:
        link = temp_name(self.current)
        with host.step("prepare the switch", link):
            host.sftp.symlink(to, link)  # relative, so the folder can move or be mounted elsewhere
        return link

    def _remove_link(self, host: SSHHost, link: str) -> None:
        with host.step("remove the temp link", link):
            host.sftp.remove(link)

    def renew_lock(self, token: str, data: bytes) -> bool:
        """On every host, in one script: replace the lock only while it holds ``token``."""
        found = self._each(lambda h: h.sh("renew the lock", RENEW_LOCK, self.meta_dir, token, stdin=data))
        return all(out.strip() == "renewed" for out in found.values())

    def _commit_switch(self, host: SSHHost, link: str) -> None:
        """rename(2) of the temp link over ``current`` (readers see old or new), on the host in
        one script after checking that the host's lock is still a lease this process holds: a
        pause of this process cannot fall between the check and the switch."""
        out = host.sh("switch current", FENCED_SWITCH, self.meta_dir, link, self.current, *held_tokens())
        if out.strip() != "switched":
            raise LeaseLost(
                f"{host.where}: this run lost its lock ({out.strip() or 'no lock'}); nothing was switched "
                "there. Check 'sitedeploy status' and run again"
            )

    def _switch_to(self, host: SSHHost, before: str | None) -> None:
        if before is None:
            with host.step("switch back (remove current)", self.current):
                host.sftp.remove(self.current)
        else:
            self._commit_switch(host, self._make_link(host, before))

    def reload_server(self) -> None:
        """The configured ``reload_command`` on every host (after all of them switched)."""
        argv = command_argv(self.cfg.reload_command)
        if not argv:
            return
        _, errors = self._each_outcome(lambda h: h.sh("reload the web server", 'exec "$@"', *argv))
        if errors:
            why = "; ".join(f"{label}: {e.message}" for label, e in errors.items())[:400]
            raise failed(self.name, argv, why, ", ".join(errors))

    def remove_release(self, release_id: str) -> None:
        _check_id(release_id)
        live = self.live_by_host()
        if release_id in live.values():
            holders = ", ".join(h for h, rid in live.items() if rid == release_id)
            raise TargetError(
                f"target '{self.name}': refusing to remove release {release_id}, live on {holders}"
            )
        self._each(lambda h: self._remove_on(h, release_id))

    def retire(self) -> None:
        """On every host: everything but the state, then the folder with its state."""
        self._each(lambda h: h.sh("retire the line", CLEAR_BUT_STATE, self.root))
        self._each(lambda h: h.sh("retire the line", 'rm -rf -- "$1"', self.root))

    # --- drift ----------------------------------------------------------------------------

    def verify(self, release_id: str, manifest: Manifest) -> list[Drift]:
        _check_id(release_id)
        found = self._each(lambda h: verify_host(h, self.root, release_id, manifest))
        return [found[h.label] for h in self.hosts]

    def repair(self, release_id: str, manifest: Manifest, build_dir: Path, drift: list[Drift]) -> None:
        _check_id(release_id)
        by_label = {d.host: d for d in drift}
        dirty = [h for h in self.hosts if h.label in by_label and not by_label[h.label].clean]

        def repair_on(host: SSHHost) -> None:
            changed = by_label[host.label].changed
            sharing = self._sharing_inode(host, release_id, changed) if changed else []
            repair_host(host, self.root, release_id, build_dir, by_label[host.label])
            if sharing:  # link the repaired files into the retained releases that shared them
                host.sh("repair retained releases", RELINK, f"{self.root}/releases", release_id,
                        stdin=nul_list(sharing))  # fmt: skip
            self._make_read_only(host, release_id)

        self._each(repair_on, dirty)

    def _sharing_inode(self, host: SSHHost, release_id: str, paths: list[str]) -> list[str]:
        """``<release>/<path>`` of other releases holding the same inode as a damaged live file:
        an in-place edit changed them too, and they recorded the same bytes (that is why they
        were linked), so the repaired file goes there as well."""
        out = host.sh("find releases sharing files", SHARING, f"{self.root}/releases", release_id,
                      stdin=nul_list(paths))  # fmt: skip
        return [p for p in out.split("\0") if p]

    def close(self) -> None:
        self._each_outcome(lambda h: h.close())
        self._pool.shutdown(wait=True)


# Paths reach the shell only as xargs arguments (never parsed); $1 releases folder, $2 live id.
SHARING = """cd -- "$1" || exit 0
xargs -0 sh -c 'live="$1"; shift; for p in "$@"; do for r in */; do r="${r%/}"
  if [ "$r" != "$live" ] && [ "$r/$p" -ef "$live/$p" ]; then printf "%s\\0" "$r/$p"; fi
done; done' sitedeploy "$2"
"""
RELINK = """cd -- "$1" || exit 1
xargs -0 sh -c 'live="$1"; shift; for rp in "$@"; do t="$(dirname -- "$rp")/.sitedeploy-relink.$$"
  ln -f -- "$live/${rp#*/}" "$t" && mv -f -- "$t" "$rp" || exit 1
done' sitedeploy "$2"
"""
READ_ONLY = 'find "$1" -type f -perm /222 -exec chmod a-w -- {} +'
LIST = 'cd -- "$1" 2>/dev/null || exit 0; for d in *; do if [ -d "$d" ]; then echo "$d"; fi; done'


def _check_id(release_id: str) -> None:
    if not release_id or "/" in release_id or release_id.startswith(".") or "\n" in release_id:
        raise TargetError(f"invalid release id {release_id!r}")


def _combined(errors: dict[str, TargetError], note: str = "") -> TargetError:
    """One line for several hosts; retryable only if every failure is; the class kept if shared."""
    message = "; ".join(e.message for e in errors.values()) + (f" ({note})" if note else "")
    kinds = {type(e) for e in errors.values()}
    kind = kinds.pop() if len(kinds) == 1 else TargetError
    return kind(message, retryable=all(e.retryable for e in errors.values()))
