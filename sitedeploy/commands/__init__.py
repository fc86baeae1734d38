"""One function per command: the library API the CLI and the agent call.

Each function computes its result (a plan, a release, a status) and returns it; printing is
the CLI's job. Deploy and rollback hold the target's lock and follow one order, so a crash
anywhere leaves the target on a recorded release:

    stage release (invisible) → write release record → switch → append history → prune

A crash before the switch leaves the old release live (the staged folder is reused or
cleaned next time); a crash after the switch but before the history entry is noticed by the
next run, which records the live release then (``recover``).
"""

from .common import (
    DeployResult,
    LazyBuild,
    TargetStatus,
    VerifyResult,
    open_source,
    opened,
    previous_release,
    synced_source,
)
from .deploy import build, check_plan, deploy, publish
from .inspect import history, status, verify, verify_target
from .rollback import resume, revert_failed_switch, rollback, suspend

__all__ = [
    "DeployResult",
    "LazyBuild",
    "TargetStatus",
    "VerifyResult",
    "build",
    "check_plan",
    "deploy",
    "history",
    "open_source",
    "opened",
    "previous_release",
    "publish",
    "resume",
    "revert_failed_switch",
    "rollback",
    "status",
    "suspend",
    "synced_source",
    "verify",
    "verify_target",
]
