"""Versions on S3 (moto's threaded server): each version and each alias is its own prefix; an
alias holds copies, moved by a deploy to its prefix while readers keep getting whole pages."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sitedeploy.cli.main import cli
from sitedeploy.config import load
from sitedeploy.release.records import read_manifest
from sitedeploy.versions import api
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import REGION, S3Server

SITE = '[[sites]]\nname = "web"\npath = "sites/web"\nmount = "/"\n'


def sd(toml: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--config", str(toml), *args])
    assert result.exit_code == 0, result.output
    return result


def tag_site(repo: ContentRepo, tag: str) -> None:
    repo.write("sites/web/index.html", f"<!doctype html><title>{tag}</title><h1>home {tag}</h1></html>\n")
    repo.write("sites/web/page/index.html", f"<!doctype html><p>page {tag}</p></html>\n")
    repo.write("sites/web/style.css", f"/* {tag} */\n")
    repo.commit(f"site {tag}")
    repo.git("tag", tag)


@pytest.fixture
def s3_toml(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> Path:
    repo = ContentRepo(tmp_path / "content")
    for tag in ("v1.0.0", "v1.1.0", "v2.0.0-beta.1"):
        tag_site(repo, tag)
    toml = tmp_path / "deploy.toml"
    toml.write_text(
        f'[source]\nrepo = "{repo.path}"\n\n{SITE}\n[images]\nenabled = false\n\n'
        f'[targets.docs]\ntype = "s3"\nbucket = "{s3_bucket}"\nendpoint_url = "{s3_server.url}"\n'
        f'region = "{REGION}"\nprefix = "site"\nretain_releases = 1\n'
        'versions = "tag:v*"\naliases = { latest = "newest", stable = "newest-stable" }\n'
    )
    return toml


def get(client: Any, bucket: str, key: str) -> str:
    return client.get_object(Bucket=bucket, Key=f"site/{key}")["Body"].read().decode()


def test_versions_and_aliases_on_s3_and_an_alias_moved_under_readers(
    s3_toml: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    sd(s3_toml, "versions", "deploy")
    s3 = s3_server.client()
    assert "home v1.0.0" in get(s3, s3_bucket, "1.0/index.html")
    assert "home v2.0.0-beta.1" in get(s3, s3_bucket, "latest/index.html")
    assert "page v1.1.0" in get(s3, s3_bucket, "stable/page/index.html")
    assert '"aliases": [\n      "stable"' in get(s3, s3_bucket, "versions.json")
    assert "url=latest/" in get(s3, s3_bucket, "index.html")
    verified = json.loads(sd(s3_toml, "--json", "verify").stdout)[0]  # the lines are not drift
    assert all(not (d["extra"] or d["missing"] or d["changed"]) for d in verified["drift"]), verified

    sd(s3_toml, "versions", "alias", "lts", "1.0")
    stop, errors = threading.Event(), []

    def read() -> None:
        reader = s3_server.client()
        while not stop.is_set():
            for key in ("lts/index.html", "lts/page/index.html"):
                try:
                    text = get(reader, s3_bucket, key)
                except Exception as exc:  # a 404 or any error is what must not happen
                    errors.append(f"{key}: {exc}")
                    continue
                if "</html>" not in text or sum(v in text for v in ("v1.0.0", "v1.1.0")) != 1:
                    errors.append(f"{key}: {text!r}")

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    config = load(s3_toml)
    try:
        for version in ("1.1", "1.0", "1.1"):
            api.set_alias(config, None, "lts", version)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert "page v1.1.0" in get(s3, s3_bucket, "lts/page/index.html")

    sd(s3_toml, "versions", "unalias", "lts")
    sd(s3_toml, "versions", "delete", "1.0")
    left = s3.list_objects_v2(Bucket=s3_bucket, Prefix="site/1.0/").get("KeyCount", 0)
    gone = s3.list_objects_v2(Bucket=s3_bucket, Prefix="site/lts/").get("KeyCount", 0)
    assert left == 0 and gone == 0
    assert '"1.0"' not in get(s3, s3_bucket, "versions.json")


def test_a_preview_on_s3_is_created_updated_and_removed_with_its_branch(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    repo = ContentRepo(tmp_path / "content")
    tag_site(repo, "main")
    repo.git("checkout", "-q", "-b", "docs/Typos")
    tag_site(repo, "draft")
    toml = tmp_path / "deploy.toml"
    toml.write_text(
        f'[source]\nrepo = "{repo.path}"\n\n{SITE}\n[images]\nenabled = false\n\n'
        f'[targets.docs]\ntype = "s3"\nbucket = "{s3_bucket}"\nendpoint_url = "{s3_server.url}"\n'
        f'region = "{REGION}"\nprefix = "site"\nretain_releases = 1\npreview_max_age_days = 0\n'
        'previews = "branch:docs/*"\npreview_url = "https://preview.example.com/{slug}/"\n'
    )
    out = sd(toml, "previews", "deploy").output
    assert "https://preview.example.com/br-docs-typos/" in out
    s3 = s3_server.client()
    page = get(s3, s3_bucket, "previews/br-docs-typos/index.html")
    assert "home draft" in page and '<meta name="robots" content="noindex, nofollow">' in page
    assert "Disallow: /" in get(s3, s3_bucket, "previews/robots.txt")

    tag_site(repo, "final")
    sd(toml, "previews", "deploy")
    assert "home final" in get(s3, s3_bucket, "previews/br-docs-typos/index.html")

    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "docs/Typos")
    sd(toml, "previews", "deploy")
    left = s3.list_objects_v2(Bucket=s3_bucket, Prefix="site/previews/br-docs-typos/").get("KeyCount", 0)
    assert left == 0
    listed = json.loads(sd(toml, "--json", "previews", "list").stdout)
    assert listed == []


def test_a_versions_redirects_on_s3_point_inside_its_own_prefix(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    repo = ContentRepo(tmp_path / "content")
    repo.write("sites/web/_redirects", "/old/ /page/\n/chat https://chat.example.com/\n")
    tag_site(repo, "v1.0.0")
    toml = tmp_path / "deploy.toml"
    toml.write_text(
        f'[source]\nrepo = "{repo.path}"\n\n{SITE}\n[images]\nenabled = false\n\n'
        f'[targets.docs]\ntype = "s3"\nbucket = "{s3_bucket}"\nendpoint_url = "{s3_server.url}"\n'
        f'region = "{REGION}"\nprefix = "site"\nversions = "tag:v*"\naliases = {{ latest = "newest" }}\n'
    )
    sd(toml, "versions", "deploy")
    s3 = s3_server.client()

    def location(key: str) -> str:
        return str(s3.head_object(Bucket=s3_bucket, Key=f"site/{key}")["WebsiteRedirectLocation"])

    assert location("1.0/old/index.html") == "/1.0/page/"
    assert location("latest/old/index.html") == "/latest/page/"  # the alias's copies: its own prefix
    assert location("1.0/chat/index.html") == "https://chat.example.com/"
    with api.families(load(toml), None)[0].line("1.0") as line:  # recorded alike: no drift
        live = line.live_release()
        manifest = read_manifest(line, live) if live else None
        assert live and manifest and all(d.clean for d in line.verify(live, manifest))
    tag_site(repo, "v1.1.0")  # the same rules: the alias moves without fetching them again
    sd(toml, "versions", "deploy")
    assert "page v1.1.0" in get(s3, s3_bucket, "latest/page/index.html")
    assert location("latest/old/index.html") == "/latest/page/"
    with api.families(load(toml), None)[0].line("latest") as alias:
        assert alias.site_rules(alias.live_release() or "").redirects["old/index.html"] == "/latest/page/"
