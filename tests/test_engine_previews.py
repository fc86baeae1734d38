"""Engine previews (issue 26, item 4): ``previews = ["engine:properdocs"]`` publishes the
followed branch built with another engine at ``en-<engine>/``, a slug no branch or request
can take, beside the target's own site built with its usual engine."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sitedeploy.cli.main import cli
from sitedeploy.versions import previews as pv
from tests.fixtures.git import ContentRepo, write_config


def test_engine_slugs_have_a_namespace_of_their_own() -> None:
    refs = {"refs/heads/main": "1" * 40, "refs/heads/en-zensical": "2" * 40, "refs/pull/3/head": "3" * 40}
    matched = pv.match_previews(refs, ("branch:*", "engine:zensical", "pull:*"), "main")
    assert matched.wanted == {
        "br-en-zensical": ("en-zensical", "2" * 40),
        "br-main": ("main", "1" * 40),
        "en-zensical": ("engine:zensical@main", "1" * 40),
        "pr-3": ("pull/3", "3" * 40),
    }
    assert pv.preview_trust("engine:zensical@main") == "branch-preview"
    assert pv.match_previews(refs, ("engine:zensical",), "gone").wanted == {}


def test_an_engine_preview_publishes_the_branch_built_with_the_other_engine(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    content_repo.write("sites/docs/mkdocs.yml", "site_name: Test Docs\ntheme:\n  name: mkdocs\n")
    content_repo.commit("theme named")
    ops = tmp_path / "ops"
    ops.mkdir()
    sites = '[[sites]]\nname = "docs"\npath = "sites/docs"\n'
    toml = write_config(ops, content_repo.path, sites=sites, extra='previews = ["engine:properdocs"]\n')
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(toml), "deploy"]).exit_code == 0
    result = runner.invoke(cli, ["--config", str(toml), "previews", "deploy"])
    assert result.exit_code == 0, result.output
    assert "en-properdocs" in result.output
    public = ops / "public"
    preview = (public / "previews/current/en-properdocs/index.html").read_text()
    live = (public / "current/index.html").read_text()
    assert (
        "ProperDocs version : ProperDocs 1.6.7" in preview
        and '<meta name="robots" content="noindex, nofollow">' in preview
    )
    assert "MkDocs version : 1.6.1" in live and "noindex" not in live  # the site itself: unchanged engine
    bad = toml.read_text().replace('"engine:properdocs"', '"engine:hugo"')
    toml.write_text(bad)
    refused = runner.invoke(cli, ["--config", str(toml), "previews", "list"])
    assert refused.exit_code == 2 and 'previews: "engine:hugo" names no engine' in refused.stderr
