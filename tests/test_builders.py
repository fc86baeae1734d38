"""Builders as users run them (issue 10, item 4 and 6): MkDocs through its console script,
Zensical with ``zensical build``, a plain copy for the rest; warnings carried in the result;
the sandbox required unless turned off; cached builds checked before they are reused."""

from __future__ import annotations

import contextlib
import dataclasses
import filecmp
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.build import Built
from sitedeploy.build.release_tree import MARKER
from sitedeploy.errors import BuildError, ConfigError
from sitedeploy.redirects.ruleset import GENERATED_PREFIX
from tests.fixtures.git import ContentRepo, write_config

BIN = Path(sys.executable).parent
DOCS = '[[sites]]\nname = "docs"\npath = "sites/docs"\n'


def _build(tmp_path: Path, repo: ContentRepo, sites: str = DOCS, extra: str = "") -> Built:
    ops = tmp_path / "ops"
    ops.mkdir(exist_ok=True)
    return commands.build(config_mod.load(write_config(ops, repo.path, sites=sites, extra=extra)))


def _plain_build(repo: ContentRepo, folder: str, command: list[str], out: str, tmp_path: Path) -> Path:
    """What a user gets: a clean export of the folder, the tool run there, same SOURCE_DATE_EPOCH."""
    export = tmp_path / "plain"
    shutil.rmtree(export, ignore_errors=True)
    archive = tmp_path / "plain.tar"
    subprocess.run(["git", "-C", str(repo.path), "archive", "-o", str(archive), "HEAD", folder], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(export, filter="data")
    epoch = repo.git("log", "-1", "--format=%ct", "--", folder)
    env = {**os.environ, "SOURCE_DATE_EPOCH": epoch}
    subprocess.run(command, cwd=export / folder, env=env, check=True, capture_output=True)
    return export / folder / out


def _same_tree(ours: Path, theirs: Path) -> None:
    ours_files = {p.relative_to(ours).as_posix() for p in ours.rglob("*") if p.is_file()} - {MARKER}
    ours_files = {p for p in ours_files if not p.startswith(GENERATED_PREFIX)}  # the server's rules
    theirs_files = {p.relative_to(theirs).as_posix() for p in theirs.rglob("*") if p.is_file()}
    assert ours_files == theirs_files
    for rel in sorted(ours_files):
        assert filecmp.cmp(ours / rel, theirs / rel, shallow=False), rel


def test_a_package_folder_named_mkdocs_does_not_shadow_mkdocs(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    # The MkDocs project's own docs sit next to its mkdocs/ package; here the folder breaks
    # anything that imports it.
    content_repo.write(
        "sites/docs/mkdocs/__init__.py", "raise SystemExit('the site folder shadowed mkdocs')\n"
    )
    content_repo.write("sites/docs/mkdocs/__main__.py", "raise SystemExit('shadowed')\n")
    content_repo.commit("a folder named like the builder")
    built = _build(tmp_path, content_repo)
    plain = _plain_build(content_repo, "sites/docs", [str(BIN / "mkdocs"), "build"], "site", tmp_path)
    _same_tree(built.root, plain)


def test_a_zensical_site_builds_as_zensical_build_does(tmp_path: Path, content_repo: ContentRepo) -> None:
    content_repo.write(
        "sites/docs/zensical.toml", '[project]\nsite_name = "Z Docs"\nnav = [{"Home" = "index.md"}]\n'
    )
    content_repo.write("sites/docs/docs/broken.md", "# Broken\n\nA [missing page](nope.md).\n")
    content_repo.commit("move to zensical")
    built = _build(tmp_path, content_repo)
    assert built.sites[0].summary and "Z Docs" in (built.root / "index.html").read_text()
    plain = _plain_build(content_repo, "sites/docs", [str(BIN / "zensical"), "build"], "site", tmp_path)
    _same_tree(built.root, plain)
    assert built.warning_count >= 1 and any("nope.md" in w or "does not exist" in w for w in built.warnings)


def test_zensical_output_is_the_same_in_a_second_build(tmp_path: Path, content_repo: ContentRepo) -> None:
    content_repo.write("sites/docs/zensical.toml", '[project]\nsite_name = "Z Docs"\n')
    content_repo.commit("zensical")
    first = _build(tmp_path, content_repo)
    shutil.rmtree(tmp_path / "ops" / ".sitedeploy")  # no cache: a real second build
    second = _build(tmp_path, content_repo)
    assert first.manifest == second.manifest


class _Steps:
    """A progress sink that keeps the step lines, which say which way each site was built."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)

    def bar(self, description: str, total: int) -> Any:
        return contextlib.nullcontext(lambda n: None)


def test_zensical_keeps_its_own_incremental_build(tmp_path: Path, content_repo: ContentRepo) -> None:
    """Issue 14: a Zensical site keeps Zensical's differential build. Its ``.cache`` is keyed by
    the project's path, so the copy it builds in stays in one place and only the cache survives
    from one build to the next; the output still equals a plain ``zensical build``."""
    content_repo.write("sites/docs/zensical.toml", '[project]\nsite_name = "Z Docs"\n')
    for n in range(20):
        content_repo.write(f"sites/docs/docs/page{n}.md", f"# Page {n}\n\nText of page {n}.\n")
    content_repo.commit("zensical, twenty pages")
    ops = tmp_path / "ops"
    ops.mkdir()
    cfg = config_mod.load(write_config(ops, content_repo.path, sites=DOCS))
    steps = _Steps()
    commands.build(cfg, progress=steps)
    assert any("(full: no previous build in the cache)" in s for s in steps.lines), steps.lines
    cache = cfg.state_dir / "zensical-cache" / "docs" / "project" / ".cache"
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}

    content_repo.write("sites/docs/docs/page3.md", "# Page 3\n\nEdited text of page 3.\n")
    content_repo.commit("edit one page")
    steps.lines.clear()
    built = commands.build(cfg, progress=steps)
    assert any("(incremental: Zensical's own cache)" in s for s in steps.lines), steps.lines
    rewritten = [p.name for p in cache.iterdir() if before.get(p.name) != p.stat().st_mtime_ns]
    assert 0 < len(rewritten) < len(before) / 4, rewritten  # the edit, not every page again
    plain = _plain_build(content_repo, "sites/docs", [str(BIN / "zensical"), "build"], "site", tmp_path)
    _same_tree(built.root, plain)

    content_repo.write("sites/docs/zensical.toml", '[project]\nsite_name = "Z Docs"\nsite_dir = "../out"\n')
    content_repo.commit("a site_dir outside the site")
    with pytest.raises(BuildError, match="site_dir"):
        commands.build(cfg, progress=steps)
    assert not cache.exists()  # a failed build leaves no cache for the next one to trust


def test_mkdocs_warnings_reach_the_build_result(tmp_path: Path, content_repo: ContentRepo) -> None:
    content_repo.write("sites/docs/docs/guide.md", "# Guide\n\nA [broken link](missing.md).\n")
    content_repo.commit("a broken link")
    built = _build(tmp_path, content_repo)
    assert built.warning_count == 1
    assert "missing.md" in built.warnings[0] and built.warnings[0].startswith("site 'docs': WARNING")
    again = _build(tmp_path, content_repo)  # reused from the cache: the warnings are kept
    assert again.sites[0].reused and again.warnings == built.warnings


def test_the_builder_key_overrides_detection(tmp_path: Path, content_repo: ContentRepo) -> None:
    built = _build(tmp_path, content_repo, DOCS + 'builder = "static"\n')
    assert (built.root / "mkdocs.yml").is_file() and (built.root / "docs" / "index.md").is_file()


def test_without_bwrap_the_build_refuses_unless_the_sandbox_is_off(
    tmp_path: Path, content_repo: ContentRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ConfigError) as caught:
        _build(tmp_path, content_repo)
    assert "install bubblewrap" in caught.value.message and 'sandbox = "off"' in caught.value.message
    built = _build(tmp_path, content_repo, extra='\n[build]\nsandbox = "off"\n')
    assert 'sandbox = "off"' in built.warnings[0]
    static = _build(tmp_path, content_repo, '[[sites]]\nname = "landing"\npath = "sites/landing"\n')
    assert static.warnings == []  # a plain copy runs no repo code, so needs no sandbox


def test_without_bwrap_images_are_not_decoded_unless_the_sandbox_is_off(
    tmp_path: Path, content_repo: ContentRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A static site runs no builder, but its images are decoded, and decoding is confined too."""
    from PIL import Image

    (content_repo.path / "sites/landing/img").mkdir()
    Image.linear_gradient("L").resize((1000, 500)).convert("RGB").save(
        content_repo.path / "sites/landing/img/a.jpg"
    )
    content_repo.write("sites/landing/index.html", '<img src="img/a.jpg" alt="a">\n')
    content_repo.commit("an image on the static site")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    monkeypatch.setenv("PATH", str(bin_dir))
    ops = tmp_path / "ops"
    ops.mkdir()
    landing = '[[sites]]\nname = "landing"\npath = "sites/landing"\n'

    def build(extra: str = "") -> Built:
        config = write_config(ops, content_repo.path, sites=landing, images=True, extra=extra)
        return commands.build(config_mod.load(config))

    with pytest.raises(ConfigError) as caught:
        build()
    assert "install bubblewrap" in caught.value.message and 'sandbox = "off"' in caught.value.message
    built = build('\n[build]\nsandbox = "off"\n')
    assert 'sandbox = "off"' in built.warnings[0] and "image decoding" in built.warnings[0]
    assert "<picture>" in (built.root / "index.html").read_text()


def test_a_tampered_cached_build_is_rebuilt_not_published(tmp_path: Path, content_repo: ContentRepo) -> None:
    first = _build(tmp_path, content_repo)
    page = first.root / "guide" / "index.html"
    original = page.read_bytes()
    cached = next((tmp_path / "ops/.sitedeploy/builds/docs").glob("*/out/guide/index.html"))
    assert os.path.samefile(page, cached)  # the release is hard links into the cache
    cached.write_bytes(b"<h1>defaced</h1>")  # written in place: the release sees it too
    second = _build(tmp_path, content_repo)
    assert not second.sites[0].reused
    assert (second.root / "guide" / "index.html").read_bytes() == original


def test_a_one_page_edit_is_built_incrementally_in_the_sandbox_like_a_full_build(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    for n in range(12):
        content_repo.write(f"sites/docs/docs/page{n}.md", f"# Page {n}\n\nText of page {n}.\n")
    content_repo.commit("twelve pages")
    progress = _Steps()
    steps = progress.lines
    ops = tmp_path / "ops"
    ops.mkdir()
    cfg = config_mod.load(write_config(ops, content_repo.path, sites=DOCS))
    commands.build(cfg, progress=progress)
    assert any("(full: " in s for s in steps), steps  # the first build fills the cache
    content_repo.write("sites/docs/docs/page3.md", "# Page 3\n\nEdited text of page 3.\n")
    content_repo.commit("edit one page")
    steps.clear()
    incremental = commands.build(cfg, progress=progress)
    assert any("(incremental: markdown 1/" in s for s in steps), steps
    plain = _plain_build(content_repo, "sites/docs", [str(BIN / "mkdocs"), "build"], "site", tmp_path)
    _same_tree(incremental.root / "", plain)
    full = dataclasses.replace(cfg, build=dataclasses.replace(cfg.build, incremental=False))
    content_repo.write("sites/docs/docs/page4.md", "# Page 4\n\nEdited too.\n")
    content_repo.commit("edit another")
    steps.clear()
    commands.build(full, progress=progress)
    assert not any("incremental" in s for s in steps), steps  # --full-build: a plain mkdocs build
