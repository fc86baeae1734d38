"""Migration from mike, and Material's version selector in a real browser.

The gh-pages branch is made in the test by mike itself (``mike deploy``, ``set-default``)
from a mkdocs-material project; ``sitedeploy import-mike`` publishes its versions as they are.
Headless Chromium then opens the served site: Material's selector (``provider: mike``) lists
the versions from sitedeploy's ``versions.json``, its links switch to the other version, and
the outdated-version banner shows on the old version only.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sitedeploy.cli.main import cli
from tests.fixtures.browser import Chromium
from tests.fixtures.git import GIT_ENV

MKDOCS_YML = """site_name: Mike Docs
theme:
  name: material
  custom_dir: overrides
extra:
  version:
    provider: mike
    default: latest
"""
OUTDATED = '{% extends "base.html" %}\n{% block outdated %}OLD VERSION: go to the latest.{% endblock %}\n'


def _run(cwd: Path, *cmd: str) -> str:
    env = {**os.environ, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr[-2000:]}"
    return proc.stdout


def _docs(repo: Path, version: str) -> None:
    (repo / "docs").mkdir(parents=True, exist_ok=True)
    (repo / "docs" / "index.md").write_text(f"# Welcome {version}\n\nThe {version} docs.\n")
    (repo / "docs" / "guide.md").write_text(f"# Guide {version}\n")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", f"docs {version}")


@pytest.fixture
def mike_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "project"
    repo.mkdir()
    _run(repo, "git", "init", "-q", "-b", "main")
    (repo / "mkdocs.yml").write_text(MKDOCS_YML)
    (repo / "overrides").mkdir()
    (repo / "overrides" / "main.html").write_text(OUTDATED)
    _docs(repo, "1.0")
    _run(repo, "mike", "deploy", "1.0")
    _docs(repo, "2.0")
    _run(repo, "mike", "deploy", "--update-aliases", "2.0", "latest")
    _run(repo, "mike", "set-default", "latest")
    return repo


@pytest.fixture
def imported(tmp_path: Path, mike_repo: Path) -> Path:
    ops = tmp_path / "ops"
    ops.mkdir()
    toml = ops / "deploy.toml"
    toml.write_text(
        f'[source]\nrepo = "{mike_repo}"\n\n[images]\nenabled = false\n\n'
        '[targets.docs]\ntype = "local"\npath = "public"\nversions = "tag:v*"\naliases = {}\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(toml), "--json", "import-mike"])
    assert result.exit_code == 0, result.output
    assert sorted((r["name"], r["outcome"]) for r in json.loads(result.stdout)) == [
        ("1.0", "deployed"),
        ("2.0", "deployed"),
    ]
    return ops / "public" / "current"


@pytest.fixture
def site_url(imported: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(imported)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_import_mike_serves_its_versions_aliases_and_default_unchanged(
    mike_repo: Path, imported: Path
) -> None:
    mike_versions = json.loads(_run(mike_repo, "git", "show", "gh-pages:versions.json"))
    assert json.loads((imported / "versions.json").read_text()) == mike_versions
    for version in ("1.0", "2.0"):
        ours = (imported / version / "index.html").read_bytes()
        assert ours == _run(mike_repo, "git", "show", f"gh-pages:{version}/index.html").encode()
    assert "Welcome 2.0" in (imported / "latest" / "index.html").read_text()
    assert 'url=latest/"' in (imported / "index.html").read_text()


def test_material_version_selector_lists_versions_and_switches(site_url: str, chromium: Chromium) -> None:
    newest = chromium.dump_dom(f"{site_url}/latest/", 1200, 900, budget_ms=8000)
    links = dict(re.findall(r'<a href="([^"]+)" class="md-version__link">\s*([^<]+?)\s*<', newest))
    assert sorted(links.values()) == ["1.0", "2.0"], newest[-3000:]
    old_url = next(href for href, title in links.items() if title == "1.0")
    assert old_url == f"{site_url}/1.0/"
    old = chromium.dump_dom(old_url, 1200, 900, budget_ms=8000)
    assert "Welcome 1.0" in old
    assert re.search(r'data-md-component="outdated"(?![^>]*hidden)', old), "no outdated banner on 1.0"
    assert re.search(r'data-md-component="outdated"[^>]*hidden', newest), "outdated banner on latest"
