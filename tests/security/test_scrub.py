"""Secrets and terminal escapes never reach output (issue 11, items 5 and 11).

A token in ``source.repo`` is served by a real (dumb-HTTP) git server that ignores it; when the
server fails, the error quotes the URL, and the token must not appear in the CLI's error (with
``--debug`` too), ``status --json``, the target's ``control.json``, the agent's state files, its
log or the notification it posts. Local state files are private (0600). A file name carrying an
OSC sequence reaches the terminal escaped.
"""

from __future__ import annotations

import io
import json
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sitedeploy import config as config_mod
from sitedeploy.agent.log import EventLog
from sitedeploy.agent.loop import Agent
from sitedeploy.agent.notify import Notice, Notifier
from sitedeploy.cli.main import cli
from sitedeploy.config import NotifyConfig
from tests.fixtures.agent import AgentEnv, NotifySink
from tests.fixtures.git import ContentRepo, write_config

TOKEN = "ghp_CanaryT0ken4242"
SLACK_SECRET = "XXXXcanaryHookSecret"


class DumbGitServer:
    """Serves a bare repository over plain HTTP (git's "dumb" protocol); ``broken`` makes every
    object request fail with 503, so ``ls-remote`` works and the fetch after it does not."""

    def __init__(self, bare: Path) -> None:
        self.bare = bare
        self.broken = False
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(bare.parent), **kwargs)

            def do_GET(self) -> None:
                if server.broken and "/objects/" in self.path:
                    self.send_error(503)
                    return
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, userinfo: str) -> str:
        return f"http://{userinfo}@127.0.0.1:{self.httpd.server_address[1]}/{self.bare.name}"

    def publish(self) -> None:
        """What a post-receive hook does on a dumb-HTTP server: refresh info/refs."""
        subprocess.run(["git", "--git-dir", str(self.bare), "update-server-info"], check=True)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def git_server(agent_env: AgentEnv) -> Iterator[DumbGitServer]:
    server = DumbGitServer(agent_env.remote.bare)
    server.publish()
    yield server
    server.close()


