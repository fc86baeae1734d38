"""The exceptions sitedeploy raises, and what the CLI and the agent do with them.

Every error a user can cause or fix is a :class:`SitedeployError`. Its message is one line
that names the file, key, host or bucket, says what was wrong and what to do next. Errors from
git, MkDocs, boto3 and paramiko are translated into this tree at the module that calls them,
so nothing above that module ever sees a third-party exception.

    SitedeployError              exit 1
    ├── ConfigError              exit 2: deploy.toml or a command-line flag is wrong
    ├── SourceError              the content repo: unknown ref, unreachable remote, bad path
    │   └── SignatureError       the commit is unsigned or signed by an untrusted key
    ├── BuildError               a site failed to build (carries the tail of the tool's log)
    ├── GateError                the built release failed a pre-publish check (broken links)
    ├── PlanRefused              the plan is unsafe (too many deletes, an empty build)
    ├── TargetError              a target failed: names the target and the operation
    │   ├── LockHeld             another deploy holds the target's lock (names the holder)
    │   └── HostKeyError         an SSH host key is unknown or changed (never auto-accepted)
    └── RollbackError            there is nothing to roll back to, or the release is unknown

``retryable`` tells the agent whether trying the same commit again later can succeed
(a network blip can; a broken page cannot).
"""

from __future__ import annotations


class SitedeployError(Exception):
    """Base of every error sitedeploy reports to a user."""

    exit_code: int = 1
    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
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
        self.problems = problems or [message]


class SourceError(SitedeployError):
    """The content repository could not be read, or a ref does not exist."""


class SignatureError(SourceError):
    """A commit is not signed by a trusted key."""


class BuildError(SitedeployError):
    """A site failed to build. ``log_tail`` holds the last lines of the build tool's output."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class GateError(SitedeployError):
    """The built release failed a check that must pass before anything is published."""


class PlanRefused(SitedeployError):
    """Publishing the plan would be unsafe; a flag or config key can override."""


class TargetError(SitedeployError):
    """A target failed. Network trouble is retryable; a permission problem is not."""


class LockHeld(TargetError):
    """Another deploy or rollback holds the target's lock."""

    retryable = True


class HostKeyError(TargetError):
    """An SSH server's host key is unknown or does not match known_hosts."""


class RollbackError(SitedeployError):
    """No release to roll back to, or the requested one is unknown."""
