"""The independent review of the trust boundary (issue 21): attacks a content repo can make.

Each test is one attempt by a commit that controls everything in its repo (files, names,
mkdocs.yml, requirements.txt, committed packages, branch names). An attempt that held is kept
as a regression test; an attempt that succeeded was fixed and its test shows the fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.errors import BuildError, SitedeployError
from sitedeploy.sandbox import bwrap
from sitedeploy.sandbox.untrusted import UnsafeOutput
from sitedeploy.versions import previews
from tests.fixtures.canaries import FOLDER_CANARY, CanaryFolder
from tests.fixtures.git import ContentRepo, write_config

DOCS = '[[sites]]\nname = "docs"\npath = "sites/docs"\n'
PREVIEWS = 'previews = "pull:*"\n'


def _config(tmp_path: Path, repo: ContentRepo, sites: str = DOCS, extra: str = "") -> config_mod.Config:
    ops = tmp_path / "ops"
    ops.mkdir(exist_ok=True)
    return config_mod.load(write_config(ops, repo.path, sites=sites, extra=extra))


def _hooked(repo: ContentRepo, hook: str, yml_extra: str = "") -> None:
    """``sites/docs`` with a MkDocs hook ``hook`` (module source) and extra mkdocs.yml lines."""
    repo.write("sites/docs/hooks.py", hook)
    yml = (repo.path / "sites/docs/mkdocs.yml").read_text()
    repo.write("sites/docs/mkdocs.yml", yml + "hooks:\n  - hooks.py\n" + yml_extra)


# A daemon that outlives the hook: double fork, new session, then for four seconds it keeps
# planting links to the canary in the output, writing late pages and beating a heart in the
# site's incremental cache (a folder that outlives the build, so the test can see it run).
DAEMON_HOOK = """
import os, sys, time
CANARY = {canary!r}
def on_post_build(config, **kwargs):
    out = config["site_dir"]
    cache = sys.argv[sys.argv.index("--cache") + 1]
    if os.fork():
        time.sleep(0.3)  # the daemon has started beating
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    with open(os.path.join(cache, "heartbeat"), "w") as f:
        f.write("started")
    time.sleep(1)  # past the hook's return: the deployer is reading the output by now
    end = time.time() + 4
    n = 0
    while time.time() < end:
        n += 1
        for path, act in ((os.path.join(out, "late-link.html"), lambda p: os.symlink(CANARY, p)),
                          (os.path.join(out, "late-%d.html" % n), lambda p: open(p, "w").write("late"))):
            try:
                act(path)
            except OSError:
                pass
        try:
            with open(os.path.join(cache, "heartbeat"), "w") as f:
                f.write(str(n))
        except OSError:
            pass
        time.sleep(0.02)
    os._exit(0)
"""


@pytest.mark.slow
def test_a_daemon_started_by_a_hook_dies_with_the_build(
    tmp_path: Path, content_repo: ContentRepo, canary_folder: CanaryFolder
) -> None:
    """Goal 2, races: a hook's daemon that survived the step could swap a page for a link
    after the deployer checked the output and before it published it. bwrap's PID namespace
    ends with the step: the daemon is dead when the deployer reads the output."""
    _hooked(content_repo, DAEMON_HOOK.format(canary=str(canary_folder.file)))
    content_repo.commit("a hook that leaves a daemon behind")
    cfg = _config(tmp_path, content_repo)
    with contextlib.suppress(UnsafeOutput):  # a daemon quick enough to plant a link: refused
        commands.deploy(cfg)
    [heartbeat] = (cfg.state_dir / "mkdocs-cache").rglob("heartbeat")
    beats = heartbeat.read_text()
    time.sleep(1.0)
    assert heartbeat.read_text() == beats, "the daemon still runs after the build returned"
    public = tmp_path / "ops" / "public"
    late = [p for p in public.rglob("*") if p.name.startswith("late") and p.is_symlink()]
    assert late == [] and canary_folder.changes() == []
    published = {p.name for p in public.rglob("late-*")}
    built = {p.name for p in (cfg.state_dir / "builds" / "docs").rglob("late-*")}
    assert published == built  # nothing was added to the output after the deployer checked it


# What a hook tries from inside the step; its findings are published, so the test reads them.
PROBE_HOOK = """
import json, os, socket, sys
HOST_PID, TCP_PORT, ABSTRACT = {pid}, {port}, {abstract!r}
def _try(what):
    try:
        return "OK " + repr(what())[:80]
    except Exception as exc:
        return "ERR " + type(exc).__name__
