"""A build runs the content repo's code (MkDocs hooks, plugins, packages from its
requirements.txt). It must not read the deployer's secrets: its environment, any process's
/proc/<pid>/environ, ~/.aws, ~/.ssh, the ssh-agent socket, or the state folder beyond its
own site. Each test runs the real CLI in a new process whose environment holds canaries, so
/proc/<parent>/environ really contains them, and checks the same attack succeeds with
``[build] sandbox = "off"`` (the test can fail)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.git import ContentRepo, write_config

from .helpers import (
    SNOOP,
    agent_socket,
    all_canaries,
    canary_home,
    read_json,
    release_file,
    run_cli,
)

DUMP_HOOK = (
    SNOOP
    + """
def on_post_build(config, **kwargs):
    found = snoop(DEPLOYER_HOME, AGENT_SOCKET, STATE_DIR)
    with open(os.path.join(config["site_dir"], "dump.json"), "w") as f:
        json.dump(found, f)
"""
)


def _site_with_hook(content_repo: ContentRepo, hook: str) -> None:
    content_repo.write("sites/docs/hooks.py", hook)
    yml = content_repo.path / "sites/docs/mkdocs.yml"
    content_repo.write("sites/docs/mkdocs.yml", yml.read_text() + "hooks:\n  - hooks.py\n")
    content_repo.add_static_site("other")
    content_repo.commit("a hook that dumps everything it can read")


def _build(tmp_path: Path, content_repo: ContentRepo, sandbox: str) -> tuple[dict[str, object], str]:
    home = canary_home(tmp_path)
    ops = tmp_path / "ops"
    ops.mkdir(exist_ok=True)
    sites = (
        '[[sites]]\nname = "docs"\npath = "sites/docs"\nmount = "/docs/"\n\n'
        '[[sites]]\nname = "other"\npath = "sites/other"\nmount = "/other/"\n'
    )
    config = write_config(ops, content_repo.path, sites=sites, extra=f'\n[build]\nsandbox = "{sandbox}"\n')
    state = ops / ".sitedeploy"
    hook = (
        f"DEPLOYER_HOME = {str(home)!r}\nAGENT_SOCKET = {str(tmp_path / 'agent.sock')!r}\n"
        f"STATE_DIR = {str(state)!r}\n" + DUMP_HOOK
    )
    _site_with_hook(content_repo, hook)
    with agent_socket(tmp_path) as sock:
        proc = run_cli(
            ["--config", str(config), "build"], {"HOME": str(home), "SSH_AUTH_SOCK": str(sock)}, ops
        )
    assert proc.returncode == 0, proc.stderr
    return read_json(release_file(state, "docs/dump.json")), proc.stdout + proc.stderr


def test_a_hook_reads_no_secret_inside_the_sandbox(tmp_path: Path, content_repo: ContentRepo) -> None:
    dump, output = _build(tmp_path, content_repo, "bwrap")
    text = json.dumps(dump)
    assert not [c for c in all_canaries() if c in text]
    environ = dump["environ"]
    assert isinstance(environ, dict)
    assert not [k for k in environ if k.startswith(("AWS_", "SSH_", "SITEDEPLOY", "SLACK"))]
    assert "SOURCE_DATE_EPOCH" in environ
    proc = dump["proc"]
    assert isinstance(proc, dict) and len(proc) <= 4, proc  # its own pid namespace: bwrap's init and itself
    assert dump["agent"] != "connected"
    assert all(str(v).startswith("ERR") for v in dict(dump["home_files"]).values())  # type: ignore[call-overload]
    # The state folder holds only the (empty) folders leading to the site's own binds.
    # only the folders leading to its own input, output, venv and incremental-build cache
    binds = {"builds", "workspaces", "venvs", "mkdocs-cache", "mkdocs-lib"}  # mkdocs-lib: read-only
    assert set(dump["state"]) <= binds, dump["state"]  # type: ignore[call-overload]
    assert str(dump["other_site"]).startswith("ERR")
    assert str(dump["mirror_config"]).startswith("ERR")
    # The real home holds at most the path to a Python installed there (pyenv), never keys.
    assert not {".ssh", ".aws", ".gnupg", ".config"} & set(dump["root_home"])  # type: ignore[call-overload]
    assert not (tmp_path / "ops/.sitedeploy/planted").exists()  # a write there lands in a private tmpfs
    assert "sandbox" not in output


def test_the_same_hook_finds_them_with_the_sandbox_off(tmp_path: Path, content_repo: ContentRepo) -> None:
    dump, output = _build(tmp_path, content_repo, "off")
    text = json.dumps(dump)
    assert [c for c in all_canaries() if c in text], (
        "the hook must work, or the sandboxed test proves nothing"
    )
    assert dump["agent"] == "connected"
    assert 'sandbox = "off"' in output  # warned on every build


PTH_CODE = """
import atexit, glob, json, os, sys
def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
d = {"env": dict(os.environ), "proc": [_read(p) for p in glob.glob("/proc/[0-9]*/environ")],
     "home": _read(HOME_CREDS), "argv": sys.argv}
out = sys.argv[sys.argv.index("--site-dir") + 1] if "--site-dir" in sys.argv else sys.prefix
def _dump():  # at exit: mkdocs --clean empties the site folder when it starts
    try:
        with open(os.path.join(out, "pth-%d.json" % os.getpid()), "w") as f:
            json.dump(d, f)
    except OSError:
        pass
atexit.register(_dump)
"""


def _evil_wheel(folder: Path, home_creds: Path) -> str:
    """A wheel whose .pth file runs at every start of the venv's Python (pip's probe, the build)."""
    name = "evil_pth-1.0-py3-none-any.whl"
    dist = "evil_pth-1.0.dist-info"
    code = PTH_CODE.replace("HOME_CREDS", repr(str(home_creds)))
    with zipfile.ZipFile(folder / name, "w") as whl:
        whl.writestr("evil_pth.pth", f"import os; exec({code!r}, {{}})\n")
        whl.writestr(f"{dist}/METADATA", "Metadata-Version: 2.1\nName: evil-pth\nVersion: 1.0\n")
        whl.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        whl.writestr(f"{dist}/RECORD", "")
    return name


@pytest.mark.slow
def test_a_pth_file_from_requirements_reads_no_secret(tmp_path: Path, content_repo: ContentRepo) -> None:
    home = canary_home(tmp_path)
    site = content_repo.path / "sites/docs"
    wheel = _evil_wheel(site, home / ".aws" / "credentials")
    content_repo.write("sites/docs/requirements.txt", f"mkdocs==1.6.1\n./{wheel}\n")
    content_repo.commit("a requirement that ships a .pth file")
    ops = tmp_path / "ops"
    ops.mkdir()
    config = write_config(ops, content_repo.path, sites='[[sites]]\nname = "docs"\npath = "sites/docs"\n')
    proc = run_cli(["--config", str(config), "build"], {"HOME": str(home)}, ops)
    assert proc.returncode == 0, proc.stderr
    state = ops / ".sitedeploy"
    dumps = [*state.glob("venvs/docs/*/pth-*.json"), *release_file(state, "").glob("pth-*.json")]
    assert dumps, "the .pth must have run (at least during the build)"
    text = "".join(p.read_text() for p in dumps)
    assert not [c for c in all_canaries() if c in text]
    assert str(home) not in text.replace(str(home / ".aws"), "")  # named in the code, never HOME
