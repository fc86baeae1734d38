"""A release's ``_redirects`` and ``_headers`` on the S3 target (the moto server): redirect
objects and object headers go through the transaction like any other key, so rollback, the
run after a crash and ``verify`` treat them alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sitedeploy.config import S3TargetConfig
from sitedeploy.errors import PlanRefused, RulesError
from sitedeploy.redirects.headers import parse_headers
from sitedeploy.redirects.rules import parse_redirects
from sitedeploy.redirects.ruleset import RULES_FILE, RuleSet
from sitedeploy.release import records as state
from sitedeploy.targets.s3.site_rules import EMPTY, redirect_key
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.s3 import S3Server, bucket_tree, publish_dir, rollback_target, write_tree
from tests.test_s3_recovery import Crash

ConfigFactory = Callable[..., S3TargetConfig]
PAGE = "<!doctype html><title>{0}</title><h1>{0}</h1>"


def before() -> dict[str, str | bytes]:
    return {"index.html": PAGE.format("home"), "old/index.html": PAGE.format("old"), "a.css": "a"}


def renamed(redirects: str = "/old/ /new/\n", headers: str = "") -> dict[str, str | bytes]:
    """``old/`` renamed to ``new/`` with one ``_redirects`` line (as a build leaves it)."""
    rules = RuleSet(
        tuple(parse_redirects(redirects, "_redirects", "/")),
        tuple(parse_headers(headers, "_headers", "/")),
    )
    files: dict[str, str | bytes] = {"index.html": PAGE.format("home"), "new/index.html": PAGE.format("new")}
    files["a.css"] = "a"
    files["files/guide.pdf"] = b"%PDF-1.4"
    files[RULES_FILE] = rules.to_json()
    return files


def verified(target: S3Target) -> None:
    live = target.live_release()
    manifest = state.read_manifest(target, live) if live else None
    assert live is not None and manifest is not None
    [drift] = target.verify(live, manifest)
    assert drift.clean, drift.summary()


def head(server: S3Server, bucket: str, key: str) -> dict[str, Any]:
    return dict(server.client().head_object(Bucket=bucket, Key=key))


def test_a_rename_with_one_rule_leaves_a_redirect_object_and_rollback_puts_the_page_back(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config()
    target = S3Target("s3", cfg)
    publish_dir(target, cfg, write_tree(tmp_path / "v1", before()))
    headers = (
        "/files/*\n  Content-Disposition: attachment\n  Content-Language: en\n"
        "  Expires: Thu, 01 Dec 2094 16:00:00 GMT\n/new/\n  Cache-Control: no-cache\n"
    )
    publish_dir(target, cfg, write_tree(tmp_path / "v2", renamed(headers=headers)))
    moved = head(s3_server, s3_bucket, "old/index.html")
    assert moved["WebsiteRedirectLocation"] == "/new/" and moved["ContentLength"] == 0
    pdf = head(s3_server, s3_bucket, "files/guide.pdf")
    assert pdf["ContentDisposition"] == "attachment" and pdf["ContentLanguage"] == "en"
    assert pdf["ExpiresString"] == "Wed, 01 Dec 2094 16:00:00 GMT"  # as S3 gives it back
    assert head(s3_server, s3_bucket, "new/index.html")["CacheControl"] == "no-cache"
    assert "WebsiteRedirectLocation" not in head(s3_server, s3_bucket, "new/index.html")
    verified(target)
    recorded = target.read_state().objects["old/index.html"]
    assert recorded.sha256 == EMPTY and recorded.headers.redirect == "/new/"

    fresh = S3Target("s3", cfg)  # another process: everything from the bucket
    rollback_target(fresh, cfg)
    page = head(s3_server, s3_bucket, "old/index.html")
    assert "WebsiteRedirectLocation" not in page
    assert bucket_tree(s3_server.client(), s3_bucket)["old/index.html"] == PAGE.format("old").encode()
    verified(fresh)
    publish_dir(fresh, cfg, write_tree(tmp_path / "v3", renamed(headers=headers)))
    assert head(s3_server, s3_bucket, "old/index.html")["WebsiteRedirectLocation"] == "/new/"
    verified(fresh)
    publish_dir(fresh, cfg, write_tree(tmp_path / "v4", renamed(headers=headers)))  # nothing changed
    assert fresh.read_state().objects["old/index.html"].headers.redirect == "/new/"


def test_a_redirect_object_changed_behind_our_back_is_drift_and_repaired(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config()
    target = S3Target("s3", cfg)
    publish_dir(target, cfg, write_tree(tmp_path / "v1", renamed()))
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="old/index.html", Body=b"", WebsiteRedirectLocation="/evil/")
    live = target.live_release() or ""
    manifest = state.read_manifest(target, live)
    assert manifest is not None
    [drift] = target.verify(live, manifest)
    assert drift.changed == ["old/index.html"]
    target.repair(live, manifest, tmp_path / "v1", [drift])
    assert head(s3_server, s3_bucket, "old/index.html")["WebsiteRedirectLocation"] == "/new/"
    verified(target)


def test_a_deploy_that_died_writing_redirects_converges_on_the_next_run(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(max_concurrency=1)
    publish_dir(S3Target("s3", cfg), cfg, write_tree(tmp_path / "v1", before()))
    dying = S3Target("s3", cfg)

    def before_the_commit(request: object, **kwargs: object) -> None:
        if str(getattr(request, "url", "")).endswith("/.sitedeploy/live.json"):
            raise Crash("every key written, the state not")

    dying.s3.meta.events.register("before-send.s3.PutObject", before_the_commit)
    with pytest.raises(Crash):
        publish_dir(dying, cfg, write_tree(tmp_path / "v2", renamed()))
    assert head(s3_server, s3_bucket, "old/index.html")["WebsiteRedirectLocation"] == "/new/"
    nxt = S3Target("s3", cfg)
    publish_dir(nxt, cfg, write_tree(tmp_path / "v1", before()))  # the old site again, no rules
    assert "WebsiteRedirectLocation" not in head(s3_server, s3_bucket, "old/index.html")
    assert bucket_tree(s3_server.client(), s3_bucket)["old/index.html"] == PAGE.format("old").encode()
    verified(nxt)


def test_headers_s3_cannot_store_are_refused_before_anything_is_written(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config()
    target = S3Target("s3", cfg)
    refused = r"_headers:1: .*cannot send X-Frame-Options.*response headers policy"
    with pytest.raises(RulesError, match=refused):
        publish_dir(target, cfg, write_tree(tmp_path / "v", renamed(headers="/*\n  X-Frame-Options: DENY\n")))
    assert bucket_tree(s3_server.client(), s3_bucket) == {}


@pytest.mark.parametrize("mode", ["warn", "refuse"])
def test_removed_pages_are_caught_on_s3(
    tmp_path: Path, s3_config: ConfigFactory, s3_server: S3Server, s3_bucket: str, mode: str
) -> None:
    cfg = s3_config(removed_pages=mode)
    target = S3Target("s3", cfg)
    publish_dir(target, cfg, write_tree(tmp_path / "v1", before()))
    gone = renamed(redirects="")
    if mode == "refuse":
        with pytest.raises(PlanRefused, match="old/"):
            publish_dir(target, cfg, write_tree(tmp_path / "v2", gone))
        assert bucket_tree(s3_server.client(), s3_bucket)["old/index.html"] == PAGE.format("old").encode()
    else:
        result = publish_dir(target, cfg, write_tree(tmp_path / "v2", gone))
        assert result.outcome == "deployed"
    publish_dir(target, cfg, write_tree(tmp_path / "v3", renamed()))  # with the rule: no question


def test_redirect_keys_are_what_the_website_endpoint_reads() -> None:
    assert redirect_key("/old/") == "old/index.html"
    assert redirect_key("/old") == "old/index.html"
    assert redirect_key("/old.html") == "old.html"
    assert redirect_key("/docs/v1.2/") == "docs/v1.2/index.html"
    assert redirect_key("/") == "index.html"