def _tcp(host, family=socket.AF_INET):
    s = socket.socket(family)
    s.settimeout(3)
    try:
        s.connect((host, TCP_PORT))
    finally:
        s.close()
def _abstract():
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("\\0" + ABSTRACT)
    finally:
        s.close()
def _write(path):
    with open(path, "a") as f:
        f.write("planted")
def on_post_build(config, **kwargs):
    src = os.path.dirname(config["config_file_path"])
    lib = [p for p in sys.path if "mkdocs-lib" in p]
    found = {{
        "tcp-loopback": _try(lambda: _tcp("127.0.0.1")),
        "tcp-v6-loopback": _try(lambda: _tcp("::1", socket.AF_INET6)),
        "metadata": _try(lambda: _tcp("169.254.169.254")),
        "abstract-socket": _try(_abstract),
        "kill-deployer": _try(lambda: os.kill(HOST_PID, 0)),
        "deployer-proc": _try(lambda: os.listdir("/proc/%d" % HOST_PID)),
        "shadow": _try(lambda: open("/etc/shadow").read()),
        "passwd": _try(lambda: open("/etc/passwd").read()),
        "home": _try(lambda: os.listdir("/home")),
        "input-write": _try(lambda: _write(os.path.join(src, "mkdocs.yml"))),
        "lib-write": _try(lambda: _write(os.path.join(lib[0], "sitecustomize.py"))) if lib else "no lib",
        "tty": _try(lambda: open("/dev/tty", "w")),
    }}
    with open(os.path.join(config["site_dir"], "probe.json"), "w") as f:
        json.dump(found, f)
"""


@pytest.mark.slow
def test_a_hook_reaches_no_service_no_process_and_writes_no_input(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    """Goals 1, 2 and 4 from inside a build: TCP on 127.0.0.1 and ::1 where the deployer has
    services listening, an abstract unix socket (bound to the network namespace, not a path),
    the metadata address, the deployer's process (signal, /proc), system secrets, the site's
    own input and the incremental builder's code on ``sys.path``, the terminal."""
    tcp = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    abstract = f"sitedeploy-review-{os.getpid()}"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind("\0" + abstract)
    unix.listen()
    hook = PROBE_HOOK.format(pid=os.getpid(), port=tcp.getsockname()[1], abstract=abstract)
    _hooked(content_repo, hook)
    content_repo.commit("a hook that probes its surroundings")
    try:
        cfg = _config(tmp_path, content_repo)
        commands.deploy(cfg)
    finally:
        tcp.close()
        unix.close()
    found = json.loads((tmp_path / "ops" / "public" / "current" / "probe.json").read_text())
    reached = {what: said for what, said in found.items() if said.startswith("OK")}
    assert reached == {}, reached
    assert "lib-write" in found and found["lib-write"] != "no lib"
    assert (content_repo.path / "sites/docs/mkdocs.yml").read_text().count("planted") == 0


