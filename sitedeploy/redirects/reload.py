"""The target's ``reload_command``, run after a switch so nginx reads the new release's rules.

nginx reads the includes of the live release (:mod:`.nginx`) only when it (re)loads, so a
local or SSH target with rules names the command that reloads it (``["sudo", "systemctl",
"reload", "nginx"]``, or a string split like a shell would, with :func:`shlex.split`). It is
never run through a shell on this machine; on an SSH host it runs as ``sh -c 'exec "$@"'`` with
the words quoted, on every host, after every host switched.

A failed reload does not undo the switch: the release is live and recorded (its files are
served; only the rules are the old ones until nginx reloads), so the deploy ends with one
line saying so and what to run (:class:`~sitedeploy.errors.ReloadFailed`, non-zero exit).
"""

from __future__ import annotations

import shlex
import subprocess  # nosec B404: an argv list the operator configured, never a shell

from ..errors import ReloadFailed

TIMEOUT = 60.0
"""Seconds a reload may take (``systemctl reload`` returns once nginx has the new config)."""


def command_argv(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """The configured command as words (empty: none configured)."""
    if value is None:
        return ()
    words = tuple(shlex.split(value)) if isinstance(value, str) else tuple(value)
    if not words or not all(isinstance(w, str) and w for w in words):
        raise ValueError('reload_command must name a program, e.g. "sudo systemctl reload nginx"')
    return words


def failed(target: str, argv: tuple[str, ...], why: str, where: str = "") -> ReloadFailed:
    shown = shlex.join(argv)
    at = f" on {where}" if where else ""
    return ReloadFailed(
        f"target '{target}': the new release is live and recorded, but '{shown}'{at} failed ({why}), "
        "so the server may still answer with the previous release's redirects and headers; fix "
        f"the server and run '{shown}' yourself"
    )


def run_here(target: str, argv: tuple[str, ...]) -> None:
    """Run the reload on this machine; raise :class:`ReloadFailed` in one line on failure."""
    try:
        done = subprocess.run(  # nosec B603: the operator's argv, no shell
            list(argv), capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False
        )
    except FileNotFoundError:
        raise failed(target, argv, f"no program {argv[0]!r}") from None
    except subprocess.TimeoutExpired:
        raise failed(target, argv, f"no answer in {TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise failed(target, argv, exc.strerror or str(exc)) from None
    if done.returncode != 0:
        said = " ".join(done.stderr.decode(errors="replace").strip().splitlines()[-1:])[:200]
        raise failed(target, argv, f"exit {done.returncode}" + (f": {said}" if said else ""))
