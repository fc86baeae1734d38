"""``sitedeploy compare`` (issue 26, item 3): one commit built with two engines, sandboxed,
nothing published, and the differences a reader would see reported — as a terminal summary,
JSON and a self-contained HTML report — with exit 0 when equivalent and 1 when not."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sitedeploy.cli.main import cli
from tests.fixtures.browser import Chromium
from tests.fixtures.git import ContentRepo, write_config

DOCS = '[[sites]]\nname = "docs"\npath = "sites/docs"\n'
SCREENSHOT = Path(__file__).parent.parent / "sites/docs/docs/img/compare-report.png"
# Engine-dependent on purpose: under ProperDocs (which aliases ``mkdocs`` to itself) the
# guide says so, the glossary page is missing, and the guide's heading has another name.
HOOK = """
import sys
from mkdocs.structure.files import File

def _properdocs():
    return "properdocs" in sys.modules

def on_files(files, config):
    if not _properdocs():
        files.append(File.generated(config, "glossary.md", content="# Glossary\\n\\nTerms.\\n"))
    return files

def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "guide.md":
        engine = "ProperDocs" if _properdocs() else "MkDocs"
        heading = "Setup" if _properdocs() else "Install"
        return markdown + f"\\n\\nEngine: {engine}.\\n\\n## {heading}\\n\\nSteps.\\n"
    return markdown
"""


def sd(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def compare_json(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = sd(config, "--json", "compare", *args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def ops(tmp_path: Path, content_repo: ContentRepo) -> Path:
    folder = tmp_path / "ops"
    folder.mkdir()
    return write_config(folder, content_repo.path, sites=DOCS)


def test_mkdocs_and_properdocs_build_the_example_site_the_same(ops: Path, content_repo: ContentRepo) -> None:
    content_repo.write("sites/docs/mkdocs.yml", "site_name: Test Docs\ntheme:\n  name: mkdocs\n")
    content_repo.commit("theme named")
    assert sd(ops, "deploy").exit_code == 0
    live = content_repo.git("rev-parse", "HEAD")
    content_repo.write("sites/docs/docs/index.md", "# Not deployed yet\n")
    content_repo.commit("a newer commit: compare takes the live one")
    before = sorted(p.name for p in (ops.parent / "public").iterdir())
    code, data = compare_json(ops, "--engines", "mkdocs,properdocs")
    assert code == 0 and data["equivalent"] is True, json.dumps(data["sites"], indent=1)[:3000]
    assert (data["commit"], data["commit_from"]) == (live, "live on 'local'")
    site = data["sites"][0]
    assert site["differences"] == 0 and site["engines"] == ["mkdocs", "properdocs"]
    assert site["search"]["mkdocs"]["pages"] == site["search"]["properdocs"]["pages"] == 2
    assert sorted(p.name for p in (ops.parent / "public").iterdir()) == before  # nothing published
    assert Path(data["report"]).is_file()


def test_pages_that_differ_in_a_known_way_are_reported_exactly(
    ops: Path, content_repo: ContentRepo, tmp_path: Path
) -> None:
    content_repo.write("sites/docs/hooks.py", HOOK)
    content_repo.write(
        "sites/docs/mkdocs.yml",
        "site_name: Test Docs\ntheme:\n  name: mkdocs\nhooks:\n  - hooks.py\n"
        "nav:\n  - Home: index.md\n  - Guide: guide.md\n",
    )
    content_repo.write("sites/docs/docs/index.md", "# Home\n\nSee [install](guide.md#install).\n")
    content_repo.commit("an engine-dependent hook")
    report = tmp_path / "report"
    code, data = compare_json(
        ops, "--engines", "mkdocs,properdocs", "--commit", "main", "--report", str(report)
    )
    assert code == 1 and data["equivalent"] is False
    site = data["sites"][0]
    assert site["only_in"] == {"mkdocs": ["glossary/index.html"], "properdocs": []}
    assert [(p["page"], p["diff"]) for p in site["text_differs"]] == [
        (
            "guide/index.html",
            ["@@ -7,4 +7,4 @@", " 2", "-Engine: MkDocs.", "-Install", "+Engine: ProperDocs.", "+Setup",
             " Steps."],
        )
    ]  # fmt: skip
    assert site["links"] == {"mkdocs": ["index.html -> guide/index.html#install"], "properdocs": []}
    assert site["search"]["mkdocs"]["pages_only_here"] == ["glossary/"]
    assert site["search"]["mkdocs"]["headings_only_here"] == ["glossary/#glossary", "guide/#install"]
    assert site["search"]["properdocs"]["headings_only_here"] == ["guide/#setup"]
    assert site["nav"] == [] and site["plugins_ignored"] == {"mkdocs": [], "properdocs": []}
    assert site["differences"] == 1 + 1 + 1 + 1 + 2 + 1
    code, data = compare_json(ops, "--engines", "mkdocs,properdocs", "--commit", "main", "--tolerance", "7")
    assert code == 0 and data["equivalent"] is True
    html = (report / "compare.html").read_text()
    assert "Engine: ProperDocs." in html and "<script" not in html and "http" not in html.split("</style>")[0]


@pytest.mark.slow
def test_material_to_zensical_names_the_plugin_zensical_ignores(
    ops: Path, content_repo: ContentRepo, tmp_path: Path, chromium: Chromium
) -> None:
    content_repo.write(
        "sites/docs/mkdocs.yml",
        "site_name: Test Docs\ntheme:\n  name: material\nplugins:\n  - search\n  - tags\n"
        "  - material/typeset\nnav:\n  - Home: index.md\n  - Guide: guide.md\n  - Tagged: tagged.md\n",
    )
    content_repo.write(
        "sites/docs/docs/tagged.md",
        "---\ntags:\n  - alpha\n---\n# Tagged\n\n## Part\n\nA `<script>alert(1)</script>` line.\n",
    )
    content_repo.commit("Material with search, tags and typeset")
    report = tmp_path / "report"
    result = sd(ops, "compare", "--engine", "zensical", "--commit", "main", "--report", str(report))
    assert result.exit_code == 1, result.output
    assert "material/typeset" in result.output and "mkdocs vs zensical" in result.output
    code, data = compare_json(ops, "--engine", "zensical", "--commit", "main", "--report", str(report))
    site = data["sites"][0]
    assert code == 1 and site["differences"] == 3  # the title, the tags' place, the ignored plugin
    assert site["plugins_ignored"] == {"mkdocs": [], "zensical": ["material/typeset"]}
    assert site["search"]["mkdocs"]["file"] == "search/search_index.json"
    assert site["search"]["zensical"]["file"] == "search.json"
    assert site["search"]["mkdocs"]["pages"] == site["search"]["zensical"]["pages"] == 3
    assert site["only_in"] == {"mkdocs": [], "zensical": []}
    assert all(site["seconds"][e] > 0 for e in ("mkdocs", "zensical"))
    html = (report / "compare.html").read_text()
    assert "material/typeset" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shot = tmp_path / "compare-report.png"
    chromium.screenshot((report / "compare.html").as_uri(), shot, 1280, 1600)
    assert shot.stat().st_size > 20_000
    if os.environ.get("SITEDEPLOY_UPDATE_SCREENSHOTS") or not SCREENSHOT.exists():
        shutil.copyfile(shot, SCREENSHOT)
