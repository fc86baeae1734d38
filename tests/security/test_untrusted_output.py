"""Everything a sandboxed step can write is planted (issue 21, findings 1, 2, 4, 8; class fix 1).

A fake step of each kind that runs sandboxed (a MkDocs hook, a ``.pth`` file from
requirements.txt in a MkDocs or a Zensical build) reads which plant to make from the commit
(``plant.txt``) and puts it where the deployer later reads, moves or writes: a symlink to a
canary file or folder, a FIFO, a sparse 4 GiB file, the output folder itself swapped for a
link, a hard link shared with a file the next build can write, the build log swapped for a
link, Zensical's kept ``.cache`` seeded with links. Every plant must be refused with one line
(or, for the hard link, made harmless), the canaries stay untouched (the ``canary_folder``
fixture checks at teardown, the session's canary scan checks nothing of them was published),
and the live site stays the one deployed before.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.errors import BuildError
from tests.fixtures.canaries import FOLDER_CANARY, CanaryFolder
from tests.fixtures.git import ContentRepo, write_config

DOCS = '[[sites]]\nname = "docs"\npath = "sites/docs"\n'
# The plants, as one function both the hook and the .pth file run. ``out`` is the folder the
# build writes, ``cache`` a folder the next build of the site can write again.
PLANT = r"""
import os, shutil
def plant(kind, out, cache, canary_file, canary_dir):
    if kind == "link-file":
        os.symlink(canary_file, os.path.join(out, "leak.html"))
    elif kind == "link-dir":
        os.symlink(canary_dir, os.path.join(out, "leak"))
    elif kind == "fifo":
        os.mkfifo(os.path.join(out, "pipe.html"))
    elif kind == "huge":
        with open(os.path.join(out, "huge.bin"), "wb") as f:
            f.truncate(4 * 1024**3 + 1)
    elif kind == "site-link":
        shutil.rmtree(out)
        os.symlink(canary_dir, out)
    elif kind == "hardlink":
        other = os.path.join(cache, "other-name.html")
        with open(other, "w") as f:
            f.write("<p>as built</p>")
        os.link(other, os.path.join(out, "shared.html"))
    elif kind == "cache-link":
        os.makedirs(os.path.join(cache), exist_ok=True)
        os.symlink(canary_file, os.path.join(cache, "victim.txt"))
    elif kind == "log-link":  # the log of the step (before: in the step's own folder)
        for log in (os.path.join(os.environ["HOME"], "..", "output.log"),):
            try:
                os.unlink(log)
            except OSError:
                pass
            os.symlink(canary_file, log)
        return "fail"
"""
HOOK = """
import os, sys
CANARY_FILE, CANARY_DIR = {file!r}, {dir!r}
{plant}
def on_post_build(config, **kwargs):
    src = os.path.dirname(config["config_file_path"])
    kind = open(os.path.join(src, "plant.txt")).read().strip()
    cache = sys.argv[sys.argv.index("--cache") + 1] if "--cache" in sys.argv else ""
    if plant(kind, config["site_dir"], cache, CANARY_FILE, CANARY_DIR) == "fail":
        raise SystemExit("ERROR: the hook failed on purpose")
"""
PTH = """
import atexit, os, sys
CANARY_FILE, CANARY_DIR = {file!r}, {dir!r}
{plant}
def _at_exit():
    if not ("build" in sys.argv or "--site-dir" in sys.argv) or not os.path.exists("plant.txt"):
        return
    kind = open("plant.txt").read().strip()
    if "--site-dir" in sys.argv:  # MkDocs, incremental
        out = sys.argv[sys.argv.index("--site-dir") + 1]
        cache = sys.argv[sys.argv.index("--cache") + 1] if "--cache" in sys.argv else ""
    else:  # Zensical: its site/ and its .cache/ in the project folder it runs in
        out, cache = os.path.abspath("site"), os.path.abspath(".cache")
    if plant(kind, out, cache, CANARY_FILE, CANARY_DIR) == "fail":
        print("ERROR: the build failed on purpose", flush=True)
        os._exit(1)
atexit.register(_at_exit)
"""
OUTPUT_PLANTS = ["link-file", "link-dir", "fifo", "huge", "log-link"]


def _wheel(folder: Path, code: str) -> str:
    """A wheel whose .pth file runs ``code`` at every start of the venv's Python."""
    name, dist = "plant_pth-1.0-py3-none-any.whl", "plant_pth-1.0.dist-info"
    with zipfile.ZipFile(folder / name, "w") as whl:
        whl.writestr("plant_pth.pth", f"import os; exec({code!r}, {{}})\n")
        whl.writestr(f"{dist}/METADATA", "Metadata-Version: 2.1\nName: plant-pth\nVersion: 1.0\n")
        wheel_file = "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        whl.writestr(f"{dist}/WHEEL", wheel_file)
        whl.writestr(f"{dist}/RECORD", "")
    return name


