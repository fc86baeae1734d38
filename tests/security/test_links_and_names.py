"""Links and names in the content repo (issue 11, findings 1 and 10).

Links are resolved against the tree, through every link they pass, before anything is
checked out: a chain of folder links that textual normalisation calls "inside" but the
kernel follows outside is refused, and so are loops. Names no target can store (invalid
UTF-8, control characters, ``..``, too long) stop the build with a one-line error naming
the file, not an internal error and not a retryable git failure.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.build import Built
from sitedeploy.errors import BuildError, SourceError
from tests.fixtures.git import ContentRepo, write_config

from .helpers import commit_site_tree

ONE_SITE = '[[sites]]\nname = "x"\npath = "sites/x"\n'
LANDING = '[[sites]]\nname = "landing"\npath = "sites/landing"\n'


def _build(tmp_path: Path, repo: ContentRepo, sites: str) -> Built:
    ops = tmp_path / "ops"
    ops.mkdir(exist_ok=True)
    return commands.build(config_mod.load(write_config(ops, repo.path, sites=sites)))


def _refused(tmp_path: Path, repo: ContentRepo, sites: str, *fragments: str) -> str:
    with pytest.raises(SourceError) as caught:
        _build(tmp_path, repo, sites)
    message = caught.value.message
    assert "\n" not in message and not caught.value.retryable
    for fragment in fragments:
        assert fragment in message, message
    return message


def _link(repo: ContentRepo, rel: str, target: str) -> None:
    path = repo.path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def test_a_chain_of_folder_links_that_leaves_the_site_is_refused(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    content_repo.write("sites/landing/d/keep.txt", "x")
    _link(content_repo, "sites/landing/d/up", "..")  # the site folder itself: inside
    target = "d/up/" * 20 + "../" * 30 + "etc/passwd"
    assert not posixpath.normpath(target).startswith(".."), "text alone says inside: the old check passed"
    _link(content_repo, "sites/landing/passwd.txt", target)
    content_repo.commit("a link through a chain of folder links")
    real = Path(os.path.realpath(content_repo.path / "sites/landing/passwd.txt"))
    assert real == Path("/etc/passwd"), "the kernel really follows it outside"
    _refused(tmp_path, content_repo, LANDING, "sites/landing/passwd.txt", "points outside")


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        ({"loop": "."}, "folder link loop"),
        ({"a/down": "../a"}, "folder link loop"),
        ({"p/q": "../r", "r/s": "../p"}, "folder link loop"),
        ({"one": "two", "two": "one"}, "symlink loop"),
    ],
)
def test_link_loops_are_refused(
    tmp_path: Path, content_repo: ContentRepo, links: dict[str, str], expected: str
) -> None:
    for rel, target in links.items():
        content_repo.write(f"sites/landing/{posixpath.dirname(rel) or '.'}/keep.txt", "x")
        _link(content_repo, f"sites/landing/{rel}", target)
    content_repo.commit("a link loop")
    _refused(tmp_path, content_repo, LANDING, "sites/landing/", expected)


def test_links_inside_a_static_site_are_published_as_files(tmp_path: Path, content_repo: ContentRepo) -> None:
    content_repo.write("sites/landing/assets/logo.txt", "logo\n")
    _link(content_repo, "sites/landing/alias", "assets")
    _link(content_repo, "sites/landing/logo.txt", "alias/logo.txt")
    content_repo.commit("links that stay inside")
    built = _build(tmp_path, content_repo, LANDING)
    for rel in ("logo.txt", "alias/logo.txt", "assets/logo.txt"):
        path = built.root / rel
        assert not path.is_symlink() and path.read_text() == "logo\n"
    assert "alias/logo.txt" in built.manifest


def test_the_static_copy_never_follows_a_link_out_of_the_site(tmp_path: Path) -> None:
    """The copy checks again, whatever the tree check said (defence in depth)."""
    from sitedeploy.builders import Job
    from sitedeploy.builders.static import copy_tree

    src = tmp_path / "src"
    src.mkdir()
    (src / "passwd").symlink_to("/etc/passwd")
    job = Job("x", "sites/x", src, tmp_path / "out", tmp_path / "work", 0, False, "off", tmp_path / "v")
    with pytest.raises(BuildError, match=r"sites/x/passwd leads outside the site folder"):
        copy_tree(src, tmp_path / "out", job)
    assert not (tmp_path / "out" / "passwd").exists()


@pytest.mark.parametrize(
    ("name", "shown", "reason"),
    [
        (b"caf\xe9.html", r"caf\xe9.html", "not valid UTF-8"),
        (b"new\nline.html", r"new\nline.html", "control character"),
        (b"title\x1b]0;pwned\x07.html", r"title\x1b]0;pwned\x07.html", "control character"),
        (b"..", "sites/x/..", "'..'"),
        (b"a" * 300 + b".html", "sites/x/aaaa", "too long"),
    ],
)
def test_names_no_target_can_store_are_refused_naming_the_file(
    tmp_path: Path, content_repo: ContentRepo, name: bytes, shown: str, reason: str
) -> None:
    commit_site_tree(
        content_repo, [("100644", b"index.html", b"<h1>x</h1>"), ("100644", name, b"x")], "bad name"
    )
    message = _refused(tmp_path, content_repo, ONE_SITE, shown, reason)
    assert "\x1b" not in message and "\x07" not in message  # never echoed to a terminal raw
