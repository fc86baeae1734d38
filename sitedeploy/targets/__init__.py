"""Targets: where a release is published. ``open_target`` picks the implementation.

boto3 and paramiko are imported only when a target of their type is opened, so commands that
never touch S3 or SSH (and the agent's idle tick) do not pay for importing them.
"""

from __future__ import annotations

from ..config import Config, LocalTargetConfig, S3TargetConfig, SSHTargetConfig, TargetConfig
from ..redirects.reload import command_argv
from .base import Drift, Target, TransferStats


def open_target(name: str, target: TargetConfig, config: Config) -> Target:
    if isinstance(target, LocalTargetConfig):
        from .local import LocalTarget

        local = LocalTarget(name, config.resolve(target.path))
        local.reload_command = command_argv(target.reload_command)
        return local
    if isinstance(target, SSHTargetConfig):
        from .ssh.target import SSHTarget

        return SSHTarget(name, target)
    if isinstance(target, S3TargetConfig):
        from .s3.target import S3Target

        return S3Target(name, target)
    raise TypeError(f"no publisher for {type(target).__name__}")


__all__ = ["Drift", "Target", "TransferStats", "open_target"]
