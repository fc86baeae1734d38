"""Web servers reached over SSH (see :mod:`.target`). paramiko is imported only here."""

from .target import SSHTarget

__all__ = ["SSHTarget"]