def _laughs(depth: int) -> str:
    """YAML whose ``site_dir`` is ten lists of ten... ``depth`` deep: a few hundred bytes
    that stand for 10**depth strings once anything turns it into text."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, depth):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    lines.append(f"site_dir: [{', '.join([f'*l{depth - 1}'] * 10)}]")
    return "site_name: Z\n" + "\n".join(lines) + "\n"


@pytest.mark.slow
def test_zensicals_site_dir_read_on_the_host_is_text_or_refused(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    """Goal 7: the deployer reads ``site_dir`` from a Zensical site's mkdocs.yml itself (on
    the host). YAML aliases make a 400-byte value stand for a billion strings; the deployer
    turned whatever it found into text (``str()``), so depth 9 exhausts its memory. Here at
    depth 6 the sign is a one-line error that is megabytes long."""
    sites = DOCS + 'builder = "zensical"\n'
    content_repo.write("sites/docs/mkdocs.yml", _laughs(6))
    content_repo.commit("a billion laughs in site_dir")
    started = time.monotonic()
    with pytest.raises(BuildError) as caught:
        commands.build(_config(tmp_path, content_repo, sites=sites))
    assert len(str(caught.value)) < 1000 and "site_dir" in str(caught.value)
    assert time.monotonic() - started < 60


# mkdocs.yml keys that name a path, each pointed at the deployer's files (the canary folder
# stands for ~/.ssh or /etc; an outside hook stands for a file the operator keeps elsewhere).
OUTSIDE_CONFIGS = {
    "docs_dir": "docs_dir: {dir}\n",
    "INHERIT": "INHERIT: {file}\n",
    "hooks": "hooks:\n  - {hook}\n",
    "custom_dir": "theme:\n  name: mkdocs\n  custom_dir: {dir}\n",
    "extra_css": "extra_css:\n  - {file}\n",
    "site_dir": "site_dir: {dir}\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(OUTSIDE_CONFIGS))
def test_mkdocs_paths_pointing_outside_the_site_reach_nothing(
    key: str, tmp_path: Path, content_repo: ContentRepo, canary_folder: CanaryFolder
) -> None:
    """Goal 1 and 2 through mkdocs.yml: absolute paths to the deployer's files in every key
    that names one. MkDocs reads them inside the sandbox, where they do not exist: the build
    fails with one line or publishes nothing of them, and nothing is written there."""
    hook = tmp_path / "operator-hook.py"
    hook.write_text(f"open({str(canary_folder.absent)!r}, 'w').write('ran')\n")
    names = {"dir": canary_folder.folder, "file": canary_folder.file, "hook": hook}
    yml = (content_repo.path / "sites/docs/mkdocs.yml").read_text()
    content_repo.write("sites/docs/mkdocs.yml", yml + OUTSIDE_CONFIGS[key].format(**names))
    content_repo.commit(f"mkdocs.yml: {key} outside the site")
    cfg = _config(tmp_path, content_repo)
    try:
        commands.deploy(cfg)
    except SitedeployError as exc:  # a failed build, or the link gate refusing a dead link
        assert "\n" not in str(exc) and FOLDER_CANARY not in str(exc)
    public = tmp_path / "ops" / "public"
    published = [p.read_bytes() for p in public.rglob("*") if p.is_file() and not p.is_symlink()]
    assert not [data for data in published if FOLDER_CANARY.encode() in data]
    assert not canary_folder.absent.exists() and canary_folder.changes() == []


def _png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (1200, 800), (200, 30, 30)).save(path)


@pytest.mark.slow
def test_every_step_of_a_fork_preview_binds_only_its_own_levels_state(
    tmp_path: Path, content_repo: ContentRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Goal 3, systematically: every sandboxed step of a pull-request preview (pip install,
    the import probe, the MkDocs build, the image worker) is recorded as bwrap is asked to
    run it. After production has filled its caches, no step of the fork's preview is bound
    anything of production's state, writable or read-only, nor the mirror."""
    content_repo.write("sites/docs/requirements.txt", "mkdocs==1.6.1\n")
    _png(content_repo.path / "sites/docs/docs/photo.png")
    content_repo.write("sites/docs/docs/index.md", "# Home\n\n![a photo](photo.png)\n")
    content_repo.commit("a site with requirements and an image")
    ops = tmp_path / "ops"
    ops.mkdir()
    cfg = config_mod.load(write_config(ops, content_repo.path, sites=DOCS, images=True, extra=PREVIEWS))
    commands.deploy(cfg)  # production fills its caches, venvs and variants
    content_repo.write("sites/docs/docs/guide.md", "# Guide\n\nFrom a fork.\n")
    content_repo.git("update-ref", "refs/pull/9/head", content_repo.commit("a fork's pull request"))
    content_repo.git("reset", "-q", "--hard", "HEAD~1")

    steps: list[tuple[list[Path], list[Path]]] = []
    real = bwrap.bwrap_argv

    def recording(command: Sequence[str], **kwargs: Any) -> list[str]:
        steps.append(([Path(p) for p in kwargs["read_only"]], [Path(p) for p in kwargs["writable"]]))
        return real(command, **kwargs)

    monkeypatch.setattr(bwrap, "bwrap_argv", recording)
    results = previews.deploy_previews(cfg)

    assert [(r.name, r.outcome) for r in results] == [("pr-9", "deployed")], results
    assert len(steps) >= 3  # pip install, the probe, the build (and the image worker)
    state = cfg.state_dir.resolve()
    own = state / "trust" / "pull-preview"
    for read_only, writable in steps:
        for path in writable:  # the level's own state, or a fresh folder gone after the step
            kept = path.resolve().is_relative_to(own) or not os.path.lexists(path)
            assert kept, f"writable {path} is neither the preview level's nor the step's own"
        for path in read_only:
            if path.resolve().is_relative_to(state):
                assert path.resolve().is_relative_to(own), f"read-only {path} is not the preview level's"


