"""Print the reliability tables after the run (see report.py), whatever ``-s`` says."""

from __future__ import annotations

import pytest

from tests.reliability import report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    text = report.render()
    if not text:
        return
    terminalreporter.section("reliability figures")
    terminalreporter.write(text + "\n")
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    (base / "reliability-report.txt").write_text(text)
