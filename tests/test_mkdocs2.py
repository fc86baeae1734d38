"""MkDocs 2 is recognised, not misbuilt (issue 26, item 2): a ``mkdocs.toml``, a
requirements.txt asking for ``mkdocs>=2``, or a venv that resolved MkDocs 2 under plugins
that need MkDocs 1 each fail with one line saying what is not supported and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitedeploy.builders.mkdocs2 import _asks_for_mkdocs2
from sitedeploy.errors import UnsupportedEngine
from tests.fixtures.git import ContentRepo
from tests.test_builders import _build


@pytest.mark.parametrize(
    ("line", "asks"),
    [
        ("mkdocs>=2", True),
        ("mkdocs==2.0.dev6  # trying it", True),
        ("MkDocs ~= 2.0", True),
        ("mkdocs>=2.0.dev0,<3", True),
        ("mkdocs<2", False),
        ("mkdocs==1.6.1", False),
        ("mkdocs>=1.6.0.dev0", False),  # admits 1.6.1: the venv check catches what pip picks
        ("mkdocs", False),
        ("mkdocs-material>=9", False),
        ("./vendor/mkdocs-2.0.tar.gz", False),
        ("-r other.txt", False),
    ],
)
def test_a_requirement_asks_for_mkdocs_2_only_when_no_mkdocs_1_satisfies_it(line: str, asks: bool) -> None:
    assert _asks_for_mkdocs2(line) is asks


def test_a_mkdocs_toml_site_is_refused_with_what_to_do(tmp_path: Path, content_repo: ContentRepo) -> None:
    (content_repo.path / "sites/docs/mkdocs.yml").unlink()
    content_repo.write("sites/docs/mkdocs.toml", '[mkdocs]\nsite_name = "Two"\n')
    content_repo.commit("MkDocs 2's config")
    with pytest.raises(UnsupportedEngine) as caught:
        _build(tmp_path, content_repo)
    assert caught.value.message == (
        "site 'docs': sites/docs/mkdocs.toml is MkDocs 2's config, which sitedeploy does not build yet "
        '(MkDocs 2 is a pre-release without plugins); keep a mkdocs.yml and pin "mkdocs<2" in '
        'requirements.txt, or set builder = "properdocs" (or "zensical") for the site'
    )


def test_requirements_asking_for_mkdocs_2_are_refused_before_a_venv_is_made(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    content_repo.write("sites/docs/requirements.txt", "mkdocs-material\nmkdocs>=2\n")
    content_repo.commit("try MkDocs 2")
    with pytest.raises(UnsupportedEngine, match=r"requirements.txt line 2 asks for 'mkdocs>=2', MkDocs 2, "):
        _build(tmp_path, content_repo)
    assert not (tmp_path / "ops/.sitedeploy/venvs").exists()


def test_a_venv_that_resolved_mkdocs_2_under_plugins_of_mkdocs_1_is_refused(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    # A pre-release in the specifier lets pip pick MkDocs 2's pre-release: the requirement
    # admits 1.6.1, so only the installed version tells.
    content_repo.write("sites/docs/requirements.txt", "mkdocs>=1.6.0.dev0\n")
    yml = content_repo.path / "sites/docs/mkdocs.yml"
    content_repo.write("sites/docs/mkdocs.yml", yml.read_text() + "plugins:\n  - search\n  - tags: {}\n")
    content_repo.commit("a loose pin")
    with pytest.raises(UnsupportedEngine) as caught:
        _build(tmp_path, content_repo)
    message = caught.value.message
    assert message.startswith("site 'docs': sites/docs/requirements.txt installed mkdocs 2.0"), message
    assert 'but its plugins (search, tags) need MkDocs 1; pin "mkdocs<2"' in message, message
