"""``_redirects`` and ``_headers``: parsed and checked at build, one line per mistake naming the
file and line, and carried into the release (``.well-known/sitedeploy/``) for the servers."""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sitedeploy.errors import RulesError
from sitedeploy.redirects.collect import collect_site, mkdocs_redirect_maps
from sitedeploy.redirects.headers import parse_headers
from sitedeploy.redirects.rules import parse_redirects
from sitedeploy.redirects.ruleset import RULES_FILE, RuleSet, check, combine
from tests.fixtures.git import ContentRepo, write_config
from tests.fixtures.s3 import S3Server

ONE_STATIC_SITE = '[[sites]]\nname = "web"\npath = "sites/web"\nmount = "/"\n'


def rules_of(text: str, mount: str = "/") -> RuleSet:
    return combine([RuleSet(tuple(parse_redirects(text, "_redirects", mount)))])


def test_netlify_syntax_statuses_splats_and_placeholders_resolve_under_the_mount() -> None:
    rules = rules_of(
        "# moved pages\n/old/ /new/\n/blog/* /news/:splat 302\n/v1/:lang/guide/ /guide/:lang/ 308!\n"
        "/gone 410\n/chat https://chat.example.com/#room  # comment\n",
        "/docs/",
    )
    assert [r.status for r in rules.redirects] == [301, 302, 308, 410, 301]
    assert rules.resolve("/docs/old")[1] == "/docs/new/"  # type: ignore[index]
    assert rules.resolve("/docs/blog/2024/post/")[1] == "/docs/news/2024/post/"  # type: ignore[index]
    assert rules.resolve("/docs/v1/fr/guide/")[1] == "/docs/guide/fr/"  # type: ignore[index]
    assert rules.resolve("/docs/chat/")[1] == "https://chat.example.com/#room"  # type: ignore[index]
    assert rules.resolve("/docs/elsewhere/") is None
    files = {"docs/new/index.html", "docs/news/a.html", "docs/guide/fr/index.html"}
    check(rules, files)  # targets exist, no loop


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("/a/../../etc/passwd /x/", "'..' segment"),
        ('/a";return{} /b/', "not a plain URL path"),
        ("/a /b/ 200", "not one of 301"),
        ("/a /$host/", "not a plain URL path"),
        ("/a http://example.com/", "plain http"),
        ("/a/*/b /x/", "last segment"),
        ("/a/:x /b/:y", "':y'"),
        ("/a /b c d", "expected 'from to [status]'"),
        ("/a\x1b[31m /b/", "not a plain URL path"),
        ("/a%zz /b/", "not a plain URL path"),
    ],
)
def test_a_hostile_or_wrong_line_is_refused_naming_file_and_line(line: str, said: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_redirects(f"# fine\n/ok/ /x/\n{line}\n", "sites/web/_redirects", "/")
    message = caught.value.message
    assert message.startswith("sites/web/_redirects:3: ") and said in message
    assert "\n" not in message and "\x1b" not in message


@pytest.mark.parametrize(
    ("text", "files", "said"),
    [
        ("/a/ /b/\n/a /c/\n", {"b/index.html", "c/index.html"}, "already has a rule at _redirects:1"),
        ("/a/ /b/\n/b/ /a/\n", {"a/index.html", "b/index.html"}, "loop"),
        ("/docs/* /docs/:splat\n", {"docs/index.html"}, "loop"),
        ("/a/ /missing/\n", {"b/index.html"}, "is not in the release"),
    ],
)
def test_duplicates_loops_and_missing_targets_are_refused(text: str, files: set[str], said: str) -> None:
    with pytest.raises(RulesError, match=said):
        check(rules_of(text), files)


def test_ten_thousand_rules_and_a_five_megabyte_file_are_refused(tmp_path: Path) -> None:
    many = "".join(f"/p{i} /\n" for i in range(10_001))
    with pytest.raises(RulesError, match="more than 10000 rules"):
        parse_redirects(many, "_redirects", "/")
    out, src = tmp_path / "out", tmp_path / "src"
    out.mkdir(), src.mkdir()
    (out / "_redirects").write_bytes(b"/a /b\n" * (5 * 1024**2 // 6))
    with pytest.raises(RulesError, match="over 1 MB"):
        collect_site(out, src, "/", "web", "sites/web")


def test_a_rules_file_that_is_a_link_is_refused_never_followed(tmp_path: Path) -> None:
    out, src = tmp_path / "out", tmp_path / "src"
    out.mkdir(), src.mkdir()
    (tmp_path / "secret").write_text("/a https://attacker.example/\n")
    os.symlink(tmp_path / "secret", out / "_headers")
    with pytest.raises(Exception, match="symlink") as caught:
        collect_site(out, src, "/", "web", "sites/web")
    assert "never follows a link" in str(caught.value)


def test_headers_blocks_and_refused_names() -> None:
    text = "/*\n  X-Frame-Options: DENY\n/dl/*\n  Content-Disposition: attachment\n"
    rules = parse_headers(text, "_h", "/")
    merged = combine([RuleSet((), tuple(rules))])
    assert merged.headers_for("/dl/a.zip")["Content-Disposition"] == "attachment"
    assert merged.headers_for("/x.0123abcd.css")["Cache-Control"].endswith("immutable")
    assert merged.headers_for("/guide/")["Cache-Control"] == "public, max-age=0, must-revalidate"
    for bad, said in [
        ("Set-Cookie: a=b", "may not be set"),
        ("X-Accel-Redirect: /etc", "may not"),
        ('X-A: a"b', "quote"),
        ("Nope", "expected 'Name: value'"),
    ]:
        with pytest.raises(RulesError, match=said) as caught:
            parse_headers(f"/*\n  {bad}\n", "sites/web/_headers", "/")
        assert caught.value.message.startswith("sites/web/_headers:2: ")


def test_mkdocs_redirects_maps_become_rules(tmp_path: Path) -> None:
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: x\nplugins:\n  - search\n  - redirects:\n      redirect_maps:\n"
        "        old.md: guide/new.md\n        a/index.md: b.md#part\n        chat.md: https://chat.example.com/\n"
        "hooks: !!python/name:os.system\n"
    )
    rules = mkdocs_redirect_maps(tmp_path, "/docs/", "sites/docs")
    assert [(r.source, r.target) for r in rules] == [
        ("/docs/old/", "/docs/guide/new/"),
        ("/docs/a/", "/docs/b/#part"),
        ("/docs/chat/", "https://chat.example.com/"),
    ]


# --- through a real deploy ------------------------------------------------------------------


def sd(toml: Path, *args: str) -> Result:
    from sitedeploy.cli.main import cli

    return CliRunner().invoke(cli, ["--config", str(toml), *args])


@pytest.fixture
def web(tmp_path: Path) -> tuple[ContentRepo, Path]:
    repo = ContentRepo(tmp_path / "content")
    for page in ("index", "new/index", "404"):
        repo.write(f"sites/web/{page}.html", f"<!doctype html><title>{page}</title><h1>{page}</h1>\n")
    repo.write("sites/web/_redirects", "/old/ /new/\n/blog/* /new/ 302\n")
    repo.write("sites/web/_headers", "/*\n  X-Frame-Options: DENY\n")
    repo.commit("site with rules")
    ops = tmp_path / "ops"
    ops.mkdir()
    return repo, write_config(ops, repo.path, sites=ONE_STATIC_SITE)


def test_a_deploy_carries_the_rules_into_the_release_and_keeps_the_files_private(
    web: tuple[ContentRepo, Path],
) -> None:
    _, toml = web
    result = sd(toml, "deploy")
    assert result.exit_code == 0, result.output
    live = toml.parent / "public" / "current"
    assert not (live / "_redirects").exists() and not (live / "_headers").exists()
    rules = RuleSet.from_json((live / RULES_FILE).read_bytes())
    assert rules.resolve("/old")[1] == "/new/"  # type: ignore[index]
    assert rules.not_found == (("/", "/404.html"),)
    assert "return 301" in (live / ".well-known/sitedeploy/nginx/server.conf").read_text()
    assert "function handler(event)" in (live / ".well-known/sitedeploy/cloudfront-function.js").read_text()
    assert json.loads((live / ".well-known/sitedeploy.json").read_text())["commit"]


def test_a_bad_rule_fails_the_deploy_in_one_line_and_leaves_the_live_site(
    web: tuple[ContentRepo, Path],
) -> None:
    repo, toml = web
    assert sd(toml, "deploy").exit_code == 0
    live = (toml.parent / "public" / "current").resolve()
    repo.write("sites/web/_redirects", "/old/ /new/\n/new/ /old/\n")
    repo.commit("a loop")
    result = sd(toml, "deploy")
    assert result.exit_code != 0
    assert "sites/web/_redirects:1: '/old/' redirects in a loop" in result.output
    assert "Traceback" not in result.output
    assert (toml.parent / "public" / "current").resolve() == live


def test_serve_answers_redirects_headers_and_the_404_page_as_nginx_does(
    web: tuple[ContentRepo, Path],
) -> None:
    from sitedeploy.cli.serve import Preview, start
    from tests.fixtures.nginx import free_port

    _, toml = web
    assert sd(toml, "deploy").exit_code == 0
    preview = Preview("local", toml.parent / "public" / "current", free_port())
    servers = start([preview], "127.0.0.1")
    try:

        def get(path: str) -> tuple[int, str, http.client.HTTPResponse, bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", preview.port, timeout=10)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            conn.close()
            return response.status, response.getheader("Location") or "", response, body

        assert get("/old")[:2] == (301, "/new/")
        assert get("/blog/any/thing")[:2] == (302, "/new/")
        status, _, page, _ = get("/new/")
        assert status == 200 and page.getheader("X-Frame-Options") == "DENY"
        assert page.getheader("Cache-Control") == "public, max-age=0, must-revalidate"
        status, _, _, body = get("/no/such/")
        assert status == 404 and b"<h1>404</h1>" in body
        assert get("/.well-known/sitedeploy/rules.json")[0] == 404
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_s3_refuses_headers_it_cannot_store_and_says_which_rules_need_cloudfront(
    web: tuple[ContentRepo, Path], s3_server: S3Server, s3_bucket: str
) -> None:
    repo, toml = web
    table = f'\n[targets.bucket]\ntype = "s3"\nbucket = "{s3_bucket}"\nendpoint_url = "{s3_server.url}"\n'
    toml.write_text(toml.read_text() + table + 'region = "us-east-1"\n')
    refused = sd(toml, "deploy", "--target", "bucket")
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "sites/web/_headers:1: target 'bucket' is S3, which cannot send X-Frame-Options" in refused.output
    assert "CloudFront response headers policy" in refused.output
    repo.write("sites/web/_headers", "/*\n  Content-Language: de\n")
    repo.commit("headers S3 can store")
    result = sd(toml, "deploy", "--target", "bucket")
    assert result.exit_code == 0, result.output
    assert "1 redirect rule(s) are patterns or not 301" in result.output  # /blog/* 302
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="old/index.html")
    assert head["WebsiteRedirectLocation"] == "/new/" and head["ContentLength"] == 0
    assert head["ContentLanguage"] == "de"
