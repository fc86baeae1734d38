# ruff: noqa: E501, RUF028  (the report fixture reads best one row per line, unformatted)
"""The status page: its JSON, its HTML (escaped, phone-usable, working without JS), badges, access.

The page tests serve a report holding every state at once (a failed deploy, a pin, drift,
versions, previews) and hostile strings where git and builds put text, through the real
routes and the real bounded server; ``test_gather_*`` builds a report from a real agent run.
Screenshots go to ``sites/docs/docs/img/status-{desktop,phone}.png`` (the manual shows them).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.agent.httpserver import BoundedHTTPServer, serve_in_thread
from sitedeploy.agent.runner import run_once
from sitedeploy.web import render
from sitedeploy.web.gather import gather
from sitedeploy.web.model import (
    AGENT_STATES,
    ATTENTION_KINDS,
    SCHEMA_VERSION,
    TARGET_STATES,
    ActivityItem,
    AgentInfo,
    Attention,
    CommitInfo,
    HistoryItem,
    PreviewView,
    SourceInfo,
    StatusReport,
    TargetView,
    VersionView,
)
from sitedeploy.web.server import StatusPages, handler_for
from tests.fixtures.agent import AgentEnv
from tests.fixtures.browser import CHROMIUM_FLAGS, Chromium

EVIL = "<script>alert('x')</script>\"quoted\" & <b>bold</b>"
IMG = Path(__file__).parent.parent / "sites" / "docs" / "docs" / "img"
NOW = "2026-05-01T12:00:00Z"


def _history(target: str, n: int) -> list[HistoryItem]:
    return [
        HistoryItem(
            "deploy",
            f"{i:x}" * 40,
            f"Edit page {i} {EVIL}",
            "Ann <ann@x>",
            f"2026050{i}T1200-{i:x}" * 1,
            f"2026-04-2{i}T10:00:00Z",
            "deploy@host",
            i,
            2,
            0,
            None if i == 1 else f"sitedeploy rollback --target {target} --to 2026050{i}T1200-{i:x}",
        )  # fmt: skip
        for i in range(1, n + 1)
    ]


def everything() -> StatusReport:
    """A report with every state the page knows, and hostile text wherever git or a build writes."""
    head = CommitInfo("f" * 40, "ffffffff", f"Fix {EVIL}", "Eve <eve@x>", NOW, 300.0, "verified", "eve@x")
    live = CommitInfo("e" * 40, "eeeeeeee", f"Older {EVIL}", "Eve <eve@x>")
    targets = [
        TargetView("prod", "/srv/www", "in-sync", "https://docs.example.com/", "branch:main", head, "f" * 40,
                   "r-prod", "2026-05-01T11:00:00Z", "deploy@host", 42.0, 3, 5, 1, None, None, _history("prod", 3)),
        TargetView("staging", "ssh://web1", "failed", None, "branch:main", live, "f" * 40, "r-st",
                   "2026-04-30T11:00:00Z", "deploy@host", 12.0, 0, 1, 0, f"build failed: {EVIL}", None,
                   _history("staging", 2)),
        TargetView("eu", "s3://bucket/docs", "pinned", "https://eu.example.com/", "branch:main", live, "f" * 40,
                   "r-eu", reason="pinned by ann: bad <release>", history=_history("eu", 1)),
        TargetView("mirror", "/srv/mirror", "drifted", None, "branch:main", head, "f" * 40, "r-m",
                   reason="the live files differ", lock="ann@host since 2026-05-01T11:59:00Z"),
    ]  # fmt: skip
    attention = [
        Attention("failed", "staging", f"build failed: {EVIL}", "sitedeploy deploy --target staging"),
        Attention("pinned", "eu", "pinned by ann: bad release", "sitedeploy resume --target eu"),
        Attention("drift", "mirror", "the live files differ", "sitedeploy verify --target mirror --repair"),
        Attention("lock", "mirror", "locked by ann@host", "sitedeploy unlock --target mirror"),
        Attention("bad-commit", "eu", f"{'d' * 12} marked bad: {EVIL}", f"sitedeploy unmark --target eu {'d' * 12}"),
        Attention("preview-expiring", "prod", "preview br-x expires in 3 h",
                  "git commit --allow-empty -m 'keep the preview' && git push origin HEAD:feature/<x>"),
    ]  # fmt: skip
    versions = [
        VersionView("prod", "2.1", "2.1", ["latest"], "a" * 40, "https://docs.example.com/2.1/", True, NOW),
        VersionView("prod", "2.0", "2.0", [], "b" * 40, "https://docs.example.com/2.0/", False, NOW),
    ]
    previews = [
        PreviewView("prod", "br-feature-x", f"feature/{EVIL}", "c" * 40, "https://pr.example.com/br-feature-x/",
                    NOW, "2026-05-01T15:00:00Z", 10800.0),
        PreviewView("prod", "pr-7", "pull/7", "d" * 40, "https://pr.example.com/pr-7/", NOW, "2026-05-10T12:00:00Z",
                    777600.0),
    ]  # fmt: skip
    activity = [
        ActivityItem("2026-05-01T11:58:00Z", "failed", "error", "staging", f"error=build failed: {EVIL}"),
        ActivityItem("2026-05-01T11:00:00Z", "deployed", "info", "prod", "commit=ffffffff seconds=42"),
        ActivityItem("2026-05-01T10:59:00Z", "webhook", "info", None, "sender=github"),
    ]
    agent = AgentInfo("healthy", 4242, "2026-04-30T08:00:00Z", "2026-05-01T11:59:30Z", "2026-05-01T12:00:30Z",
                      "2026-05-01T10:59:00Z", 60.0)  # fmt: skip
    source = SourceInfo("https://git.example.com/docs.git", "branch:main", head)
    return StatusReport(
        SCHEMA_VERSION, NOW, agent, source, attention, targets, versions, previews, activity, True
    )


def _config(tmp_path: Path, extra: str = "") -> config_mod.Config:
    targets = "".join(
        f'[targets.{n}]\ntype = "local"\npath = "{n}"\n' for n in ("prod", "staging", "eu", "mirror")
    )
    (tmp_path / "deploy.toml").write_text(f'[source]\nrepo = "."\n{targets}[status]\nbadges = true\n{extra}')
    return config_mod.load(tmp_path / "deploy.toml")


@pytest.fixture
def page_server(tmp_path: Path) -> Iterator[int]:
    pages = StatusPages(_config(tmp_path), host="127.0.0.1", gather=everything)
    server = BoundedHTTPServer(
        ("127.0.0.1", 0), handler_for(pages), name="status", max_connections=8, deadline=10
    )
    serve_in_thread(server)
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_status_json_has_the_documented_schema(page_server: int) -> None:
    status, headers, body = _get(page_server, "/status.json")
    data = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert data["schema"] == SCHEMA_VERSION
    assert set(data) == {
        "schema", "generated_at", "agent", "source", "attention", "targets", "versions", "previews", "activity",
        "badges",
    }  # fmt: skip
    assert data["agent"]["state"] in AGENT_STATES
    assert {t["state"] for t in data["targets"]} <= set(TARGET_STATES)
    assert {a["kind"] for a in data["attention"]} <= set(ATTENTION_KINDS)
    target_keys = {"name", "location", "state", "url", "tracking", "live", "head", "release", "deployed_at",
                   "deployed_by", "duration_seconds", "added", "changed", "removed", "reason", "lock", "history"}  # fmt: skip
    assert all(set(t) == target_keys for t in data["targets"])
    assert data["targets"][0]["history"][1]["rollback"].startswith("sitedeploy rollback --target prod --to ")


def test_every_string_from_git_or_a_build_is_escaped(page_server: int) -> None:
    status, headers, body = _get(page_server, "/")
    html = body.decode()
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    assert "<script>alert" not in html and "<b>bold" not in html
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&#34;quoted&#34; &amp; &lt;b&gt;bold&lt;/b&gt;"
        in html
    )
    assert re.findall(r"<script[^>]*>", html) == ['<script src="static/status.js" defer>']
    assert "feature/&lt;x&gt;" in html


def test_badges_say_in_sync_behind_or_failed_and_are_off_unless_enabled(
    page_server: int, tmp_path: Path
) -> None:
    status, headers, svg = _get(page_server, "/badge/prod.svg")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml"
    assert b">in sync</text>" in svg and svg.startswith(b"<svg ")
    assert b">failed</text>" in _get(page_server, "/badge/staging.svg")[2]
    assert _get(page_server, "/badge/nosuch.svg")[0] == 404
    assert b"behind" in render.badge("x", "behind") and b"#b26a00" in render.badge("x", "never-deployed")
    config = _config(tmp_path)
    (tmp_path / "deploy.toml").write_text(config.path.read_text().replace("badges = true", "badges = false"))
    off = StatusPages(config_mod.load(tmp_path / "deploy.toml"), host="127.0.0.1", gather=everything)
    assert off.answer("/badge/prod.svg", None).code == 404  # type: ignore[union-attr]


def test_beyond_localhost_the_page_needs_its_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path)
    assert StatusPages(config, host="0.0.0.0", gather=everything).answer("/", None).code == 403  # type: ignore[union-attr]
    monkeypatch.setenv("PAGE_TOKEN", "canary-page-token-31f")
    config = _config(tmp_path, 'token_env = "PAGE_TOKEN"\n')
    pages = StatusPages(config, host="0.0.0.0", gather=everything)
    basic = "Basic " + base64.b64encode(b"anyone:canary-page-token-31f").decode()
    assert pages.answer("/", None).code == 401  # type: ignore[union-attr]
    assert pages.answer("/", "Bearer wrong").code == 401  # type: ignore[union-attr]
    ok = pages.answer("/", basic)
    assert ok is not None and ok.code == 200 and b"canary-page-token" not in ok.body
    assert pages.answer("/status.json", "Bearer canary-page-token-31f").code == 200  # type: ignore[union-attr]
    assert pages.answer("/badge/prod.svg", None).code == 200  # type: ignore[union-attr]  # badges: public


def _chromium(chromium: Chromium, url: str, width: int, *extra: str) -> tuple[str, str]:
    """The DOM after load and the browser's log (console messages included)."""
    timed = [] if extra else ["--virtual-time-budget=3000"]  # virtual time needs script: none without it
    command = [chromium.executable, *CHROMIUM_FLAGS, f"--user-data-dir={chromium.profiles}/status-{width}",
               f"--window-size={width},1200", *timed, "--enable-logging=stderr", "--v=0",
               *extra, "--dump-dom", url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


MEASURE = (
    "addEventListener('load', function () { var e = document.documentElement;"
    " document.body.setAttribute('data-overflow', String(e.scrollWidth - e.clientWidth)); });"
)


def test_the_page_in_a_browser_at_desktop_and_phone_widths(
    page_server: int, chromium: Chromium, web_server: tuple[Path, object]
) -> None:
    url = f"http://127.0.0.1:{page_server}/"
    for width, name in ((1280, "desktop"), (390, "phone")):
        dom, log = _chromium(chromium, url, width)
        assert "CONSOLE" not in log and "Refused to" not in log, log[-2000:]
        assert dom.count('class="target ') == 4 and dom.count('class="item kind-') == 6
        for section in ("agent", "attention", "targets", "versions", "previews", "history", "activity"):
            assert f'id="{section}"' in dom
        assert 'class="copy"' in dom  # the script ran: copy buttons next to each command
        IMG.mkdir(parents=True, exist_ok=True)
        chromium.screenshot(url, IMG / f"status-{name}.png", width, 2600 if name == "phone" else 1500)
    # no horizontal scroll on a phone: the same HTML and CSS, measured by a script of the test's own
    root, server = web_server
    (root / "static").mkdir()
    for asset in ("status.css", "status.js"):
        (root / "static" / asset).write_bytes(render.static(asset) or b"")
    (root / "measure.js").write_text(MEASURE)
    page = render.page(everything(), refresh=30).replace(
        b"</head>", b'<script src="measure.js"></script></head>'
    )
    (root / "index.html").write_bytes(page)
    dom, _ = _chromium(chromium, f"{server.url}/index.html", 390)  # type: ignore[attr-defined]
    assert 'data-overflow="0"' in dom


def test_the_page_works_without_javascript(
    page_server: int, chromium: Chromium, web_server: tuple[Path, object]
) -> None:
    """Headless Chromium here ignores its switches that turn script off (and --dump-dom needs
    script), so the page is loaded as a browser without script sees it: its script tag removed."""
    html = _get(page_server, "/")[2]
    assert b'<noscript><meta http-equiv="refresh"' in html  # it still refreshes itself
    root, server = web_server
    (root / "static").mkdir()
    (root / "static" / "status.css").write_bytes(render.static("status.css") or b"")
    (root / "index.html").write_bytes(re.sub(rb"<script[^>]*></script>", b"", html))
    dom, log = _chromium(chromium, f"{server.url}/index.html", 390)  # type: ignore[attr-defined]
    assert "<script" not in dom and 'class="copy"' not in dom
    assert "sitedeploy resume --target eu" in dom and dom.count('class="target ') == 4
    assert dom.count('class="item kind-') == 6 and "CONSOLE" not in log


def test_gather_reports_a_real_agent_run_with_a_pin(agent_env: AgentEnv) -> None:
    config = agent_env.config()
    assert run_once(config, agent_env.log()) == 0
    agent_env.remote.static_site("v2")
    agent_env.remote.commit_push(f"v2 {EVIL}")
    assert run_once(config, agent_env.log()) == 0
    commands.rollback(config, target="site")
    report = gather(config)
    (site,) = report.targets
    assert site.state == "pinned" and site.live is not None and site.live.subject == "v1"
    assert report.source.head is not None and report.source.head.subject == f"v2 {EVIL}"
    assert [a.command for a in report.attention if a.kind == "pinned"] == ["sitedeploy resume --target site"]
    assert [h.action for h in site.history] == ["rollback", "deploy", "deploy"]
    assert site.history[1].rollback == f"sitedeploy rollback --target site --to {site.history[1].release}"
    assert report.agent.state == "once"
    assert {"deploying", "deployed"} <= {a.event for a in report.activity}
    assert site.duration_seconds is not None  # the release rolled back to was timed when deployed
    html = render.page(report, refresh=30).decode()
    assert "v2 &lt;script&gt;" in html and "<script>alert" not in html
