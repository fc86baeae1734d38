"""What a versioned root tells search engines, on a real local family with real MkDocs builds:
every page of a version links (rel=canonical) to the same page of the default version when the
default has it, and a moved default is caught up by ``versions deploy --rebuild``, which
republishes exactly the versions whose links change; the root's sitemap.xml indexes the
default's sitemap when its build names the site (``site_url``), and is absent otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitedeploy.config import load
from sitedeploy.release.manifest import scan
from sitedeploy.versions.canonical import Canonical, existing_href, with_canonical
from sitedeploy.versions.sitemap import site_of
from sitedeploy.versions.state import Alias, FamilyState, Line, root_files
from tests.fixtures.git import ContentRepo, write_config
from tests.test_versions import SITE, ok, sd, served

SITE_URL = "site_url: https://docs.example.com/\n"


def tag(repo: ContentRepo, name: str, *, old_page: bool) -> None:
    repo.add_mkdocs_site(version=name)
    repo.write("sites/docs/mkdocs.yml", (repo.path / "sites/docs/mkdocs.yml").read_text() + SITE_URL)
    if old_page:
        repo.write("sites/docs/docs/old.md", f"# Old in {name}\n")
    elif (repo.path / "sites/docs/docs/old.md").exists():
        repo.git("rm", "-q", "sites/docs/docs/old.md")
    repo.commit(f"docs for {name}")
    repo.git("tag", name)


@pytest.fixture
def family(tmp_path: Path) -> tuple[ContentRepo, Path]:
    repo = ContentRepo(tmp_path / "content")
    tag(repo, "v1.0.0", old_page=True)
    tag(repo, "v2.0.0", old_page=False)
    ops = tmp_path / "ops"
    ops.mkdir()
    extra = 'versions = "tag:v*"\naliases = { latest = "newest" }\n'
    return repo, write_config(ops, repo.path, sites=SITE, extra=extra)


def canonical(deploy_toml: Path, url: str) -> str | None:
    return existing_href((served(deploy_toml) / url.strip("/") / "index.html").read_bytes())


def test_pages_point_at_the_default_and_a_moved_default_is_caught_up_by_rebuild(
    family: tuple[ContentRepo, Path],
) -> None:
    repo, toml = family
    ok(sd(toml, "versions", "deploy"))
    assert canonical(toml, "1.0/guide") == "https://docs.example.com/latest/guide/"
    assert canonical(toml, "1.0") == "https://docs.example.com/latest/"
    assert canonical(toml, "2.0/guide") == "https://docs.example.com/latest/guide/"  # the default's own
    assert canonical(toml, "latest/guide") == "https://docs.example.com/latest/guide/"
    assert canonical(toml, "1.0/old") == "https://docs.example.com/old/"  # not in 2.0: MkDocs' own link
    index = (served(toml) / "sitemap.xml").read_text()
    assert "<sitemapindex" in index and "<loc>https://docs.example.com/latest/sitemap.xml</loc>" in index
    robots = (served(toml) / "robots.txt").read_text()
    assert robots == "User-agent: *\nDisallow:\nSitemap: https://docs.example.com/sitemap.xml\n"
    assert "https://docs.example.com/" in (served(toml) / "latest" / "sitemap.xml").read_text()

    tag(repo, "v3.0.0", old_page=True)  # latest moves to 3.0, which has old/ again
    ok(sd(toml, "versions", "deploy"))
    assert canonical(toml, "1.0/old") == "https://docs.example.com/old/"  # live versions are not rewritten
    rebuilt = json.loads(ok(sd(toml, "--json", "versions", "deploy", "--rebuild")).stdout)
    assert {r["name"]: r["outcome"] for r in rebuilt} == {
        "1.0": "deployed",
        "2.0": "deployed",
        "3.0": "unchanged",
    }
    assert canonical(toml, "1.0/old") == "https://docs.example.com/latest/old/"
    assert canonical(toml, "2.0/guide") == "https://docs.example.com/latest/guide/"
    builds = [p for p in (load(toml).state_dir / "builds").rglob("*.html") if p.is_file()]
    assert builds and not any(b"example.com/latest/" in p.read_bytes() for p in builds)  # not written through


def test_the_link_replaces_or_adds_one_tag_and_drops_a_version_from_the_site() -> None:
    names = frozenset({"1.0", "2.0", "latest"})
    every = Canonical("latest", None, names)
    some = Canonical("latest", frozenset({"index.html", "a/index.html"}), names)
    bare = b"<html><head><title>x</title></head><body>a</body></html>"
    assert existing_href(with_canonical(bare, every.href("a/index.html", bare) or "")) == "/latest/a/"
    own = b'<html><head><link rel="canonical" href="https://h.example/1.0/a/"></head></html>'
    linked = with_canonical(own, every.href("a/index.html", own) or "")
    assert linked.count(b"canonical") == 1 and existing_href(linked) == "https://h.example/latest/a/"
    assert some.href("b/index.html", own) is None and some.href("404.html", own) is None
    hostile = b'<head><link rel=canonical href="javascript:alert(1)/a/">'
    assert every.href("a/index.html", hostile) == "/latest/a/"
    assert every.fingerprint != some.fingerprint


def test_the_root_sitemap_needs_a_site_url_and_refuses_what_is_not_a_plain_url(tmp_path: Path) -> None:
    lines = (Line("2.0", "2.0", site_url="https://docs.example.com/2.0/"), Line("1.0", "1.0"))
    state = FamilyState("versions", lines, (Alias("latest", "2.0"),), "latest")
    assert b"<loc>https://docs.example.com/latest/sitemap.xml</loc>" in root_files(state)["sitemap.xml"]
    older = FamilyState("versions", lines, (Alias("latest", "1.0"),), "latest")  # 1.0: no site_url
    assert "sitemap.xml" not in root_files(older) and b"Sitemap" not in root_files(older)["robots.txt"]
    with pytest.raises(ValueError, match="plain http"):
        FamilyState.from_json(state.to_json().replace(b"https://docs.example.com/2.0/", b"https://x/</loc>"))
    for body, site in [
        (
            b"<urlset><url><loc>https://h.example/a/</loc></url><url><loc>https://h.example/</loc></url>",
            "https://h.example/",
        ),
        (b"<urlset><url><loc>None</loc></url></urlset>", ""),  # MkDocs without site_url
        (b"<urlset><url><loc>https://h.example/a'/</loc></url></urlset>", ""),
    ]:
        (tmp_path / "sitemap.xml").write_bytes(body)
        assert site_of(tmp_path, scan(tmp_path)) == site
