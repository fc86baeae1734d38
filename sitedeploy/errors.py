"""The exceptions sitedeploy raises, what the CLI and the agent do with them, and the scrubbing
every message goes through before anyone sees it.

Every error a user can cause or fix is a :class:`SitedeployError`. Its message is one line
that names the file, key, host or bucket, says what was wrong and what to do next. Errors from
git, MkDocs, boto3 and paramiko are translated into this tree at the module that calls them
(``gitrun``, ``targets/s3/client``, ``targets/ssh/host`` and ``connect``), one table per
library, so nothing above those modules sees a third-party exception. An exception that no
table knows is a bug: it propagates, and the CLI reports it as an internal error (exit 70).

    SitedeployError                  exit 1
    ├── ConfigError                  exit 2: deploy.toml or a command-line flag is wrong
    ├── SourceError                  the content repo
    │   ├── RepoUnreachable      ↻   network, DNS, server down, git timed out
    │   ├── RepoAccessDenied         authentication failed, or no read access
    │   ├── NotARepository           source.repo (or the mirror) is no git repository
    │   ├── RefNotFound              unknown branch, tag or commit; a repository with no commits
    │   ├── GitFailed                any other git failure (names the git command)
    │   └── SignatureError           the commit is unsigned or signed by an untrusted key
    ├── BuildError                   a site failed to build (carries the tail of the tool's log)
    │   └── UnsupportedEngine        the site asks for an engine sitedeploy does not build (MkDocs 2)
    │   └── RulesError               a _redirects or _headers line is wrong (names file and line)
    ├── GateError                    the built release failed a pre-publish check (broken links)
    ├── PlanRefused                  the plan is unsafe (too many deletes, an empty build)
    ├── TargetError                  a target failed: names the target and the operation
    │   ├── Unreachable          ↻   connection refused or dropped, no route, unknown host name
    │   ├── TimedOut             ↻   no answer in time
    │   ├── AuthenticationFailed     wrong user, key or credentials
    │   ├── PermissionDenied         authenticated, but not allowed (file mode, IAM policy)
    │   ├── NotFound                 the bucket, folder or distribution does not exist
    │   ├── Conflict             ↻   someone else is changing the target right now
    │   │   ├── LockHeld         ↻   another deploy holds the target's lock (names the holder)
    │   │   └── LeaseLost        ↻   this run's lock lease ran out or was taken over: no switch
    │   ├── NoSpace                  disk or quota full on the server
    │   ├── ServerError          ↻   the server failed (S3 500/503, throttling, SFTP failure)
    │   ├── ReloadFailed             the switch happened, the web server's reload_command failed
    │   ├── Misconfigured            a local file the target reads is wrong (ssh_config)
    │   ├── StateDamaged             a state file on the target (control.json, …) is unreadable
    │   └── HostKeyError             an SSH host key is unknown, changed, revoked or unreadable
    └── RollbackError                there is nothing to roll back to, or the release is unknown

``retryable`` (↻) is a class attribute: it tells the agent whether trying the same commit again
later can succeed (a network blip can; a broken page or a wrong password cannot). A rare case
may override it per instance (an expired token is an authentication failure that a refresh
fixes by itself).

:func:`scrub` removes credentials (user-info of URLs, token-like query parameters, the secret
path of webhook URLs, values of secret-looking environment variables) and
:func:`escape_controls` makes terminal control sequences visible; the CLI and the agent's log
pass every line through both. Error messages are scrubbed when the error is made, so a message
copied into history, ``control.json`` or the agent's memory is clean too.
"""

from __future__ import annotations

import os
import re


class SitedeployError(Exception):
    """Base of every error sitedeploy reports to a user."""

    exit_code: int = 1
    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(scrub(message))
        if retryable is not None:
            self.retryable = retryable

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(SitedeployError):
    """deploy.toml (or a flag) is invalid. Collects every problem before raising."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = [scrub(p) for p in problems] if problems else [self.message]


# --- the content repository ------------------------------------------------------------------


class SourceError(SitedeployError):
    """The content repository could not be read, or a ref does not exist."""


class RepoUnreachable(SourceError):
    """The remote did not answer: network, DNS, server down, or git ran out of time."""

    retryable = True


class RepoAccessDenied(SourceError):
    """The remote refused us: wrong credentials, no read access, an untrusted host key."""


class NotARepository(SourceError):
    """``source.repo`` (or the local mirror) is not a git repository."""


class RefNotFound(SourceError):
    """A branch, tag or commit that the repository does not have (or it has no commits)."""


class GitFailed(SourceError):
    """Any other git failure; the message names the git command and what git said."""


class SignatureError(SourceError):
    """A commit is not signed by a trusted key."""


# --- building and checking ---------------------------------------------------------------------


class BuildError(SitedeployError):
    """A site failed to build. ``log_tail`` holds the last lines of the build tool's output."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = scrub(log_tail)


