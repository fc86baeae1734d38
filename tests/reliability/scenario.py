"""One content repo and one deploy.toml per target type, driven through the real CLI.

A :class:`Scenario` knows how to make commit ``k`` (a MkDocs site that changes every sixth
commit, a static site with a PNG that goes through the image step), how to run
``sitedeploy`` in a subprocess that may be killed, and how to read what each host serves.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from sitedeploy import config as config_mod
from sitedeploy.release.manifest import Manifest
from sitedeploy.release.records import read_manifest, read_release
from sitedeploy.targets import Target, open_target
from tests.fixtures.git import ContentRepo

EXE = str(Path(sys.executable).with_name("sitedeploy"))


def png(k: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 64), ((k * 40) % 256, 80, 160)).save(out, "PNG")
    return out.getvalue()


def write_commit(repo: ContentRepo, k: int) -> str:
    """Commit number ``k``: what changes in it is spread over build, images and transfer."""
    if k % 6 == 1:
        repo.add_mkdocs_site(version=f"v{k}")
    repo.write(
        "sites/landing/index.html",
        f'<!doctype html><link rel="stylesheet" href="style.css"><h1>v{k}</h1><img src="logo.png">\n',
    )
    repo.write("sites/landing/style.css", f"/* v{k} */ h1 {{ color: red; }}\n")
    if k % 2 == 1:
        repo.write("sites/landing/logo.png", png(k))
    for i in range(8):  # a few unchanged pages: linked or kept, never sent again
        repo.write(f"sites/landing/p{i}/index.html", f"<!doctype html><p>page {i}</p>\n")
    return repo.commit(f"version {k}")


def toml_value(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_deploy_toml(folder: Path, repo: Path, name: str, table: dict[str, object]) -> Path:
    body = "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
    text = (
        f'[source]\nrepo = "{repo}"\n\n'
        '[[sites]]\nname = "docs"\npath = "sites/docs"\nmount = "/docs/"\n\n'
        '[[sites]]\nname = "landing"\npath = "sites/landing"\nmount = "/landing/"\n\n'
        '[images]\nenabled = true\nwidths = [48]\nformats = ["webp"]\n\n'
        f"[targets.{name}]\n{body}keep_releases = 4\n"
    )
    path = folder / "deploy.toml"
    path.write_text(text)
    return path


@dataclass
class Run:
    """One ``sitedeploy`` subprocess: killed (returncode -9) or finished."""

    returncode: int
    seconds: float
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def last_step(self) -> str:
        """The last progress line it printed: roughly where the kill landed."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return (lines[-1] if lines else "(starting up)")[:40]


@dataclass
class Scenario:
    kind: str
    repo: ContentRepo
    config_path: Path
    served: Callable[[], list[dict[str, str]]]
    """{path: sha256} of what each host (or the bucket) serves now."""
    commits: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> config_mod.Config:
        return config_mod.load(self.config_path)

    def target(self) -> Target:
        cfg = self.config
        return open_target(self.kind, cfg.targets[self.kind], cfg)

    def next_commit(self) -> str:
        self.commits += 1
        return write_commit(self.repo, self.commits)

    def cli(self, *args: str, crash_at: str | None = None, kill_after: float | None = None) -> Run:
        """Run ``sitedeploy ARGS`` in its own process group; SIGKILL the group after
        ``kill_after`` seconds (a power cut kills the MkDocs child too), or let
        ``SITEDEPLOY_CRASH_AT`` kill it at a named step."""
        env = {**os.environ, **self.extra_env}
        env.pop("SITEDEPLOY_CRASH_AT", None)
        if crash_at:
            env["SITEDEPLOY_CRASH_AT"] = crash_at
        command = [EXE, "--config", str(self.config_path), *args]
        start = time.monotonic()
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            _, err = proc.communicate(timeout=kill_after if kill_after is not None else 300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            return Run(-signal.SIGKILL, time.monotonic() - start, err.decode(errors="replace"))
        _reap_group(proc.pid)
        return Run(proc.returncode, time.monotonic() - start, err.decode(errors="replace"))

    # --- reading the target -------------------------------------------------------------

    def live(self) -> tuple[str | None, Manifest | None]:
        with self.target() as t:
            live = t.live_release()
            return live, read_manifest(t, live) if live else None

    def manifest(self, release_id: str) -> Manifest | None:
        with self.target() as t:
            return read_manifest(t, release_id)

    def history_raw(self) -> list[bytes | None]:
        """history.json as stored (on each host for SSH): must always parse."""
        with self.target() as t:
            hosts = getattr(t, "hosts", None)
            if hosts is None:
                return [t.read_meta("history.json")]
            meta = t.meta_dir  # type: ignore[attr-defined]
            return [h.read_file(f"{meta}/history.json") for h in hosts]

    def live_commit(self) -> str | None:
        with self.target() as t:
            live = t.live_release()
            record = read_release(t, live) if live else None
            return record.commit if record else None


def _reap_group(pgid: int) -> None:
    """A finished run leaves no process behind in its group (checked, then cleaned)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return


def parse_history(raw: bytes | None) -> list[dict[str, Any]]:
    """A torn write would fail here: every entry must be a complete object."""
    entries = json.loads(raw) if raw else []
    keys = {"action", "commit", "release", "deployed_at", "deployed_by"}
    assert isinstance(entries, list) and all(keys <= set(e) for e in entries), raw
    return entries
