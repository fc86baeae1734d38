"""ProperDocs (issue 26, item 1): detected from ``properdocs.yml``, building a ``mkdocs.yml``
when the builder is set, its output equal to a plain ``properdocs build`` byte for byte, in
the sandbox, and incremental where ProperDocs keeps MkDocs' API — proved by running the
MkDocs differential tests (``tests/test_incremental_build.py``) with ProperDocs standing in for
every ``mkdocs`` import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sitedeploy import builders, commands
from sitedeploy import config as config_mod
from sitedeploy.errors import BuildError
from tests.fixtures.git import ContentRepo, write_config
from tests.test_builders import BIN, DOCS, _build, _plain_build, _same_tree, _Steps

PROPERDOCS = [str(BIN / "properdocs"), "build"]
TESTS = Path(__file__).parent


def test_detection_prefers_properdocs_yml_and_leaves_mkdocs_yml_to_mkdocs() -> None:
    assert builders.detect(["properdocs.yml", "mkdocs.yml", "docs"]) == "properdocs"
    assert builders.detect(["mkdocs.yml", "docs"]) == "mkdocs"
    assert builders.detect(["zensical.toml", "properdocs.yml"]) == "zensical"


def test_a_properdocs_site_builds_as_properdocs_build_does(tmp_path: Path, content_repo: ContentRepo) -> None:
    (content_repo.path / "sites/docs/mkdocs.yml").rename(content_repo.path / "sites/docs/properdocs.yml")
    for n in range(6):
        content_repo.write(f"sites/docs/docs/page{n}.md", f"# Page {n}\n\nText of page {n}.\n")
    content_repo.commit("ProperDocs")
    ops = tmp_path / "ops"
    ops.mkdir()
    cfg = config_mod.load(write_config(ops, content_repo.path, sites=DOCS))
    steps = _Steps()
    built = commands.build(cfg, progress=steps)
    assert any("(properdocs)" in s for s in steps.lines), steps.lines
    _same_tree(built.root, _plain_build(content_repo, "sites/docs", PROPERDOCS, "site", tmp_path))
    content_repo.write("sites/docs/docs/page3.md", "# Page 3\n\nEdited.\n")
    content_repo.commit("edit one page")
    steps.lines.clear()
    built = commands.build(cfg, progress=steps)
    assert any("(incremental: markdown 1/" in s for s in steps.lines), steps.lines
    _same_tree(built.root, _plain_build(content_repo, "sites/docs", PROPERDOCS, "site", tmp_path))
    assert (cfg.state_dir / "properdocs-cache" / "docs").is_dir()
    assert not (cfg.state_dir / "mkdocs-cache").exists()  # never MkDocs' cache


def test_the_builder_key_builds_a_mkdocs_yml_with_properdocs(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    content_repo.write(
        "sites/docs/mkdocs.yml",
        "site_name: Material Docs\ntheme:\n  name: material\nplugins:\n  - search\n  - tags\n",
    )
    content_repo.write("sites/docs/docs/tagged.md", "---\ntags:\n  - alpha\n---\n# Tagged\n\nText.\n")
    content_repo.commit("material with search and tags")
    built = _build(tmp_path, content_repo, DOCS + 'builder = "properdocs"\n')
    plain = _plain_build(content_repo, "sites/docs", [*PROPERDOCS, "-f", "mkdocs.yml"], "site", tmp_path)
    _same_tree(built.root, plain)
    assert "ProperDocs" in (built.root / "index.html").read_text()  # Material's generator tag


def test_properdocs_warnings_reach_the_build_result_and_strict_fails(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    (content_repo.path / "sites/docs/mkdocs.yml").unlink()
    content_repo.write("sites/docs/properdocs.yml", "site_name: P\ntheme:\n  name: mkdocs\n")
    content_repo.write("sites/docs/docs/guide.md", "# Guide\n\nA [broken link](missing.md).\n")
    content_repo.commit("a broken link")
    built = _build(tmp_path, content_repo)
    assert built.warning_count == 1 and "missing.md" in built.warnings[0], built.warnings
    content_repo.write("sites/docs/docs/index.md", "# Home\n\nEdited.\n")
    content_repo.commit("edit another page: the guide is reused, its warning logged again")
    assert _build(tmp_path, content_repo).warning_count == 1
    with pytest.raises(BuildError, match="properdocs build failed"):
        _build(tmp_path, content_repo, DOCS + "strict = true\n")


def test_a_properdocs_site_with_requirements_runs_mkdocs_plugins_in_its_own_venv(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    """ProperDocs' point: an MkDocs 1 plugin (mkdocs-redirects) runs unchanged in its venv."""
    content_repo.write(
        "sites/docs/requirements.txt",
        "properdocs==1.6.7\nproperdocs-theme-mkdocs==1.6.7\nmkdocs-redirects==1.2.3\n",
    )
    (content_repo.path / "sites/docs/mkdocs.yml").unlink()
    content_repo.write(
        "sites/docs/properdocs.yml",
        "site_name: P\ntheme:\n  name: mkdocs\n"
        "plugins:\n  - redirects:\n      redirect_maps:\n        old.md: guide.md\n",
    )
    content_repo.commit("properdocs with a plugin of MkDocs 1")
    built = _build(tmp_path, content_repo)
    assert "guide/" in (built.root / "old" / "index.html").read_text()
    venvs = [p.name for p in (tmp_path / "ops/.sitedeploy/venvs/docs").iterdir() if p.is_dir()]
    assert len(venvs) == 1 and venvs[0].startswith("properdocs-"), venvs


DIFFERENTIAL = [
    "test_random_edits_match_a_full_build_byte_for_byte[1]",
    "test_adding_a_page_re_renders_only_the_pages_that_link_to_it",
    "test_material_with_search",
    "test_unknown_plugin_builds_in_full",
    "test_hook_site_always_builds_in_full",
]


@pytest.mark.slow
def test_the_incremental_builder_matches_properdocs_build_in_the_differential_tests(tmp_path: Path) -> None:
    """The MkDocs differential tests, in a Python where ``mkdocs`` is ProperDocs (as the
    incremental build runs under ProperDocs): each compares against ProperDocs' own build."""
    ids = [f"{TESTS / 'test_incremental_build.py'}::{name}" for name in DIFFERENTIAL]
    script = (
        "import sys, properdocs.replacement, mkdocs, pytest; "
        "assert mkdocs.__name__ == 'properdocs', mkdocs; "
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '--basetemp', sys.argv[1], *sys.argv[2:]]))"
    )
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true"}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "t"), *ids],
        cwd=TESTS.parent, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"{len(DIFFERENTIAL)} passed" in proc.stdout, proc.stdout[-1000:]
