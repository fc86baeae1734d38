"""Trust levels share no writable state, and what a build may write is checked before reuse
(issue 21, findings 5 and 6).

- A fork's pull-request preview runs a hook that rewrites every file of every writable bind
  it can see and, for good measure, plants a valid incremental cache of the main branch's
  pages with its own HTML; the next production deploy is byte-identical to a clean build.
- A site whose cache folder is named like the incremental builder's code (``.lib``) plants
  ``sitecustomize.py`` in every folder it may write: nothing runs in another site's build.
- Same level: a cache rewritten after its build, or by a build that then failed, is thrown
  away (said so); a changed venv is made again; a rewritten variant is encoded again.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sitedeploy import builders, commands
from sitedeploy import config as config_mod
from sitedeploy.build import sites as build_mod
from sitedeploy.build.release_tree import MARKER
from sitedeploy.builders.mkdocs_incremental import pack as mkdocs_pack
from sitedeploy.config import ImagesConfig, SiteConfig
from sitedeploy.errors import BuildError
from sitedeploy.images import process_site
from sitedeploy.images.cache import VariantCache
from sitedeploy.versions import previews
from tests.fixtures.git import MKDOCS_YML, ContentRepo, write_config

SITE = '[[sites]]\nname = "docs"\npath = "sites/docs"\nmount = "/"\n'
PREVIEWS = 'previews = "pull:*"\n'
EVIL = "<!doctype html><p>served by a fork</p>\n"

# Shared by the hook (in the sandbox, where the builder's modules are ``sitedeploy_mkdocs``)
# and the tests (which tamper with a cache from outside).
POISON = f"EVIL = {EVIL!r}\n" + (
    '''
import json, os
from pathlib import Path


def poison_pack(pack_mod, path):
    """Rewrite a pack as an attacker would: every render's HTML body replaced, every local
    module dropped from its index, the checksum valid."""
    reader = pack_mod.PackReader(Path(path))
    index = {k: v for k, v in reader.index.items() if k != "chunks"}
    index["local_code"] = {k: v for k, v in index.get("local_code", {}).items() if "sitedeploy_mkdocs" in k}
    writer = pack_mod.PackWriter(Path(path))
    for key in reader.chunks:
        body = reader.load(key)
        if key.startswith("r") and isinstance(body, dict):
            body["content"] = EVIL
        writer.add_json(key, body)
    writer.commit(index)


def poison_file(pack_mod, path):
    """Rewrite one file in place (same inode, same mtime): HTML, pack, or anything else."""
    st = os.stat(path)
    if os.path.basename(path) == "pages.pack":
        poison_pack(pack_mod, path)
    else:
        with open(path, "w") as f:
            f.write(EVIL if path.endswith(".html") else "poisoned\\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
'''
)

HOOK = (
    POISON
    + '''
import shutil, sys, tempfile
from pathlib import Path
from sitedeploy_mkdocs import builder as mkdocs_incremental, pack as mkdocs_pack


def _writable_binds():
    """Mount points bound writable into this sandbox (the output, work folder, caches)."""
    found = []
    for line in open("/proc/self/mountinfo"):
        fields = line.split()
        point, options = fields[4], fields[5].split(",")
        if "rw" in options and point not in ("/", "/tmp") and not point.startswith(("/proc", "/dev")):
            found.append(point)
    return found


def _plant(config, cache):
    """A valid incremental cache of the main branch's pages (this commit only adds the hook),
    built the way the builder builds it; rewritten afterwards like every other file."""
    src = Path(config.config_file_path).parent
    tmp = Path(tempfile.mkdtemp())
    text = (src / "mkdocs.yml").read_text().replace("hooks:\\n  - evil.py\\n", "")
    (tmp / "mkdocs.yml").write_text(text + "docs_dir: %s\\n" % (src / "docs"))
    mkdocs_incremental.build_site(tmp / "mkdocs.yml", tmp / "site", tmp / "cache")
    for name in ("pages.pack", "html"):
        if (tmp / "cache" / name).is_dir():
            shutil.copytree(tmp / "cache" / name, cache / name, dirs_exist_ok=True)
        else:
            shutil.copy(tmp / "cache" / name, cache / name)


def on_post_build(config, **kwargs):
    cache = Path(sys.argv[sys.argv.index("--cache") + 1])
    _plant(config, cache)
    mine = (str(Path(config.site_dir)), str(Path(os.environ["HOME"]).parent))
    touched = []
    for bind in _writable_binds():
        for root, _, files in os.walk(bind):
            for name in files:
                path = os.path.join(root, name)
                if path.startswith(mine):
                    continue
                try:
                    poison_file(mkdocs_pack, path)
                    touched.append(path)
                except (OSError, ValueError, mkdocs_pack.PackError):
                    pass
    Path(config.site_dir, "touched.json").write_text(json.dumps(touched))
'''
)


def _pages(repo: ContentRepo) -> None:
    repo.add_mkdocs_site()
    for n in range(8):
        repo.write(f"sites/docs/docs/page{n}.md", f"# Page {n}\n\nText of page {n}.\n")


def _tree(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file() and p.name != MARKER}


def _same_tree(ours: Path, clean: Path) -> None:
    got, want = _tree(ours), _tree(clean)
    assert sorted(got) == sorted(want)
    differ = [rel for rel in sorted(got) if not filecmp.cmp(got[rel], want[rel], shallow=False)]
    assert not differ, (
        f"{len(differ)} files differ from a clean build, e.g. {differ[0]}: {got[differ[0]].read_text()[:200]}"
    )


def _bytes(root: Path) -> dict[str, bytes]:
    return {rel: path.read_bytes() for rel, path in _tree(root).items()}


def _clean_build(deploy_toml: Path, tmp_path: Path) -> Path:
    """The same commit built with a fresh state folder: nothing cached, nothing shared."""
    clean = config_mod.load(deploy_toml, state_dir=tmp_path / "clean-state")
    return commands.build(clean).root


def test_a_fork_preview_that_rewrites_every_cache_it_reaches_changes_no_production_byte(
    tmp_path: Path,
) -> None:
    repo = ContentRepo(tmp_path / "content")
    _pages(repo)
    repo.commit("docs")
    ops = tmp_path / "ops"
    ops.mkdir()
    deploy_toml = write_config(ops, repo.path, sites=SITE, extra=PREVIEWS)
    cfg = config_mod.load(deploy_toml)
    commands.deploy(cfg)  # production fills its caches

    repo.git("checkout", "-q", "-b", "fork")
    repo.write("sites/docs/mkdocs.yml", MKDOCS_YML + "hooks:\n  - evil.py\n")
    repo.write("sites/docs/evil.py", HOOK)
    repo.git("update-ref", "refs/pull/7/head", repo.commit("a fork's pull request"))
    repo.git("checkout", "-q", "main")
    results = previews.deploy_previews(cfg)
    assert [(r.name, r.outcome) for r in results] == [("pr-7", "deployed")], results
    touched = json.loads((ops / "public" / "previews" / "current" / "pr-7" / "touched.json").read_text())
    assert any(p.endswith("pages.pack") for p in touched), touched  # the hook did reach a cache

    repo.write("sites/docs/docs/page3.md", "# Page 3\n\nEdited on main.\n")
    repo.commit("edit one page")
    commands.deploy(cfg)
    _same_tree(ops / "public" / "current", _clean_build(deploy_toml, tmp_path))


SITECUSTOMIZE = """
import atexit, os, sys
def _plant():  # at exit: the builder empties the site folder when it starts
    open(os.path.join(sys.argv[sys.argv.index("--site-dir") + 1], "pwned.html"), "w").write("pwned")
