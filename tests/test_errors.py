"""The error tree and the three tables that map third-party errors into it: botocore (real
ClientErrors and exception instances), paramiko/socket (real exception instances, through a real
``SSHHost.step``) and git (real failures of real repositories). Unknown exceptions propagate."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.exceptions
import paramiko
import pytest

from sitedeploy import errors
from sitedeploy.agent.refs import ls_remote
from sitedeploy.config import SSHTargetConfig
from sitedeploy.errors import (
    AuthenticationFailed,
    Conflict,
    GitFailed,
    LeaseLost,
    LockHeld,
    Misconfigured,
    NoSpace,
    NotARepository,
    NotFound,
    PermissionDenied,
    RefNotFound,
    RepoAccessDenied,
    RepoUnreachable,
    ServerError,
    SitedeployError,
    SourceError,
    TargetError,
    TimedOut,
    Unreachable,
)
from sitedeploy.source import Source
from sitedeploy.source.gitrun import Git, git_env, translate
from sitedeploy.targets.s3.client import classify, translated
from sitedeploy.targets.ssh.host import SSHHost
from tests.fixtures.git import ContentRepo

# --- the tree ----------------------------------------------------------------------------------

RETRYABLE = {
    Unreachable: True,
    TimedOut: True,
    Conflict: True,
    LockHeld: True,
    LeaseLost: True,
    ServerError: True,
    RepoUnreachable: True,
    AuthenticationFailed: False,
    PermissionDenied: False,
    NotFound: False,
    NoSpace: False,
    Misconfigured: False,
    NotARepository: False,
    RepoAccessDenied: False,
    RefNotFound: False,
    GitFailed: False,
    TargetError: False,
}


@pytest.mark.parametrize("cls", list(RETRYABLE))
def test_retryable_is_a_class_attribute_an_instance_may_override(cls: type[SitedeployError]) -> None:
    assert cls.retryable is RETRYABLE[cls]
    assert cls("x").retryable is RETRYABLE[cls]
    assert cls("x", retryable=not RETRYABLE[cls]).retryable is not RETRYABLE[cls]


def test_every_kind_is_in_the_drawn_tree() -> None:
    drawn = errors.__doc__ or ""
    kinds = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, SitedeployError)]
    assert len(kinds) >= 20
    for cls in kinds:
        assert f"── {cls.__name__} " in drawn or cls is SitedeployError, cls.__name__


def test_a_message_is_scrubbed_when_the_error_is_made() -> None:
    exc = SourceError("git: cannot fetch https://ci:ghp_s3cr3tT0ken@git.example.com/docs.git (x)")
    assert "ghp_s3cr3tT0ken" not in str(exc) and "https://***@git.example.com/docs.git" in exc.message


def test_scrub_removes_credentials_and_webhook_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("SITEDEPLOY_WEBHOOK_SECRET", "hunter2hunter2")
    cases = {
        "https://user:tok@host/x?a=1&token=abc&b=2": "https://***@host/x?a=1&token=***&b=2",
        "https://hooks.slack.com/services/T0/B0/XXXXsecret": "https://hooks.slack.com/services/***",
        "https://chat.example.com/hooks/8ak3kd93ks": "https://chat.example.com/hooks/***",
        "https://discord.com/api/webhooks/1/tok?wait=true": "https://discord.com/api/webhooks/***?wait=true",
        "https://x.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d": "https://x.webhook.office.com/webhookb2/***",
        "key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY id AKIAIOSFODNN7EXAMPLE": "key *** id ***",
        "secret hunter2hunter2 here": "secret *** here",
        "commit 71ecd98a91ad5e06cc16753a3b3a01ec1c42ca02 git@github.com:a/b": (
            "commit 71ecd98a91ad5e06cc16753a3b3a01ec1c42ca02 git@github.com:a/b"
        ),
    }
    for raw, clean in cases.items():
        assert errors.scrub(raw) == clean


def test_controls_are_escaped_newline_and_tab_kept() -> None:
    assert (
        errors.escape_controls("a\x1b]0;pwned\x07b\n\tc\x9b\u202e") == "a\\x1b]0;pwned\\x07b\n\tc\\x9b\\u202e"
    )


# --- botocore ---------------------------------------------------------------------------------


def client_error(code: str, status: int, operation: str = "PutObject") -> botocore.exceptions.ClientError:
    body = {"Error": {"Code": code, "Message": "AKIAIOSFODNN7EXAMPLE said no"}}
    return botocore.exceptions.ClientError(
        {**body, "ResponseMetadata": {"HTTPStatusCode": status}},  # type: ignore[typeddict-item]
        operation,
    )


S3_CODES: list[tuple[str, int, type[TargetError], bool]] = [
    ("NoSuchBucket", 404, NotFound, False),
    ("NoSuchDistribution", 404, NotFound, False),
    ("AccessDenied", 403, PermissionDenied, False),
    ("AllAccessDisabled", 403, PermissionDenied, False),
    ("InvalidAccessKeyId", 403, AuthenticationFailed, False),
    ("SignatureDoesNotMatch", 403, AuthenticationFailed, False),
    ("ExpiredToken", 400, AuthenticationFailed, True),
    ("RequestTimeTooSkewed", 403, AuthenticationFailed, True),
    ("PermanentRedirect", 301, Misconfigured, False),
    ("AuthorizationHeaderMalformed", 400, Misconfigured, False),
    ("OperationAborted", 409, Conflict, True),
    ("SlowDown", 503, ServerError, True),
    ("Throttling", 400, ServerError, True),
    ("TooManyInvalidationsInProgress", 400, ServerError, True),
    ("InternalError", 500, ServerError, True),
    ("ServiceUnavailable", 503, ServerError, True),
    ("403", 403, PermissionDenied, False),  # HEAD requests: a bare status, no code
    ("404", 404, NotFound, False),
    ("PreconditionFailed", 412, Conflict, True),
    ("SomethingNew", 502, ServerError, True),
    ("SomethingElse", 400, TargetError, False),
]


@pytest.mark.parametrize(("code", "status", "cls", "retryable"), S3_CODES)
def test_s3_error_codes_map_to_their_kind(
    code: str, status: int, cls: type[TargetError], retryable: bool
) -> None:
    with pytest.raises(TargetError) as caught, translated("site", "s3://docs/", "upload index.html"):
        raise client_error(code, status)
    assert type(caught.value) is cls and caught.value.retryable is retryable
    message = caught.value.message
    assert message.startswith("target 'site': cannot upload index.html in s3://docs/: ")
    assert "AKIA" not in message and "\n" not in message


S3_TYPES: list[tuple[Exception, type[TargetError], str]] = [
    (botocore.exceptions.NoCredentialsError(), AuthenticationFailed, "no AWS credentials found"),
    (botocore.exceptions.ProfileNotFound(profile="prod"), Misconfigured, "'profile'"),
    (botocore.exceptions.NoRegionError(), Misconfigured, "set 'region'"),
    (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://s3:9"), TimedOut, "timed out"),
    (botocore.exceptions.ReadTimeoutError(endpoint_url="http://s3:9"), TimedOut, "timed out"),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3:9"), Unreachable, "cannot reach"),
    (botocore.exceptions.IncompleteReadError(actual_bytes=1, expected_bytes=2), Unreachable, "dropped"),
]


@pytest.mark.parametrize(("exc", "cls", "fragment"), S3_TYPES)
def test_botocore_exception_types_map_to_their_kind(
    exc: Exception, cls: type[TargetError], fragment: str
) -> None:
    kind = classify(exc)
    assert kind is not None and kind[0] is cls and fragment in kind[1]


@pytest.mark.parametrize(
    "bug",
    [ValueError("ours"), KeyError("ETag"), botocore.exceptions.ParamValidationError(report="Bucket: bad")],
)
def test_s3_unknown_exceptions_propagate_as_bugs(bug: Exception) -> None:
    with pytest.raises(type(bug)), translated("site", "s3://docs/", "read state"):
        raise bug


# --- paramiko / sockets -----------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> SSHHost:
    (tmp_path / "ssh_config").write_text("")
    cfg = SSHTargetConfig(
        hosts=("web1:2222",), path="site", user="deploy", ssh_config=str(tmp_path / "ssh_config")
    )
    return SSHHost("prod", "web1:2222", cfg)


SSH_CASES: list[tuple[BaseException, type[TargetError], str]] = [
    (paramiko.PasswordRequiredException("encrypted"), AuthenticationFailed, "ssh-add"),
    (paramiko.AuthenticationException("no"), AuthenticationFailed, "authentication failed as user 'deploy'"),
    (
        paramiko.ssh_exception.NoValidConnectionsError({("10.0.0.1", 2222): ConnectionRefusedError()}),
        Unreachable,
        "refused the connection",
    ),
    (
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        Unreachable,
        "unknown host name 'web1'",
    ),
    (TimeoutError(), TimedOut, "timed out during upload a.html"),
    (EOFError(), Unreachable, "connection dropped"),
    (paramiko.SSHException("Error reading SSH protocol banner"), Unreachable, "connection dropped"),
    (OSError("Socket is closed"), Unreachable, "connection dropped"),
    (PermissionError(errno.EACCES, "Permission denied"), PermissionDenied, "permission denied on a.html"),
    (OSError(errno.ENOSPC, "No space left on device"), NoSpace, "disk full"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), NoSpace, "quota"),
    (FileNotFoundError(errno.ENOENT, "No such file"), NotFound, "a.html does not exist"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), Unreachable, "unreachable"),
    (OSError("Failure"), ServerError, "the server refused to upload a.html"),
]


@pytest.mark.parametrize(("exc", "cls", "fragment"), SSH_CASES)
def test_paramiko_and_socket_errors_map_to_their_kind(
    host: SSHHost, exc: BaseException, cls: type[TargetError], fragment: str
) -> None:
    with pytest.raises(TargetError) as caught, host.step("upload a.html", "a.html"):
        raise exc
    assert type(caught.value) is cls and caught.value.retryable is cls.retryable
    assert caught.value.message.startswith("target 'prod': host web1:2222: ")
    assert fragment in caught.value.message and "\n" not in caught.value.message
    assert caught.value.__cause__ is exc


@pytest.mark.parametrize("bug", [ValueError("ours"), KeyError("x"), AttributeError("y"), TypeError("z")])
def test_ssh_bugs_propagate_instead_of_becoming_retryable_target_errors(
    host: SSHHost, bug: Exception
) -> None:
    with pytest.raises(type(bug)), host.step("read state"):
        raise bug


# --- git --------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> ContentRepo:
    content = ContentRepo(tmp_path / "content")
    content.add_static_site()
    content.commit("one")
    return content


def test_git_unknown_ref_and_unknown_commit(repo: ContentRepo, tmp_path: Path) -> None:
    source = Source(str(repo.path), tmp_path / "mirror.git")
    source.sync()
    with pytest.raises(RefNotFound, match=r"unknown ref 'nope' in .*content; use a branch"):
        source.resolve("nope")
    with pytest.raises(RefNotFound, match=r"git: cannot read commit deadbeefdead \(bad revision"):
        source.commit("deadbeefdead")
    assert source.resolve("main").sha == repo.git("rev-parse", "HEAD")


def test_git_not_a_repository_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotARepository, match=r"plain is not a git repository; run 'git init' there"):
        Source(str(tmp_path / "plain"), tmp_path / "plain.git").sync()
    with pytest.raises(NotARepository) as caught:
        Source(str(tmp_path / "missing"), tmp_path / "missing.git").sync()
    assert f"git: cannot clone {tmp_path / 'missing'} (" in caught.value.message
    assert "check source.repo" in caught.value.message and not caught.value.retryable


def test_git_empty_repository_says_it_has_no_commits(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    subprocess.run(["git", "init", "-q", "-b", "main", str(empty)], check=True)
    source = Source(str(empty), tmp_path / "mirror.git")
    source.sync()
    with pytest.raises(RefNotFound, match="has no commits yet; commit your files"):
        source.resolve(None)


def test_a_damaged_mirror_names_the_folder_to_delete(repo: ContentRepo, tmp_path: Path) -> None:
    source = Source(str(repo.path), tmp_path / "mirror.git")
    source.sync()
    (tmp_path / "mirror.git" / "HEAD").write_text("garbage\n")
    with pytest.raises(NotARepository, match=r"the local mirror .*mirror.git is damaged; delete it"):
        source.sync()


def test_a_changed_source_repo_is_followed_by_the_mirror(repo: ContentRepo, tmp_path: Path) -> None:
    source = Source(str(repo.path), tmp_path / "mirror.git")
    source.sync()
    moved = tmp_path / "moved"
    repo.path.rename(moved)
    Source(str(moved), tmp_path / "mirror.git").sync()  # fetches from the new place
    assert Source(str(moved), tmp_path / "mirror.git").resolve("main").subject == "one"


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A local HTTP server that wants credentials: what a private git host does."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_git_auth_failure_is_not_retryable_and_hides_the_token(refusing_server: str) -> None:
    with pytest.raises(RepoAccessDenied) as caught:
        ls_remote(f"http://{refusing_server}/docs.git")
    assert "give this machine read access" in caught.value.message and not caught.value.retryable
    with pytest.raises(RepoAccessDenied) as caught:
        ls_remote(f"http://ci:ghp_T0ken123@{refusing_server}/docs.git")
    assert "ghp_T0ken123" not in caught.value.message and "http://***@127.0.0.1" in caught.value.message


def test_git_unreachable_remote_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(RepoUnreachable) as caught:
        Source(f"http://user:pw12345678@127.0.0.1:{port}/docs.git", tmp_path / "m.git").sync()
    assert caught.value.retryable and "pw12345678" not in caught.value.message
    assert "check the network" in caught.value.message


def test_a_silent_remote_times_out_and_leaves_no_git_behind() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/docs.git"
        started = time.monotonic()
        with pytest.raises(RepoUnreachable, match=r"no answer in 1 s"):
            Git(remote=url).run(
                "ls-remote", "--", url, doing=f"list the refs of {url}", network=True, timeout=1
            )
        assert time.monotonic() - started < 10
    leftover = subprocess.run(["pgrep", "-f", f"remote-http.*{url}"], capture_output=True, text=True)
    assert leftover.stdout == ""


def test_git_runs_in_a_scrubbed_environment(
    repo: ContentRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a git hook: GIT_DIR points elsewhere. The mirror must still be the repo git uses.
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere.git"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("SITEDEPLOY_WEBHOOK_SECRET", "do-not-leak")
    env = git_env()
    assert (
        "GIT_DIR" not in env and "AWS_SECRET_ACCESS_KEY" not in env and "SITEDEPLOY_WEBHOOK_SECRET" not in env
    )
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["LC_ALL"] == "C" and env["PATH"] == os.environ["PATH"]
    source = Source(str(repo.path), tmp_path / "mirror.git")
    source.sync()
    assert source.resolve("main").subject == "one"


def test_the_translator_table_on_what_git_prints() -> None:
    said = {
        "fatal: could not read Username for 'https://h': terminal prompts disabled": RepoAccessDenied,
        "git@h: Permission denied (publickey).\nfatal: Could not read": RepoAccessDenied,
        "Host key verification failed.\nfatal: Could not read from remote repository.": RepoAccessDenied,
        "fatal: unable to access 'https://h/x/': The requested URL returned error: 403": RepoAccessDenied,
        "fatal: unable to access 'https://h/x/': Could not resolve host: h": RepoUnreachable,
        "ssh: connect to host h port 22: Connection refused\nfatal: Could not read": RepoUnreachable,
        "fatal: 'x' does not appear to be a git repository\nfatal: Could not read": NotARepository,
        "remote: Repository not found.\nfatal: repository 'https://h/x/' not found": NotARepository,
        "fatal: couldn't find remote ref refs/heads/nope": RefNotFound,
        "fatal: bad object 1234": RefNotFound,
        "error: cannot lock ref 'refs/heads/main'": GitFailed,
        "": GitFailed,
    }
    for stderr, cls in said.items():
        made = translate(stderr, "fetch x")
        assert type(made) is cls, (stderr, made)
        assert made.message.startswith("git: cannot fetch x (") and "\n" not in made.message
    assert translate("", "fetch x").message == "git: cannot fetch x (no message)"


def test_a_repository_owned_by_another_user_names_safe_directory(repo: ContentRepo, tmp_path: Path) -> None:
    # git's "dubious ownership" check (the agent runs as another user than the repo's owner):
    # the message names safe.directory and the exact command, not the network.
    subprocess.run(["chown", "-R", "1234", str(repo.path)], check=True)
    source = Source(str(repo.path), tmp_path / "mirror.git")
    with pytest.raises(RepoAccessDenied) as caught:
        source.sync()
    message = caught.value.message
    assert "dubious ownership" in message and "network" not in message
    assert f"git config --global --add safe.directory {repo.path}/.git" in message


def test_a_git_error_keeps_gits_own_cause() -> None:
    stderr = "fatal: the cause git names\nfatal: Could not read from remote repository.\n\nPlease make sure"
    made = translate(stderr, "fetch x")
    assert isinstance(made, RepoUnreachable) and "the cause git names" in made.message
