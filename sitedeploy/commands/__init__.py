"""One function per command: the library API the CLI and the agent call.

Each function computes its result (a plan, a release, a status) and returns it; printing is
the CLI's job. Every change to a target goes through the release transaction
(:mod:`sitedeploy.release.transaction`): deploy and the rebuilding rollback build first and
take the target's lock only to prepare and switch; rollback to a retained release, repair and
the agent's automatic revert take it at once.

A command over several targets takes an optional ``failures`` list: given one, a target that
fails (unreachable, locked, refused) is recorded there as a ``TargetFailed`` and the next target
still runs (``common.each_target``); without it, the first failure is raised.
"""

from ..source.signatures import verify_signature
from .common import (
    DeployResult,
    Failures,
    LazyBuild,
    TargetFailed,
    TargetStatus,
    VerifyResult,
    open_source,
    rules_for,
    synced_source,
)
from .deploy import build, deploy, publish
from .inspect import history, status, verify, verify_target
from .rollback import mark_bad, resume, revert_failed_switch, rollback, suspend, switch_back, unmark

__all__ = [
    "DeployResult",
    "Failures",
    "LazyBuild",
    "TargetFailed",
    "TargetStatus",
    "VerifyResult",
    "build",
    "deploy",
    "history",
    "mark_bad",
    "open_source",
    "publish",
    "resume",
    "revert_failed_switch",
    "rollback",
    "rules_for",
    "status",
    "suspend",
    "switch_back",
    "synced_source",
    "unmark",
    "verify",
    "verify_signature",
    "verify_target",
]
