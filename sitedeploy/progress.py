"""How long-running stages report progress without knowing who is watching.

Library code calls ``progress.step("building docs")`` and wraps loops in
``with progress.bar("uploading", total) as advance: ... advance(1)``. The CLI passes a rich
progress display on a terminal and plain log lines otherwise; tests and the agent pass
:data:`SILENT`.

Stages that may take long run in ``with stage(progress, "build docs", say="building …")``:
``say`` is printed only if the stage is still running after :data:`ANNOUNCE_AFTER` seconds
(a fast step stays quiet, a slow one never runs in silence), and a :class:`Timed` progress
keeps each stage's time for the summary of where the time went.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

ANNOUNCE_AFTER = 1.0
"""Seconds a stage may run before it says what it is doing."""


class Progress(Protocol):
    def step(self, message: str) -> None: ...

    def bar(self, description: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
        """A context whose value is ``advance(n)``: call it as work completes."""


class Silent:
    def step(self, message: str) -> None:
        pass

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n: None


SILENT = Silent()


class Timed:
    """A progress that also keeps how long each stage took (``stage``), in the order they began;
    a stage inside another (the images of a site's build) is shown within it."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner
        self.stages: list[tuple[str, float, int]] = []
        """(name, seconds, depth): depth 0 for a stage that ran inside no other."""
        self._open = 0

    def step(self, message: str) -> None:
        self.inner.step(message)

    def bar(self, description: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
        return self.inner.bar(description, total)

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        index, start = len(self.stages), time.monotonic()
        self.stages.append((name, 0.0, self._open))
        self._open += 1
        try:
            yield
        finally:
            self._open -= 1
            self.stages[index] = (name, time.monotonic() - start, self.stages[index][2])

    def summary(self, least: float = 0.05) -> str:
        """``time: fetch 0.4 s, build docs 12.1 s (images docs 3.0 s), publish local 0.2 s``;
        a stage within another is left out when it took under ``least`` seconds."""
        parts: list[str] = []
        for name, seconds, depth in self.stages:
            if depth and parts:
                if seconds >= least:
                    parts[-1] += f" ({name} {seconds:.1f} s)"
            else:
                parts.append(f"{name} {seconds:.1f} s")
        return "time: " + ", ".join(parts) if parts else ""


@contextmanager
def stage(progress: Progress, name: str, *, say: str = "") -> Iterator[None]:
    """Time a stage for a :class:`Timed` progress; say ``say`` if it runs long."""
    announce = threading.Timer(ANNOUNCE_AFTER, progress.step, [say]) if say else None
    if announce is not None:
        announce.daemon = True
        announce.start()
    timing = progress.timing(name) if isinstance(progress, Timed) else nullcontext()
    try:
        with timing:
            yield
    finally:
        if announce is not None:
            announce.cancel()