OUTPUT_HOOK = """
import os
def on_post_build(config, **kwargs):
    out = config["site_dir"]
    kind = {kind!r}
    if kind == "newline":
        open(os.path.join(out, "evil\\n\\x1b[31m.html"), "w").write("x")
    elif kind == "bad-utf8":
        open(os.path.join(os.fsencode(out), b"\\xff\\xfe.html"), "w").write("x")
    elif kind == "deep":
        path = out
        for _ in range(200):
            path = os.path.join(path, "d")
        os.makedirs(path)
    elif kind == "socket":
        import socket
        socket.socket(socket.AF_UNIX).bind(os.path.join(out, "sock.html"))
    elif kind == "reserved":
        os.makedirs(os.path.join(out, ".sitedeploy"))
        open(os.path.join(out, ".sitedeploy", "state.json"), "w").write("{{}}")
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["newline", "bad-utf8", "deep", "socket", "reserved"])
def test_hostile_output_names_are_refused_with_one_line(
    kind: str, tmp_path: Path, content_repo: ContentRepo
) -> None:
    """Goals 5 and 7 in the output: a file name with a newline and a terminal escape, one
    that is not UTF-8, 200 nested folders, a socket, the target's own state folder. Each is
    refused with one line that drives no terminal; the live site stays."""
    cfg = _config(tmp_path, content_repo)
    commands.deploy(cfg)
    live = tmp_path / "ops" / "public" / "current"
    before = os.readlink(live)
    _hooked(content_repo, OUTPUT_HOOK.format(kind=kind))
    content_repo.commit(f"a hook that writes {kind}")
    with pytest.raises(SitedeployError) as caught:
        commands.deploy(cfg)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)
    assert os.readlink(live) == before


CACHE_HOOK = """
import os, sys
def on_post_build(config, **kwargs):
    cache = sys.argv[sys.argv.index("--cache") + 1]
    for name in os.listdir(cache):  # every file the builder keeps becomes a plant
        path = os.path.join(cache, name)
        if os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
            os.symlink({file!r}, path)
    os.mkfifo(os.path.join(cache, "fifo"))
    os.symlink({dir!r}, os.path.join(cache, "html-link"))
"""


@pytest.mark.slow
def test_links_and_fifos_left_in_the_incremental_cache_are_never_followed(
    tmp_path: Path, content_repo: ContentRepo, canary_folder: CanaryFolder
) -> None:
    """Goal 2 through the one folder a MkDocs build may write that outlives it: every file of
    its incremental cache swapped for a link to a canary, a FIFO, a link to a canary folder.
    The deployer's seal check and the next build neither block nor follow them; the next
    commit is built as from scratch."""
    cfg = _config(tmp_path, content_repo)
    commands.deploy(cfg)  # the cache holds a first build's files
    _hooked(content_repo, CACHE_HOOK.format(file=str(canary_folder.file), dir=str(canary_folder.folder)))
    content_repo.commit("a hook that plants in the cache")
    commands.deploy(cfg)
    [cache] = (cfg.state_dir / "mkdocs-cache").iterdir()
    assert (cache / "fifo").exists() and (cache / "html-link").is_symlink()  # the plants are there
    (content_repo.path / "sites/docs/hooks.py").unlink()
    content_repo.write(
        "sites/docs/mkdocs.yml",
        (content_repo.path / "sites/docs/mkdocs.yml").read_text().replace("hooks:\n  - hooks.py\n", ""),
    )
    content_repo.write("sites/docs/docs/guide.md", "# Guide\n\nAfter the plants.\n")
    content_repo.commit("the next commit")
    commands.deploy(cfg)
    published = tmp_path / "ops" / "public" / "current"
    clean = commands.build(config_mod.load(cfg.path, state_dir=tmp_path / "clean-state")).root
    assert _tree(published) == _tree(clean)
    assert canary_folder.changes() == []


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
