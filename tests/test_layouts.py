"""Real docs repos as they are: a root mkdocs.yml (``mkdocs new .``), a landing page at ``/``
with docs and a blog nested inside it, and two sites that really collide.

The published tree must be what each builder makes on its own — a plain ``mkdocs build`` of the
same commit, or the static folder itself — byte for byte, apart from the release marker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sitedeploy import config as config_mod
from sitedeploy.build import site_jobs
from sitedeploy.build.release_tree import MARKER
from sitedeploy.cli.main import cli
from sitedeploy.cli.serve import Preview, start
from sitedeploy.commands import open_source
from sitedeploy.redirects.ruleset import GENERATED_PREFIX
from tests.fixtures.git import ContentRepo

NO_IMAGES = "[images]\nenabled = false\n"


def sd(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".gitignore"
    }


def plain_mkdocs_build(repo: ContentRepo, site: str, out: Path) -> dict[str, bytes]:
    """What a user gets from ``mkdocs build`` in their clone, dated like the site's last commit."""
    folder = repo.path / site
    epoch = repo.git("log", "-1", "--format=%ct", "--", site or ".")
    env = {**os.environ, "SOURCE_DATE_EPOCH": epoch}
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(folder / "mkdocs.yml"), "-d", str(out)],
        cwd=folder, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return files_of(out)


def published(root: Path) -> dict[str, bytes]:
    files = files_of(root / "public" / "current")
    files.pop(MARKER)
    return {k: v for k, v in files.items() if not k.startswith(GENERATED_PREFIX)}  # server rules


def mounted(prefix: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {prefix + k: v for k, v in files.items()}


def test_a_repo_made_by_mkdocs_new_deploys_at_the_root(tmp_path: Path) -> None:
    repo = ContentRepo(tmp_path / "docs-repo")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "new", "."], cwd=repo.path, check=True, capture_output=True
    )
    repo.write("deploy.toml", NO_IMAGES)  # no [[sites]]: the root mkdocs.yml is the site
    repo.commit("mkdocs new .")

    result = sd(repo.path / "deploy.toml", "deploy")

    assert result.exit_code == 0, result.output
    assert published(repo.path) == plain_mkdocs_build(repo, "", tmp_path / "plain")
    marker = json.loads((repo.path / "public/current" / MARKER).read_text())
    assert marker["sites"] == {"docs": "/"}
    # The state folder and the target sit inside the repo: both keep themselves out of git.
    assert repo.git("status", "--porcelain") == ""


@pytest.mark.parametrize("path", [".", "", "./"])
def test_path_dot_names_the_repository_root(tmp_path: Path, path: str) -> None:
    repo = ContentRepo(tmp_path / "r")
    repo.write("mkdocs.yml", "site_name: Root\n")
    repo.write("docs/index.md", "# Root\n")
    repo.write("deploy.toml", f'[[sites]]\nname = "docs"\npath = "{path}"\nmount = "/"\n')
    sha = repo.commit("root site")
    config = config_mod.load(repo.path / "deploy.toml")
    source = open_source(config)
    source.sync()

    [job] = site_jobs(config, source, source.commit(sha))

    assert job.kind == "mkdocs" and job.config.path == "."
    assert job.tree == repo.git("rev-parse", "HEAD^{tree}")


def nested_repo(tmp_path: Path) -> ContentRepo:
    repo = ContentRepo(tmp_path / "web")
    repo.write(
        "sites/landing/index.html", '<!doctype html><a href="docs/">Docs</a> <a href="blog/">Blog</a>\n'
    )
    repo.write("sites/landing/404.html", "<!doctype html><p>landing: not found</p>\n")
    repo.write("sites/landing/robots.txt", "User-agent: *\n")
    for name in ("docs", "blog"):
        repo.write(f"sites/{name}/mkdocs.yml", f"site_name: {name}\nsite_url: https://example.org/{name}/\n")
        repo.write(f"sites/{name}/docs/index.md", f"# {name}\n\nSee [the page](page.md).\n")
        repo.write(f"sites/{name}/docs/page.md", f"# A {name} page\n")
    sites = "".join(
        f'[[sites]]\nname = "{n}"\npath = "sites/{n}"\nmount = "{m}"\n'
        for n, m in (("landing", "/"), ("docs", "/docs/"), ("blog", "/blog/"))
    )
    repo.write("deploy.toml", sites + NO_IMAGES)
    repo.commit("landing with docs and blog inside")
    return repo


def test_landing_page_with_docs_and_blog_nested_inside(tmp_path: Path) -> None:
    repo = nested_repo(tmp_path)

    result = sd(repo.path / "deploy.toml", "deploy")

    assert result.exit_code == 0, result.output
    expected = files_of(repo.path / "sites/landing")
    for name in ("docs", "blog"):
        expected |= mounted(f"{name}/", plain_mkdocs_build(repo, f"sites/{name}", tmp_path / f"plain-{name}"))
    assert published(repo.path) == expected
    live = repo.path / "public/current"
    for name in ("docs", "blog"):  # each site keeps its own search index and sitemap
        index = json.loads((live / name / "search/search_index.json").read_text())
        assert {d["location"] for d in index["docs"]} >= {"", "page/"}
        assert f"https://example.org/{name}/page/" in (live / name / "sitemap.xml").read_text()


def test_serve_answers_a_missing_page_with_its_own_site_404(tmp_path: Path) -> None:
    repo = nested_repo(tmp_path)
    assert sd(repo.path / "deploy.toml", "deploy").exit_code == 0
    [server] = start([Preview("local", repo.path / "public/current", 0)], "127.0.0.1")
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        pages = {path: _get_missing(base + path) for path in ("/nope/", "/docs/nope/", "/blog/a/b/c")}
    finally:
        server.shutdown()
        server.server_close()
    assert "landing: not found" in pages["/nope/"]
    assert pages["/docs/nope/"] == (repo.path / "public/current/docs/404.html").read_text()
    assert pages["/blog/a/b/c"] == (repo.path / "public/current/blog/404.html").read_text()


def _get_missing(url: str) -> str:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=10)
    assert info.value.code == 404
    return info.value.read().decode()


@pytest.mark.parametrize(
    ("landing_file", "fragments"),
    [
        ("docs/index.html", ["sites 'landing' and 'docs' both produce docs/index.html"]),
        ("docs/old.html", ["site 'docs' is mounted at /docs/, over docs/old.html of site 'landing'"]),
    ],
)
def test_two_sites_writing_the_same_place_are_refused(
    tmp_path: Path, landing_file: str, fragments: list[str]
) -> None:
    repo = nested_repo(tmp_path)
    assert sd(repo.path / "deploy.toml", "deploy").exit_code == 0
    live = os.readlink(repo.path / "public/current")
    repo.write(f"sites/landing/{landing_file}", "<!doctype html><p>the landing page's own</p>\n")
    repo.commit("landing writes inside the docs mount")

    result = sd(repo.path / "deploy.toml", "deploy")

    assert result.exit_code == 2, result.output
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert all(f in line for f in fragments), line
    assert os.readlink(repo.path / "public/current") == live
