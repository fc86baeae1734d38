"""Progress for people: a rich progress bar on a terminal, plain lines otherwise. Step messages
carry file names from the content repo: scrubbed and escaped like everything else printed."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import clean


class TerminalProgress:
    def __init__(self, console: Console) -> None:
        self.console = console

    def step(self, message: str) -> None:
        self.console.print(f"[dim]·[/dim] {escape(clean(message))}", highlight=False)

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(description, total=total)
            yield lambda n: progress.advance(task, n)


class LineProgress:
    """For logs and pipes: one line per step, no bars."""

    def step(self, message: str) -> None:
        print(clean(message), file=sys.stderr, flush=True)

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n: None


def for_stream(quiet: bool) -> TerminalProgress | LineProgress | None:
    """None when quiet; a bar on a terminal; lines otherwise."""
    if quiet:
        return None
    console = Console(stderr=True)
    return TerminalProgress(console) if console.is_terminal else LineProgress()
