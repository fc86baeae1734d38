"""The CloudFront Function a release carries, run in Node: for every URI it answers what the
Python resolver (the one nginx's config and ``sitedeploy serve`` follow) answers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from sitedeploy.redirects.cloudfront import MAX_BYTES, function_code
from sitedeploy.redirects.rules import parse_redirects
from sitedeploy.redirects.ruleset import RuleSet, combine

NODE = shutil.which("node") or "node"  # scripts/test.sh installs it (Debian: nodejs)

HARNESS = """
const fs = require("fs");
const vm = require("vm");
const context = {};
vm.createContext(context);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), context);
const uris = JSON.parse(fs.readFileSync(0, "utf8"));
const out = uris.map((uri) => {
  const request = { method: "GET", uri: uri, querystring: {}, headers: {} };
  const answer = context.handler({ version: "1.0", context: {}, viewer: {}, request: request });
  if (answer === request) return null;
  const location = answer.headers && answer.headers.location ? answer.headers.location.value : "";
  return [answer.statusCode, location, answer.statusDescription];
});
process.stdout.write(JSON.stringify(out));
"""

ROOT_RULES = """
/old/             /new/
/old.html         /new/
/moved            https://example.com/elsewhere/
/blog/*           /news/:splat            302
/v1/:lang/guide/  /guide/:lang/           308
/temp/            /new/                   307
/retired/         /                       410
/a.b(c)/*         /new/                   301
/x/:one/:two/*    /y/:two/:one/:splat     302
"""
DOCS_RULES = """
/old/             /guide/
/api/*            /reference/:splat
"""
URIS = [
    "/old", "/old/", "/old.html", "/moved", "/moved/", "/blog", "/blog/", "/blog/2024/post/",
    "/v1/en/guide/", "/v1/en/guide", "/v1/en/de/guide/", "/temp/", "/retired", "/retired/",
    "/a.b(c)/x", "/aXb(c)/x", "/x/1/2/3/4", "/x/1/2", "/new/", "/", "/docs/old/",
    "/docs/api/v2/call", "/docs/api", "/docs/other/", "/.well-known/sitedeploy/rules.json",
    "/nothing/here",
]  # fmt: skip


def rules() -> RuleSet:
    return combine(
        [
            RuleSet(tuple(parse_redirects(ROOT_RULES, "_redirects", "/"))),
            RuleSet(tuple(parse_redirects(DOCS_RULES, "docs/_redirects", "/docs/"))),
        ]
    )


def run_function(tmp_path: Path, code: str, uris: list[str]) -> list[list[object] | None]:
    (tmp_path / "function.js").write_text(code)
    (tmp_path / "harness.js").write_text(HARNESS)
    done = subprocess.run(
        [NODE, str(tmp_path / "harness.js"), str(tmp_path / "function.js")],
        input=json.dumps(uris),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_function_answers_every_uri_as_the_python_resolver_does(tmp_path: Path) -> None:
    ruleset = rules()
    answers = run_function(tmp_path, function_code(ruleset), URIS)
    for uri, got in zip(URIS, answers, strict=True):
        if uri.startswith("/.well-known/sitedeploy/"):
            assert got == [404, "", "Not Found"]
            continue
        found = ruleset.resolve(uri)
        if found is None:
            assert got is None, uri
        else:
            rule, location = found
            expected = "" if rule.status == 410 else location
            assert got is not None and got[:2] == [rule.status, expected], uri
    by_uri = dict(zip(URIS, answers, strict=True))
    assert by_uri["/blog/2024/post/"] == [302, "/news/2024/post/", "Found"]
    assert by_uri["/v1/en/guide"] == [308, "/guide/en/", "Permanent Redirect"]
    assert by_uri["/x/1/2/3/4"] == [302, "/y/2/1/3/4", "Found"]
    assert by_uri["/docs/api/v2/call"] == [301, "/docs/reference/v2/call", "Moved Permanently"]
    assert by_uri["/moved/"] == [301, "https://example.com/elsewhere/", "Moved Permanently"]
    assert by_uri["/retired"] == [410, "", "Gone"]
    assert by_uri["/aXb(c)/x"] is None and by_uri["/new/"] is None  # '.' is literal; no rule


def test_the_function_stays_within_cloudfronts_size_limit_for_a_typical_rule_set() -> None:
    many = "\n".join(f"/old/page-{i}/ /new/page-{i}/" for i in range(60))
    code = function_code(RuleSet(tuple(parse_redirects(many, "_redirects", "/"))))
    assert len(code.encode()) < MAX_BYTES
