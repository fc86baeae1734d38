"""The manual (``sites/docs``) stays true: reference pages match the code, examples run, it
deploys with this repository's own deploy.toml, and it renders in a real browser.

Screenshots of the landing page, a reference page and a page at phone width are written to
``<basetemp>/manual-screenshots/`` (``pytest --basetemp=DIR`` to choose where).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_type_hints

import click
import pytest

from sitedeploy import config, docs_reference, errors
from sitedeploy.cli import cli
from sitedeploy.errors import ConfigError
from tests.fixtures.browser import Chromium, WebServer
from tests.fixtures.git import GIT_ENV

ROOT = Path(__file__).resolve().parents[1]
MANUAL = ROOT / "sites/docs/docs"
REFERENCE = MANUAL / "reference"
BIN = Path(sys.executable).parent


def manual_pages() -> list[Path]:
    return sorted(MANUAL.rglob("*.md"))


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


# --- the reference pages are generated, and cover everything -------------------------------


def test_reference_pages_are_what_the_code_generates() -> None:
    stale = docs_reference.stale_pages(REFERENCE)
    assert not stale, f"{stale}: run .venv/bin/python -m sitedeploy.docs_reference"


def reachable_dataclasses(root: type[Any]) -> Iterator[type[Any]]:
    """Every config dataclass a deploy.toml can reach from ``root`` (nested tables included)."""
    for hint in get_type_hints(root).values():
        for arg in (hint, *get_args(hint), *(a for h in get_args(hint) for a in get_args(h))):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                yield arg
                yield from reachable_dataclasses(arg)


def test_every_config_table_and_key_is_in_the_reference_and_nothing_else() -> None:
    tables = {t.cls for t in docs_reference.TABLES}
    reachable = set(reachable_dataclasses(config.Config)) | set(config.TARGET_TYPES.values())
    assert reachable <= tables, f"tables missing from the reference: {reachable - tables}"
    page = (REFERENCE / "configuration.md").read_text()
    documented: set[str] = set()
    for heading, body in re.findall(r"^## `\[+([^\]]+)\]+[^`]*`\n(.*?)(?=^## |\Z)", page, re.M | re.S):
        documented.update(f"{heading}.{key}" for key in re.findall(r"^\| `([a-z_]+)` \|", body, re.M))
    expected = {
        f"{t.heading.split()[0].strip('[]')}.{f.name}"
        for t in docs_reference.TABLES
        for f in dataclasses.fields(t.cls)
        if f.init and f.name not in t.skip
    }
    assert documented == expected
    tables_by_key = {
        f.name
        for cls in reachable
        for f in dataclasses.fields(cls)
        if f.name in ("images", "webhook", "notify", "metrics")
    }
    every_key = {f.name for cls in reachable for f in dataclasses.fields(cls) if f.init} - tables_by_key
    assert every_key <= {key.rpartition(".")[2] for key in documented}
    undescribed = [k.name for t in docs_reference.TABLES for k in docs_reference.keys_of(t) if not k.doc]
    assert not undescribed, f"write a docstring under these fields: {undescribed}"


# A value just outside each range the reference states for a __post_init__ check.
OUT_OF_RANGE = {
    ("TargetConfig", "keep_releases"): {"targets": {"t": {"type": "local", "path": "p", "keep_releases": 1}}},
    ("ImagesConfig", "avif_speed"): {"images": {"avif_speed": 11}},
    ("ImagesConfig", "quality"): {"images": {"quality": {"webp": 101}}},
    ("ImagesConfig", "widths"): {"images": {"widths": [0]}},
    ("ImagesConfig", "formats"): {"images": {"formats": ["gif"]}},
    ("TargetConfig", "preview_max_age_days"): {
        "targets": {"t": {"type": "local", "path": "p", "preview_max_age_days": -1}}
    },
}


def test_ranges_the_reference_states_by_hand_are_enforced(tmp_path: Path) -> None:
    assert set(OUT_OF_RANGE) == set(docs_reference.POST_INIT_RANGES)
    for raw in OUT_OF_RANGE.values():
        with pytest.raises(ConfigError):
            config.from_dict(raw, tmp_path / "deploy.toml")


def all_commands(group: click.Group, prefix: str = "sitedeploy") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from all_commands(command, f"{prefix} {name}")


def test_every_command_and_flag_is_in_the_reference_and_nothing_else() -> None:
    page = (REFERENCE / "cli.md").read_text()
    sections = dict(re.findall(r"^## `(sitedeploy[^`]*)`\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    commands = {"sitedeploy": cli, **dict(all_commands(cli))}
    assert set(sections) == set(commands)
    for name, command in commands.items():
        flags = {
            o for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)
        }
        shown = set(re.findall(r"`(--?[a-z][a-z0-9-]*)`", sections[name]))
        assert shown == flags - {"--help"}, name


def test_every_error_class_has_a_troubleshooting_entry_and_every_entry_a_class() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.SitedeployError)
    }
    entries = set(re.findall(r"^## (\w+)$", (MANUAL / "troubleshooting.md").read_text(), re.M))
    assert entries == classes


# --- examples that run --------------------------------------------------------------------


def toml_snippets() -> list[tuple[str, str]]:
    found = [
        (f"{p.relative_to(ROOT)}#{i}", s)
        for p in manual_pages()
        for i, s in enumerate(fenced(p.read_text(), "toml"))
    ]
    found += [(f"README.md#{i}", s) for i, s in enumerate(fenced((ROOT / "README.md").read_text(), "toml"))]
    return found


def test_the_manual_has_toml_examples() -> None:
    assert len(toml_snippets()) >= 8  # the extraction works: every page with a table has one


@pytest.mark.parametrize(("where", "snippet"), toml_snippets(), ids=[w for w, _ in toml_snippets()])
def test_every_deploy_toml_example_loads(where: str, snippet: str, tmp_path: Path) -> None:
    config.from_dict(tomllib.loads(snippet), tmp_path / "deploy.toml")


def test_the_repository_deploy_toml_loads() -> None:
    cfg = config.load(ROOT / "deploy.toml")
    assert cfg.targets["versions"].versions == "tag:v*"


def session_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, **GIT_ENV, "PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    return {k: v for k, v in env.items() if not k.startswith("GIT_DIR")}


@pytest.mark.slow
def test_the_getting_started_session_runs_as_written(tmp_path: Path) -> None:
    page = (MANUAL / "getting-started.md").read_text()
    (session,) = [s for s in fenced(page, "sh") if s.startswith("mkdocs new")]
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", session],
        cwd=tmp_path,
        env=session_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    history = done.stdout.split("rolled back to")[-1]
    assert "rollback" in history and "deploy" in history
    assert "deployed" in done.stdout.split("rolled back")[-1] or "event=deployed" in done.stderr


# --- the manual deploys and renders --------------------------------------------------------


@pytest.fixture(scope="module")
def deployed_manual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository's sites/ and deploy.toml, committed to a fresh repo and deployed."""
    repo = tmp_path_factory.mktemp("manual-repo")
    shutil.copytree(ROOT / "sites", repo / "sites")
    shutil.copy(ROOT / "deploy.toml", repo / "deploy.toml")
    env = session_env(repo)
    for step in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "manual"],
    ):
        subprocess.run(step, cwd=repo, env=env, check=True)
    done = subprocess.run(
        [str(BIN / "sitedeploy"), "deploy"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "served from" in done.stdout and "warning" not in done.stderr.lower()
    return (repo / "public/current").resolve()


@pytest.mark.slow
def test_the_manual_deploys_strict_with_the_link_gate_and_responsive_images(deployed_manual: Path) -> None:
    assert (deployed_manual / "index.html").is_file()  # the landing page at /
    for page in (
        "docs/index.html",
        "docs/reference/configuration/index.html",
        "docs/troubleshooting/index.html",
    ):
        assert (deployed_manual / page).is_file()
    assert "<picture>" in (deployed_manual / "docs/index.html").read_text()


HEAD = '<!doctype html><meta charset="utf-8"><link rel=icon href="data:,">'
PHONE = HEAD + '<body style="margin:0"><iframe src="{}" width="390" height="844" style="border:0">'
# The theme's search runs lunr in a web worker, whose answer headless Chromium's --dump-dom does
# not wait for; this page runs the same lunr.js over the same search_index.json in the page.
SEARCH = (
    HEAD
    + """<script src="/docs/search/lunr.js"></script><script>
var xhr = new XMLHttpRequest(); xhr.open("GET", "/docs/search/search_index.json", false); xhr.send();
var data = JSON.parse(xhr.responseText);
var index = lunr(function () { this.field("title"); this.field("text"); this.ref("location");
  data.docs.forEach(function (doc) { this.add(doc); }, this); });
document.write("<ul id=hits>" + index.search("{}").map(function (r) {
  return "<li>" + r.ref + "</li>"; }).join("") + "</ul>");
</script>"""
)


@pytest.fixture
def served_manual(deployed_manual: Path, web_server: tuple[Path, WebServer]) -> WebServer:
    root, server = web_server
    shutil.copytree(deployed_manual, root, dirs_exist_ok=True)
    (root / "phone.html").write_text(PHONE.format("/docs/getting-started/"))
    (root / "search.html").write_text(SEARCH.replace("{}", "rollback"))
    return server


@pytest.mark.slow
def test_the_manual_renders_navigates_and_searches_in_a_browser(
    served_manual: WebServer,
    chromium: Chromium,
    tmp_path_factory: pytest.TempPathFactory,
    web_server: tuple[Path, WebServer],
) -> None:
    root = web_server[0]
    shots = tmp_path_factory.getbasetemp() / "manual-screenshots"
    shots.mkdir(exist_ok=True)
    landing = chromium.dump_dom(f"{served_manual.url}/", 1280, 900)
    assert "Commit the docs." in landing and 'href="docs/"' in landing
    reference = chromium.dump_dom(f"{served_manual.url}/docs/reference/configuration/", 1280, 900)
    assert "<h1" in reference and "keep_releases" in reference
    for title in ("Getting started", "Concepts", "Troubleshooting", "Configuration reference"):
        assert title in reference  # the navigation bar
    assert 'id="mkdocs_search_modal"' in reference and "search/main.js" in reference
    hits = re.findall(r"<li>([^<]*)</li>", chromium.dump_dom(f"{served_manual.url}/search.html", 800, 600))
    assert "getting-started/" in hits and "concepts/#history" in " ".join(hits)
    chromium.screenshot(f"{served_manual.url}/", shots / "landing.png", 1280, 900)
    chromium.screenshot(
        f"{served_manual.url}/docs/reference/configuration/", shots / "reference.png", 1280, 900
    )
    chromium.screenshot(f"{served_manual.url}/phone.html", shots / "phone.png", 500, 844)
    missing = [
        path for path in served_manual.requests if not (root / path.split("?")[0].lstrip("/")).exists()
    ]
    assert not missing, missing  # no broken image, script or style
    assert any(".webp" in p or ".avif" in p for p in served_manual.requests)  # a variant was shown
    for shot in ("landing.png", "reference.png", "phone.png"):
        assert (shots / shot).stat().st_size > 10_000