def _site(kind: str, repo: ContentRepo, canary: CanaryFolder) -> None:
    """The content repo's ``sites/docs`` as a ``kind`` site that runs the plant code."""
    names = {"file": str(canary.file), "dir": str(canary.folder), "plant": PLANT}
    site = repo.path / "sites" / "docs"
    if kind == "mkdocs-hook":
        repo.write("sites/docs/hooks.py", HOOK.format(**names))
        repo.write("sites/docs/mkdocs.yml", (site / "mkdocs.yml").read_text() + "hooks:\n  - hooks.py\n")
        return
    wheel = _wheel(site, PTH.format(**names))
    if kind == "zensical-pth":
        (site / "mkdocs.yml").unlink()
        repo.write("sites/docs/zensical.toml", '[project]\nsite_name = "Z"\n')
        repo.write("sites/docs/requirements.txt", f"zensical\n./{wheel}\n")
    else:
        repo.write("sites/docs/requirements.txt", f"mkdocs==1.6.1\n./{wheel}\n")


def _live(public: Path) -> dict[str, bytes]:
    """What the target serves: every entry below it, links as their text, not followed."""
    found: dict[str, bytes] = {}
    for folder, dirs, names in os.walk(public):
        for name in [*dirs, *names]:
            path = Path(folder, name)
            rel = path.relative_to(public).as_posix()
            if path.is_symlink():
                found[rel] = b"-> " + os.readlink(path).encode()
            elif path.is_file():
                found[rel] = path.read_bytes()
    return found


def _deploy_refused(cfg: config_mod.Config, repo: ContentRepo, kind: str) -> str:
    repo.write("sites/docs/plant.txt", kind)
    repo.commit(f"plant: {kind}")
    with pytest.raises(BuildError) as caught:
        commands.deploy(cfg)
    return str(caught.value)


@pytest.mark.slow
@pytest.mark.parametrize("builder", ["mkdocs-hook", "mkdocs-pth", "zensical-pth"])
def test_every_plant_in_a_build_is_refused_and_the_live_site_kept(
    builder: str, tmp_path: Path, content_repo: ContentRepo, canary_folder: CanaryFolder
) -> None:
    _site(builder, content_repo, canary_folder)
    content_repo.write("sites/docs/plant.txt", "none")
    content_repo.commit("a site that plants what plant.txt says")
    ops = tmp_path / "ops"
    ops.mkdir()
    cfg = config_mod.load(write_config(ops, content_repo.path, sites=DOCS))
    commands.deploy(cfg)
    live = _live(ops / "public")
    assert live

    plants = OUTPUT_PLANTS + (["site-link"] if builder == "zensical-pth" else [])
    for kind in plants:
        message = _deploy_refused(cfg, content_repo, kind)
        assert "\n" not in message and message.startswith("site 'docs'"), (kind, message)
        assert FOLDER_CANARY not in message, kind  # the log read through a planted link
        assert _live(ops / "public") == live, kind
        assert canary_folder.changes() == [], kind

    if builder != "zensical-pth":
        return  # MkDocs' output and cache are two binds: no hard link between them can exist
    # A hard link shared with a file the next build can write (Zensical's site/ and .cache/
    # are in one project folder): published as a copy of its own, so writing the other name
    # (as the next build may) changes nothing published.
    content_repo.write("sites/docs/plant.txt", "hardlink")
    content_repo.commit("plant: hardlink")
    commands.deploy(cfg)
    [published] = (cfg.state_dir / "releases").rglob("shared.html")
    [other] = (cfg.state_dir / "zensical-cache").rglob("other-name.html")
    assert published.stat().st_ino != other.stat().st_ino
    with other.open("r+") as f:  # in place, as code in the next build could
        f.write("<p>REPLACED</p>")
    assert published.read_text() == "<p>as built</p>"


@pytest.mark.slow
def test_links_left_in_zensicals_kept_cache_are_never_written_through(
    tmp_path: Path, content_repo: ContentRepo, canary_folder: CanaryFolder
) -> None:
    """Finding 2: a build leaves ``.cache/victim.txt`` linking to a host file; the next commit
    ships a ``.cache/victim.txt`` of its own, which the copy into the kept project folder
    would write through the link."""
    _site("zensical-pth", content_repo, canary_folder)
    content_repo.write("sites/docs/plant.txt", "cache-link")
    content_repo.commit("leave a link in .cache")
    ops = tmp_path / "ops"
    ops.mkdir()
    cfg = config_mod.load(write_config(ops, content_repo.path, sites=DOCS))
    commands.build(cfg)
    content_repo.write("sites/docs/plant.txt", "none")
    content_repo.write("sites/docs/.cache/victim.txt", "PWNED by the next commit\n")
    content_repo.commit("ship a file of the same name")
    commands.build(cfg)
    assert canary_folder.changes() == []
