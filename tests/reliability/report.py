"""The figures the reliability suite prints at the end of a run (and the manual's "Guarantees" page quotes).

Tests add rows with :func:`row`; the conftest's terminal-summary hook prints every table and
writes them to ``<basetemp>/reliability-report.txt``, so CI logs show them without ``-s``.
"""

from __future__ import annotations

from collections import defaultdict

TABLES: dict[str, list[str]] = defaultdict(list)
HEADERS: dict[str, str] = {}


def table(name: str, header: str) -> None:
    HEADERS[name] = header


def row(name: str, line: str) -> None:
    TABLES[name].append(line)


def render() -> str:
    out = []
    for name, rows in TABLES.items():
        out.append(f"== {name} ==")
        if name in HEADERS:
            out.append(HEADERS[name])
        out.extend(rows)
        out.append("")
    return "\n".join(out)


def readers(name: str, switches: int, requests: int, failures: int, note: str = "") -> None:
    """One row of the readers table (tests/test_ssh_nginx.py reports through it too)."""
    row("readers", f"{name:16} {switches:>8} {requests:>9} {failures:>8}{note}")
