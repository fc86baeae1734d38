"""The command line. ``main`` defines the group and the error handling; ``verbs``, ``inspect``,
``unlock``, ``versions`` and ``agent`` register the subcommands on it. Nothing else in the
package imports from here."""

from . import agent, compare, inspect, nginx, unlock, verbs, versions  # noqa: F401  (registers the subcommands on ``cli``)
from .main import cli, main

__all__ = ["cli", "main"]
