"""How long-running stages report progress without knowing who is watching.

Library code calls ``progress.step("building docs")`` and wraps loops in
``with progress.bar("uploading", total) as advance: ... advance(1)``. The CLI passes a rich
progress display on a terminal and plain log lines otherwise; tests and the agent pass
:data:`SILENT`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


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