class UnsupportedEngine(BuildError):
    """The site asks for a build engine sitedeploy does not build (MkDocs 2: ``mkdocs.toml``,
    ``mkdocs>=2`` in requirements.txt, or a venv that resolved it); the message says what to
    pin or which engine to use instead. Retrying the same commit cannot help."""
class RulesError(BuildError):
    """A ``_redirects`` or ``_headers`` file (or mkdocs-redirects' ``redirect_maps``) is wrong:
    the message names the file and line (:mod:`sitedeploy.redirects`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class GateError(SitedeployError):
    """The built release failed a check that must pass before anything is published."""


class PlanRefused(SitedeployError):
    """Publishing the plan would be unsafe; a flag or config key can override."""


# --- targets ---------------------------------------------------------------------------------


class TargetError(SitedeployError):
    """A target failed in a way no subclass names more precisely."""


class Unreachable(TargetError):
    """The target's server could not be reached, or the connection dropped."""

    retryable = True


class TimedOut(TargetError):
    """The target's server did not answer in time."""

    retryable = True


class AuthenticationFailed(TargetError):
    """The server did not accept who we are (user, key, AWS credentials)."""


class PermissionDenied(TargetError):
    """We are known, but not allowed to do this (file owner and mode, IAM policy)."""


class NotFound(TargetError):
    """The bucket, folder, file or distribution the operation needs does not exist."""


class Conflict(TargetError):
    """Someone else is changing the target at the same moment; later it will be free."""

    retryable = True


class LockHeld(Conflict):
    """Another deploy or rollback holds the target's lock."""


class LeaseLost(Conflict):
    """This run's lock lease ran out or another run took it over; it stopped before switching."""


class NoSpace(TargetError):
    """The server's disk or the user's quota is full."""


class ServerError(TargetError):
    """The server failed (HTTP 5xx, throttling beyond the retries, a generic SFTP failure)."""

    retryable = True


class ReloadFailed(TargetError):
    """The release is live and recorded, but the target's ``reload_command`` failed."""


class Misconfigured(TargetError):
    """A local file the target reads (``ssh_config``) is wrong; names the file and line."""


class StateDamaged(TargetError):
    """A state file on the target was truncated or edited into something unreadable."""


class HostKeyError(TargetError):
    """An SSH server's host key is unknown, changed or revoked, or known_hosts is unreadable."""


class RollbackError(SitedeployError):
    """No release to roll back to, or the requested one is unknown."""


# --- scrubbing and escaping ------------------------------------------------------------------

_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/@\s\"'<>]+@", re.I)
_TOKEN_QUERY = re.compile(
    r"(?P<name>[?&;](?:access_?)?(?:token|key|sig|signature|secret|password|auth|code)=)[^&\s\"'<>]+",
    re.I,
)
# Webhook URLs that carry their secret in the path: Slack (/services/T../B../secret),
# Mattermost and Rocket.Chat (/hooks/<id>[/<token>]), Teams (/webhookb2/<ids>/IncomingWebhook/..),
# Discord (/api/webhooks/<id>/<token>), Google Chat's spaces (/v1/spaces/<id>/messages?key=&token=).
_WEBHOOK_PATH = re.compile(
    r"(?P<keep>://[^/\s\"'<>]+/(?:services|hooks|webhookb2|api/webhooks|webhooks|workflows)/)"
    r"[^\s?#\"'<>]+",
    re.I,
)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b")
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY|_KEY$", re.I)
MIN_SECRET_LENGTH = 8
"""Shorter values of secret-looking variables are not searched for: "1" or "true" would shred
every message, and a real secret is longer."""


def looks_secret(name: str) -> bool:
    """Does the environment variable ``name`` probably hold a credential?"""
    return bool(_SECRET_NAME.search(name))


def scrub(text: str) -> str:
    """``https://user:tok@host/x?token=abc`` → ``https://***@host/x?token=***``; webhook paths,
    AWS key ids and the values of secret-looking environment variables become ``***``."""
    text = _USERINFO.sub(r"\g<scheme>***@", text)
    text = _TOKEN_QUERY.sub(r"\g<name>***", text)
    text = _WEBHOOK_PATH.sub(r"\g<keep>***", text)
    text = _AWS_KEY_ID.sub("***", text)
    for value in _secret_values():
        text = text.replace(value, "***")
    return text


def _secret_values() -> list[str]:
    # Read at each call: a secret set after import (or by a test) is still found. Longest
    # first, so a secret containing another is replaced whole.
    found = {v for k, v in os.environ.items() if len(v) >= MIN_SECRET_LENGTH and looks_secret(k)}
    return sorted(found, key=len, reverse=True)


_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """Show control characters (and bidi overrides) as ``\\x1b``/``\\u202e`` instead of letting
    a file name retitle, recolour or rewrite the operator's terminal. Newline and tab stay."""
    return _CONTROLS.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """What may reach a terminal or a log: scrubbed, then control characters escaped."""
    return escape_controls(scrub(text))
