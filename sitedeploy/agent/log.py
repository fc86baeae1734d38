"""One line per event: ``key=value`` pairs, or JSON objects with ``--log-format json``.

Credentials never reach the log: fields whose name sounds secret are dropped, and every line
goes through :func:`~sitedeploy.errors.scrub` as a whole (nested values and ``str()`` of
objects included), so URLs lose their user-info, token-like query parameters and webhook
secrets. Control characters in a value (a file name with an escape sequence) never reach the
log raw: both formats write non-bare strings with ``json.dumps``, which escapes them (``\\u001b``).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from ..errors import scrub

__all__ = ["EventLog", "LogFormat", "scrub"]  # scrub: for modules that import it from here

LogFormat = Literal["kv", "json"]
_SECRET_KEY = re.compile(r"secret|password|passphrase|token|signature|authorization|key$", re.I)
_BARE = re.compile(r"^[\w.:/@+-]+$")


class EventLog:
    def __init__(self, fmt: LogFormat = "kv", stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.stream = stream
        self._lock = threading.Lock()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        """Called with each record, scrubbed as logged (the status page's activity, forge posts)."""

    def event(self, name: str, level: str = "info", **fields: Any) -> None:
        record: dict[str, Any] = {"ts": _now(), "level": level, "event": name}
        for key, value in fields.items():
            if value is None or _SECRET_KEY.search(key):
                continue
            record[key] = value
        line = scrub(json.dumps(record, default=str) if self.fmt == "json" else _kv(record))
        stream = self.stream or sys.stderr
        with self._lock:
            stream.write(line + "\n")
            stream.flush()
        if self.listeners:
            scrubbed = json.loads(scrub(json.dumps(record, default=str)))
            for listener in list(self.listeners):
                listener(scrubbed)

    def error(self, name: str, **fields: Any) -> None:
        self.event(name, "error", **fields)

    def warning(self, name: str, **fields: Any) -> None:
        self.event(name, "warning", **fields)


def _kv(record: dict[str, Any]) -> str:
    return " ".join(f"{k}={_kv_value(v)}" for k, v in record.items())


def _kv_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if text and _BARE.match(text) else json.dumps(text)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class LogProgress:
    """Build progress as log events (the agent has no terminal)."""

    def __init__(self, log: EventLog, target: str) -> None:
        self.log, self.target = log, target

    def step(self, message: str) -> None:
        self.log.event("step", target=self.target, msg=message)

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n: None