def sd(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def everything_written(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_a_token_in_source_repo_never_reaches_output_state_or_notifications(
    agent_env: AgentEnv, git_server: DumbGitServer, notify_sink: NotifySink
) -> None:
    env = agent_env
    url = git_server.url(f"ci:{TOKEN}")
    config_path = env.write_config(agent=f'[[agent.notify]]\nurl = "{notify_sink.url}/hook"\n')
    config_path.write_text(config_path.read_text().replace(f'repo = "{env.remote.bare}"', f'repo = "{url}"'))
    config = config_mod.load(config_path, env.root / "state")
    agent = Agent(config, env.log())
    assert agent.tick().deployed == ["site"]  # the token is accepted (and ignored) by the server

    env.remote.static_site("v2")
    env.remote.commit_push("v2")
    git_server.publish()
    git_server.broken = True
    assert agent.tick().failed == ["site"]

    control = json.loads((env.public / ".sitedeploy" / "control.json").read_text())
    assert f"{url.replace(f'ci:{TOKEN}', '***')}" in control["agent"]["last_error"]  # it was quoted
    status = sd(config_path, "--state-dir", str(env.root / "state"), "--json", "status")
    assert status.exit_code == 0 and "http://***@127.0.0.1" in status.stdout
    failed = sd(config_path, "--state-dir", str(env.root / "state"), "--debug", "deploy")
    assert failed.exit_code == 1 and "Traceback" in failed.stderr  # --debug: scrubbed, not hidden
    assert "error: git: cannot fetch http://***@127.0.0.1" in failed.stderr
    written = everything_written(env.root / "state") | everything_written(env.public / ".sitedeploy")
    for text in (
        status.output,
        failed.output,
        "\n".join(env.lines),
        *(b.decode() for b in notify_sink.bodies),
        *(b.decode(errors="replace") for b in written.values()),
    ):
        assert TOKEN not in text
    assert any("http://***@127.0.0.1" in b.decode() for b in notify_sink.bodies)


def test_local_state_files_are_private(agent_env: AgentEnv) -> None:
    env = agent_env
    Agent(env.config(), env.log()).tick()
    state = env.root / "state"
    memory = state / "agent" / "state.json"
    assert stat.S_IMODE(memory.stat().st_mode) == 0o600
    assert stat.S_IMODE(memory.parent.stat().st_mode) & 0o077 == 0


def test_a_webhook_secret_in_the_url_path_is_never_logged() -> None:
    lines = io.StringIO()
    channel = NotifyConfig(url=f"http://127.0.0.1:9/services/T00/B00/{SLACK_SECRET}", format="slack")
    notifier = Notifier((channel,), {}, EventLog("kv", lines))
    notifier.notify(Notice("deployed", "site", "site: deployed abc"))  # port 9: refused, logged
    assert "notify-failed" in lines.getvalue() and "/services/***" in lines.getvalue()
    assert SLACK_SECRET not in lines.getvalue()


ESCAPE_NAME = "evil\x1b]0;pwned\x07.html"


def test_a_file_name_with_an_escape_sequence_is_printed_escaped(tmp_path: Path) -> None:
    """Such a name is refused at build (tests/security/test_links_and_names.py); the refusal that
    names it must not carry the escape sequence to the operator's terminal either."""
    repo = ContentRepo(tmp_path / "content")
    repo.add_static_site()
    repo.write(f"sites/landing/{ESCAPE_NAME}", "<p>x</p>\n")
    repo.commit("a hostile file name")
    config = write_config(tmp_path, repo.path, sites='[[sites]]\nname = "landing"\npath = "sites/landing"\n')
    result = sd(config, "deploy", "--dry-run")
    assert result.exit_code == 1, result.output
    assert "evil\\x1b]0;pwned\\x07.html" in result.stderr
    assert "\x1b" not in result.output and "\x07" not in result.output


def test_the_agent_log_escapes_control_characters() -> None:
    for fmt in ("kv", "json"):
        lines = io.StringIO()
        EventLog(fmt, lines).event("upload", path=ESCAPE_NAME, note="\x9b2J bidi \u202e")  # type: ignore[arg-type]
        assert "\x1b" not in lines.getvalue() and "\x9b" not in lines.getvalue()
        assert "\u202e" not in lines.getvalue() and "pwned" in lines.getvalue()


def test_an_error_naming_a_hostile_ref_is_one_escaped_line(tmp_path: Path) -> None:
    repo = ContentRepo(tmp_path / "content")
    repo.add_static_site()
    repo.commit("one")
    config = write_config(tmp_path, repo.path, sites='[[sites]]\nname = "landing"\npath = "sites/landing"\n')
    result = sd(config, "deploy", "--ref", "x\x1b]0;pwned\x07\ny")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr
    assert "unknown ref 'x\\x1b]0;pwned\\x07\\ny'" in result.stderr


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_is_scrubbed_and_escaped_with_or_without_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], debug: bool
) -> None:
    from sitedeploy import commands
    from sitedeploy.cli import main

    def bug(*args: object, **kwargs: object) -> None:  # a bug that quotes a URL and a file name
        raise RuntimeError(f"boom at https://ci:{TOKEN}@git.example.com/x.git {ESCAPE_NAME}")

    monkeypatch.setattr(commands, "status", bug)
    config = tmp_path / "deploy.toml"
    config.write_text('[source]\nrepo = "."\n')
    monkeypatch.setattr(
        "sys.argv", ["sitedeploy", *(["--debug"] if debug else []), "--config", str(config), "status"]
    )
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert exited.value.code == 70 and ("Traceback" in err) is debug
    assert "internal error: RuntimeError: boom at https://***@git.example.com/x.git evil\\x1b" in err
    assert TOKEN not in err and "\x1b" not in err
