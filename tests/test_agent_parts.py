"""The agent's parts on their own: refs, the notifier's memory, logs, metrics, gates, webhook auth."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import urllib.request
from pathlib import Path

import pytest

from sitedeploy.agent.log import EventLog
from sitedeploy.agent.metrics import Metrics
from sitedeploy.agent.notify import Notice, Notifier
from sitedeploy.agent.refs import parse_ls_remote, parse_tracked, resolve
from sitedeploy.agent.webhook import authentic
from sitedeploy.build.linkgate import LinkIndex, broken_links
from sitedeploy.config import MetricsConfig
from sitedeploy.errors import ConfigError
from sitedeploy.release.manifest import FileEntry, Manifest

LS_REMOTE = """\
aaaa\tHEAD
aaaa\trefs/heads/main
bbbb\trefs/heads/staging
1111\trefs/tags/v1.9
2222\trefs/tags/v1.10
3333\trefs/tags/v1.10^{}
4444\trefs/tags/other
"""


def test_tracked_refs_follow_branches_and_the_newest_matching_tag() -> None:
    refs = parse_ls_remote(LS_REMOTE)
    assert resolve(parse_tracked("branch:staging", None), refs) == ("refs/heads/staging", "bbbb")
    assert resolve(parse_tracked("tag:v*", None), refs) == ("refs/tags/v1.10", "3333")  # peeled
    assert resolve(parse_tracked(None, "main"), refs) == ("refs/heads/main", "aaaa")
    assert resolve(parse_tracked(None, None), refs) == ("HEAD", "aaaa")
    assert resolve(parse_tracked("tag:release-*", None), refs) is None
    with pytest.raises(ConfigError, match=r"targets.prod.ref: use \"branch:<name>\""):
        parse_tracked("main", None, "targets.prod.ref")


def test_a_persisting_failure_is_notified_at_most_hourly() -> None:
    now = [1000.0]
    memory: dict[str, dict[str, object]] = {}
    notifier = Notifier((), memory, EventLog("kv", io.StringIO()), repeat_after=3600, clock=lambda: now[0])
    failed = Notice("failed", "prod", "boom", "abc", key="abc:BuildError")
    assert notifier.notify(failed)
    for minutes in range(1, 60):
        now[0] = 1000 + minutes * 60
        assert not notifier.notify(failed)
    now[0] = 1000 + 3600
    assert notifier.notify(failed)
    assert notifier.notify(Notice("failed", "prod", "other", "def", key="def:GateError"))  # a new failure
    assert notifier.notify(Notice("recovered", "prod", "ok"))
    assert not notifier.notify(Notice("recovered", "prod", "ok"))
    assert [n.event for n in notifier.sent] == ["failed", "failed", "failed", "recovered"]


def test_logs_are_one_line_per_event_and_never_carry_credentials() -> None:
    out = io.StringIO()
    log = EventLog("kv", out)
    log.event(
        "fetch", url="https://bot:hunter2@git.example.com/docs.git?token=abc", secret="x", signature="y"
    )
    log.error("failed", error="two words")
    first, second = out.getvalue().splitlines()
    assert (
        "hunter2" not in first and "abc" not in first and "secret" not in first and "signature" not in first
    )
    assert 'url="https://***@git.example.com/docs.git?token=***"' in first
    assert 'error="two words"' in second and "level=error" in second
    out = io.StringIO()
    EventLog("json", out).event("deployed", target="prod")
    assert json.loads(out.getvalue())["target"] == "prod"


def test_metrics_endpoint_and_textfile(tmp_path: Path) -> None:
    textfile = tmp_path / "sitedeploy.prom"
    metrics = Metrics(MetricsConfig(bind="127.0.0.1:0", textfile=str(textfile)))
    metrics.deployed("prod", "abc123", 2.5)
    metrics.failed("prod")
    metrics.drifted("prod", 3)
    metrics.serve(lambda: True)
    try:
        base = f"http://127.0.0.1:{metrics.port}"
        with urllib.request.urlopen(f"{base}/healthz") as response:
            assert response.read() == b"ok\n"
        with urllib.request.urlopen(f"{base}/metrics") as response:
            body = response.read().decode()
    finally:
        metrics.close()
    assert 'sitedeploy_live_commit_info{commit="abc123",target="prod"} 1.0' in body
    assert 'sitedeploy_failures_total{target="prod"} 1.0' in body
    assert 'sitedeploy_drift_files{target="prod"} 3.0' in body
    assert 'sitedeploy_deploy_duration_seconds_count{target="prod"} 1.0' in body
    metrics.write_textfile()
    assert "sitedeploy_last_success_timestamp_seconds" in textfile.read_text()
    assert not Metrics(None).enabled


def test_link_gate_resolves_like_a_browser(tmp_path: Path) -> None:
    files = {
        "index.html": '<a href="guide/">g</a> <a href="guide/#x">g</a> <a href="https://x.org/">x</a> '
        '<a href="#top">t</a> <img src="/img/a.png" srcset="img/a.png 1x, img/b.png 2x"> '
        '<a href="mailto:a@b.c">m</a> <!-- <a href="commented/"> --> <a href="guide/missing.html">',
        "guide/index.html": '<a href="../">up</a> <a href="../img/a.png">i</a> <a href=../nowhere>n</a>',
        "img/a.png": "",
        "404.html": '<a href="/not/here/">404 pages are skipped</a>',
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    broken = sorted(str(b) for b in broken_links(tmp_path, set(files)))
    assert broken == [
        "guide/index.html -> ../nowhere",
        "index.html -> guide/missing.html",
        "index.html -> img/b.png",
    ]


def test_link_gate_ignores_html_shown_as_text_in_code_samples(tmp_path: Path) -> None:
    # What MkDocs writes for a fenced ```html block and for `<img src="x">` in backticks: the
    # angle brackets are escaped, the quotes are not. Only the real tag's link counts.
    page = (
        '<pre><code class="language-html">&lt;img alt="A" src="img/photo.1600w.jpg"&gt;\n</code></pre>'
        '<p>write <code>&lt;img src="…" data-sitedeploy="skip"&gt;</code></p> <a href="gone.html">x</a>'
    )
    (tmp_path / "index.html").write_text(page)
    assert [str(b) for b in broken_links(tmp_path, {"index.html"})] == ["index.html -> gone.html"]


def test_webhook_signatures() -> None:
    body, secret = b'{"ref": "refs/heads/main"}', b"s3cret"
    mac = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    header = "X-Sitedeploy-Signature"
    assert authentic({"x-hub-signature-256": mac}, body, secret, header) == "github"
    assert authentic({"x-hub-signature-256": mac}, body + b" ", secret, header) is None
    assert authentic({"x-gitlab-token": "s3cret"}, body, secret, header) == "gitlab"
    assert authentic({"x-gitlab-token": "s3cre"}, body, secret, header) is None
    stamped = {"x-sitedeploy-timestamp": "1700000000"}
    generic = hmac.new(secret, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert authentic({**stamped, "x-sitedeploy-signature": generic}, body, secret, header) == "generic"
    assert authentic({"x-sitedeploy-signature": mac[7:]}, body, secret, header) is None  # time unsigned
    assert authentic({}, body, secret, header) is None


def test_link_index_reads_only_pages_whose_content_changed(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text('<a href="a/">a</a>')
    (tmp_path / "a" / "index.html").write_text('<a href="../">home</a>')
    manifest = Manifest(
        {"index.html": FileEntry("h1", 1, "text/html"), "a/index.html": FileEntry("h2", 1, "")}
    )
    index = LinkIndex()
    assert index.broken(tmp_path, manifest) == []
    index.save(tmp_path / "links.json")
    (tmp_path / "a" / "index.html").unlink()  # unchanged (same hash): served from the index, not read
    (tmp_path / "index.html").write_text('<a href="b/">b</a>')
    edited = Manifest({"index.html": FileEntry("h3", 1, ""), "a/index.html": FileEntry("h2", 1, "")})
    reloaded = LinkIndex.load(tmp_path / "links.json")
    assert [str(b) for b in reloaded.broken(tmp_path, edited)] == ["index.html -> b/"]
