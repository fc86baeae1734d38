"""Deploy results posted to GitHub and GitLab, against a local server that records each request."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from sitedeploy import config as config_mod
from sitedeploy.agent.log import EventLog
from sitedeploy.agent.runner import run_once
from sitedeploy.forge import feedback as feedback_mod
from sitedeploy.forge.client import ForgeClient, PostFailed
from sitedeploy.forge.feedback import Feedback
from sitedeploy.forge.pages import PageChanges, compare
from sitedeploy.release.manifest import FileEntry, Manifest
from tests.fixtures.agent import AgentEnv
from tests.fixtures.forge import FakeForge

TOKEN = "canary-forge-token-77c1"
SHA = "a" * 40


def _config(tmp_path: Path, forge: FakeForge, kind: str, repo: str) -> config_mod.Config:
    text = (
        '[source]\nrepo = "."\n[targets.docs]\ntype = "local"\npath = "public"\n'
        'check_urls = ["https://docs.example.com/"]\n'
        f'[forge]\ntype = "{kind}"\napi_url = "{forge.url}"\nrepository = "{repo}"\ntoken_env = "T"\n'
    )
    (tmp_path / "deploy.toml").write_text(text)
    return config_mod.load(tmp_path / "deploy.toml")


def _feedback(cfg: config_mod.Config, counted: list[str] | None = None) -> tuple[Feedback, io.StringIO]:
    assert cfg.forge is not None
    stream = io.StringIO()
    sink = counted if counted is not None else []
    return Feedback(cfg, ForgeClient(cfg.forge, TOKEN), EventLog("json", stream), sink.append), stream


HOSTILE = PageChanges(
    added=["new/index.html"],
    changed=["a `b` <img src=x onerror=1> @channel/index.html"],
    removed=["old.html"],
)


def test_github_statuses_and_one_preview_comment_edited_in_place(
    tmp_path: Path, fake_forge: FakeForge
) -> None:
    cfg = _config(tmp_path, fake_forge, "github", "octo/docs")
    fb, log = _feedback(cfg)
    fb.pending("docs", SHA)
    assert fb.flush(10)
    fb.success("docs", SHA, "deployed as r1")
    fb.preview("docs", "pull/7", SHA, "https://pr-7.example.com/", HOSTILE, True)
    assert fb.flush(10)
    fb.preview("docs", "pull/7", "b" * 40, "https://pr-7.example.com/", PageChanges(), True)
    assert fb.flush(10)

    statuses = fake_forge.sent("POST", rf"/repos/octo/docs/statuses/{SHA}")
    bodies = [r.body for r in statuses]
    assert bodies[0] == {
        "state": "pending",
        "description": f"deploying {SHA[:8]}",
        "context": "sitedeploy/docs",
    }
    assert bodies[1] == {
        "state": "success",
        "description": "deployed as r1",
        "context": "sitedeploy/docs",
        "target_url": "https://docs.example.com/",
    }
    assert {"state": "success", "context": "sitedeploy/docs/preview"}.items() <= bodies[2].items()
    assert statuses[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(fake_forge.sent("POST", r"/repos/octo/docs/issues/7/comments")) == 1  # created once
    assert len(fake_forge.sent("PATCH", r"/repos/octo/docs/issues/comments/\d+")) == 1  # then edited
    (only,) = fake_forge.comments["/repos/octo/docs/issues/7/comments"]
    assert "<!-- sitedeploy-preview:docs -->" in only["body"] and "No page differs" in only["body"]
    assert TOKEN not in log.getvalue()


def test_gitlab_statuses_and_one_note_per_merge_request(tmp_path: Path, fake_forge: FakeForge) -> None:
    cfg = _config(tmp_path, fake_forge, "gitlab", "group/sub/docs")
    fb, _ = _feedback(cfg)
    fb.failure("docs", SHA, "build failed:\n  mkdocs exited 1")
    fb.preview("docs", "merge-requests/3", SHA, "https://mr-3.example.com/", HOSTILE, True)
    assert fb.flush(10)
    fb.preview("docs", "merge-requests/3", "c" * 40, "https://mr-3.example.com/", HOSTILE, True)
    assert fb.flush(10)

    project = "/projects/group%2Fsub%2Fdocs"
    (failed, *_) = fake_forge.sent("POST", rf"{project}/statuses/{SHA}")
    assert failed.body == {
        "state": "failed",
        "description": "build failed: mkdocs exited 1",
        "name": "sitedeploy/docs",
        "target_url": "https://docs.example.com/",
    }
    assert {k.lower(): v for k, v in failed.headers.items()}["private-token"] == TOKEN
    assert len(fake_forge.sent("POST", rf"{project}/merge_requests/3/notes")) == 1
    assert len(fake_forge.sent("PUT", rf"{project}/merge_requests/3/notes/\d+")) == 1
    (note,) = fake_forge.comments[f"{project}/merge_requests/3/notes"]
    body = note["body"]
    assert "1 changed, 1 added, 1 removed" in body
    assert "[`new/`](https://mr-3.example.com/new/)" in body
    # a fork's file name stays text: no HTML, no mention, no broken code span
    assert "`a 'b' <img src=x onerror=1> @channel/`" in body
    assert "(https://mr-3.example.com/a%20%60b%60%20%3Cimg%20src%3Dx%20onerror%3D1%3E%20%40channel/)" in body


def test_a_failing_forge_is_retried_logged_once_counted_and_never_raises(
    tmp_path: Path, fake_forge: FakeForge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feedback_mod, "BACKOFF", 0.01)
    cfg = _config(tmp_path, fake_forge, "github", "octo/docs")
    counted: list[str] = []
    fb, log = _feedback(cfg, counted)
    fake_forge.fail += [(502, {}), (503, {})]
    fb.success("docs", SHA, "deployed")
    assert fb.flush(10)
    assert len(fake_forge.sent("POST", rf"/repos/octo/docs/statuses/{SHA}")) == 3  # two failures, then posted
    assert counted == ["status", "status"]
    lines = log.getvalue().splitlines()
    assert sum('"forge-failed"' in line for line in lines) == 1
    assert any('"forge-recovered"' in line for line in lines)

    fake_forge.fail.append((401, {}))  # a wrong token: not retried
    fb.success("docs", "d" * 40, "deployed")
    assert fb.flush(10)
    assert len(fake_forge.sent("POST", r"/repos/octo/docs/statuses/d{40}")) == 1
    assert TOKEN not in log.getvalue()


def test_rate_limit_headers_stop_calls_until_the_reset(tmp_path: Path, fake_forge: FakeForge) -> None:
    cfg = _config(tmp_path, fake_forge, "github", "octo/docs")
    assert cfg.forge is not None
    client = ForgeClient(cfg.forge, TOKEN)
    reset = time.time() + 120
    fake_forge.fail.append((403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": f"{reset:.0f}"}))
    with pytest.raises(PostFailed) as first:
        client.set_status(SHA, "success", "ok", None, "sitedeploy/docs")
    assert first.value.retry and abs(client.blocked_until - reset) < 2
    with pytest.raises(PostFailed, match="rate limited"):
        client.set_status(SHA, "success", "ok", None, "sitedeploy/docs")
    assert len(fake_forge.requests) == 1  # the second call never left


def test_pages_compare_by_the_unmarked_build() -> None:
    def manifest(**pages: str) -> Manifest:
        return Manifest(
            {p.replace("_", "/") + ".html": FileEntry(h, 1, "text/html") for p, h in pages.items()}
        )

    got = compare(manifest(a="1", b="2", c="3"), manifest(a="1", b="x", d="4"))
    assert got == PageChanges(added=["c.html"], changed=["b.html"], removed=["d.html"])


def test_the_agent_posts_pending_then_success_for_the_deployed_commit(
    agent_env: AgentEnv, fake_forge: FakeForge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGE_T", TOKEN)
    path = agent_env.write_config()
    forge = f'\n[forge]\ntype = "github"\napi_url = "{fake_forge.url}"\nrepository = "o/r"\n'
    forge += 'token_env = "FORGE_T"\n'
    path.write_text(path.read_text() + forge)
    cfg = config_mod.load(path, agent_env.root / "state")
    assert run_once(cfg, agent_env.log()) == 0
    sha = agent_env.live_commit()
    states = [r.body["state"] for r in fake_forge.sent("POST", rf"/repos/o/r/statuses/{sha}")]
    assert states == ["pending", "success"]
    assert TOKEN not in "\n".join(agent_env.lines)