if "--site-dir" in sys.argv:
    atexit.register(_plant)
"""

LIB_HOOK = f'''
import os
from pathlib import Path

def on_post_build(config, **kwargs):
    """Plant a sitecustomize.py in every folder this build may write."""
    for line in open("/proc/self/mountinfo"):
        point, options = line.split()[4], line.split()[5].split(",")
        if "rw" in options and point not in ("/", "/tmp") and not point.startswith(("/proc", "/dev")):
            for root, _, _ in os.walk(point):
                try:
                    Path(root, "sitecustomize.py").write_text({SITECUSTOMIZE!r})
                except OSError:
                    pass
'''


def test_a_site_whose_cache_is_named_like_the_builders_code_cannot_run_code_in_another_site(
    tmp_path: Path,
) -> None:
    repo = ContentRepo(tmp_path / "content")
    _pages(repo)
    repo.write("sites/evil/mkdocs.yml", "site_name: Evil\nhooks:\n  - hook.py\n")
    repo.write("sites/evil/docs/index.md", "# Evil\n")
    repo.write("sites/evil/hook.py", LIB_HOOK)
    repo.commit("two sites")
    ops = tmp_path / "ops"
    ops.mkdir()
    deploy_toml = write_config(ops, repo.path, sites=SITE)
    cfg = config_mod.load(deploy_toml)
    source = commands.synced_source(cfg)
    commit = source.resolve(None, "main")
    # A site named ".lib" (site names are validated elsewhere; this proves the layout alone holds).
    lib_site = SiteConfig(name=".lib", path="sites/evil", mount="/evil/", images=cfg.images)
    jobs = [build_mod._site_job(lib_site, source, commit), *build_mod.site_jobs(cfg, source, commit)]
    build_mod.build_release(cfg, source, commit, trust="production", jobs=jobs)  # plants
    assert list(cfg.state_dir.rglob("sitecustomize.py")), "the hook planted nothing"
    repo.write("sites/docs/docs/page3.md", "# Page 3\n\nEdited.\n")
    repo.commit("edit one page")
    source.sync()
    commit = source.resolve(None, "main")
    built = build_mod.build_release(
        cfg, source, commit, trust="production", jobs=build_mod.site_jobs(cfg, source, commit)
    )
    assert not (built.root / "pwned.html").exists()
    _same_tree(built.root, _clean_build(deploy_toml, tmp_path))


def test_a_cache_changed_after_the_build_that_wrote_it_is_discarded_and_said_so(tmp_path: Path) -> None:
    repo = ContentRepo(tmp_path / "content")
    _pages(repo)
    repo.commit("docs")
    ops = tmp_path / "ops"
    ops.mkdir()
    deploy_toml = write_config(ops, repo.path, sites=SITE)
    cfg = config_mod.load(deploy_toml)
    commands.deploy(cfg)
    cache = cfg.state_dir / "mkdocs-cache" / "docs"
    namespace: dict[str, object] = {}
    exec(POISON, namespace)  # the same rewrite the fork's hook makes, from outside a build
    poison = namespace["poison_file"]
    assert callable(poison)
    files = [p for p in cache.rglob("*") if p.is_file() and p.suffix in (".html", ".pack")]
    assert any(p.name == "pages.pack" for p in files) and len(files) > 5, files
    for path in files:
        poison(mkdocs_pack, str(path))

    repo.write("sites/docs/docs/page3.md", "# Page 3\n\nEdited on main.\n")
    repo.commit("edit one page")
    steps: list[str] = []
    commands.deploy(cfg, progress=_Steps(steps))
    assert any("full: the cache was discarded: " in s for s in steps), steps
    _same_tree(ops / "public" / "current", _clean_build(deploy_toml, tmp_path))


class _Steps:  # keeps the step lines: they say which way each site was built
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def step(self, message: str) -> None:
        self.lines.append(message)

    def bar(self, description: str, total: int) -> Any:
        return contextlib.nullcontext(lambda n: None)


PTH = (
    "import atexit, os, sys; '--site-dir' in sys.argv and atexit.register(lambda: open(os.path.join("
    "sys.argv[sys.argv.index('--site-dir') + 1], 'pwned.html'), 'w').write('pwned'))\n"
)


def test_a_venv_changed_after_it_was_made_is_made_again(tmp_path: Path) -> None:
    repo = ContentRepo(tmp_path / "content")
    _pages(repo)
    repo.write("sites/docs/requirements.txt", "mkdocs==1.6.1\n")
    repo.commit("docs with pinned requirements")
    ops = tmp_path / "ops"
    ops.mkdir()
    deploy_toml = write_config(ops, repo.path, sites=SITE)
    cfg = config_mod.load(deploy_toml)
    commands.build(cfg)
    (venv,) = [p for p in (cfg.state_dir / "venvs" / "docs").glob("mkdocs-*") if p.is_dir()]  # not its marker
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "zz-planted.pth").write_text(PTH)  # runs at every start of the venv's Python

    repo.write("sites/docs/docs/page3.md", "# Page 3\n\nEdited.\n")
    repo.commit("edit one page")
    built = commands.build(cfg)
    assert not (built.root / "pwned.html").exists()
    assert not (site_packages / "zz-planted.pth").exists()  # the venv was made again


def test_a_cached_variant_rewritten_in_place_is_rendered_again_not_published(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = tmp_path / "one" / "img"
    first.mkdir(parents=True)
    Image.linear_gradient("L").resize((1000, 500)).convert("RGB").save(first / "a.jpg", quality=95)
    (first.parent / "index.html").write_text('<p><img src="img/a.jpg" alt="a"></p>\n')
    shutil.copytree(first.parent, tmp_path / "two")
    process_site(first.parent, "/", ImagesConfig(widths=(480,)), cache_dir)
    clean = _bytes(first.parent)  # before: the site's variants are hard links into the cache
    blobs = [p for p in VariantCache(cache_dir).root.glob("??/*/*") if p.name != "outcome.json"]
    assert blobs
    for blob in blobs:  # same size, same mtime: only the bytes differ
        st = blob.stat()
        blob.write_bytes(b"\0" * st.st_size)
        os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    report = process_site(tmp_path / "two", "/", ImagesConfig(widths=(480,)), cache_dir)
    assert (report.cache_hits, report.decoded) == (0, 1)
    assert _bytes(tmp_path / "two") == clean


FAILING_HOOK = (
    HOOK
    + """
