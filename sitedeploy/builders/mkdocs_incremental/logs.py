"""What MkDocs logged while a page was processed, kept to replay when the page is reused."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class LogCapture(logging.Handler):
    """Records what MkDocs logs while one page is processed, to replay when it is reused
    (so warnings, and ``strict`` mode counting them, are the same as in a full build).
    One handler for the whole build: a handler per page costs a lock and a registration."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[list[Any]] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.records is not None:
            self.records.append([record.name, record.levelno, record.getMessage()])


_CAPTURE = LogCapture()
_MKDOCS_LOG = logging.getLogger("mkdocs")


@contextmanager
def capturing() -> Iterator[list[list[Any]]]:
    records: list[list[Any]] = []
    outer, _CAPTURE.records = _CAPTURE.records, records
    if _CAPTURE not in _MKDOCS_LOG.handlers:
        _MKDOCS_LOG.addHandler(_CAPTURE)
    try:
        yield records
    finally:
        _CAPTURE.records = outer


def replay(records: list[list[Any]]) -> None:
    for name, level, message in records:
        # The message as the format string (no args, so no %-formatting): MkDocs' duplicate
        # filter compares ``record.msg``, which must be the text as in a full build.
        logging.getLogger(name).log(level, message)