_poison = on_post_build


def on_post_build(config, **kwargs):
    _poison(config, **kwargs)
    raise RuntimeError("failing after poisoning the cache")
"""
)


def test_a_build_that_fails_after_poisoning_its_own_cache_leaves_nothing_reusable(tmp_path: Path) -> None:
    repo = ContentRepo(tmp_path / "content")
    _pages(repo)
    repo.commit("docs")
    ops = tmp_path / "ops"
    ops.mkdir()
    deploy_toml = write_config(ops, repo.path, sites=SITE)
    cfg = config_mod.load(deploy_toml)
    commands.deploy(cfg)
    repo.write("sites/docs/mkdocs.yml", MKDOCS_YML + "hooks:\n  - evil.py\n")
    repo.write("sites/docs/evil.py", FAILING_HOOK)
    repo.commit("a hostile commit on main")
    with pytest.raises(BuildError, match="failing after poisoning"):
        commands.deploy(cfg)

    repo.write("sites/docs/mkdocs.yml", MKDOCS_YML)  # reverted, and a page edited
    (repo.path / "sites/docs/evil.py").unlink()
    repo.write("sites/docs/docs/page3.md", "# Page 3\n\nEdited on main.\n")
    repo.commit("revert")
    steps: list[str] = []
    commands.deploy(cfg, progress=_Steps(steps))
    assert any("full: the cache was discarded: " in s for s in steps), steps
    _same_tree(ops / "public" / "current", _clean_build(deploy_toml, tmp_path))


def test_each_preview_builds_at_the_level_its_ref_allows() -> None:
    assert previews.preview_trust("pull/7") == "pull-preview"
    assert previews.preview_trust("merge-requests/12") == "pull-preview"
    assert previews.preview_trust("feature/x") == "branch-preview"
    assert previews.preview_trust("pull/7x") == "branch-preview"
    state = Path("/state")
    assert build_mod.trust_dir(state, "production") == state
    levels = {build_mod.trust_dir(state, level) for level in build_mod.TRUST_LEVELS}
    assert len(levels) == 3 and all(level == state or state in level.parents for level in levels)


def test_a_cache_outside_its_folder_is_refused_before_it_is_bound(tmp_path: Path) -> None:
    """Site names are validated where they are read; the bind itself refuses too."""
    repo = ContentRepo(tmp_path / "content")
    _pages(repo)
    state = tmp_path / "state"
    for name in ("..", "a/b"):
        job = builders.Job(
            site=name,
            label="sites/docs",
            src=repo.path / "sites" / "docs",
            out=tmp_path / "out",
            work=tmp_path / "work",
            epoch=0,
            strict=False,
            sandbox="bwrap",
            venvs=state / "venvs" / name,
            cache=state / "mkdocs-cache" / name,
            state=state,
        )
        with pytest.raises(BuildError, match="cannot name a cache folder"):
            builders.build("mkdocs", job)
    assert not (state / "mkdocs-lib").exists()
