"""What a finished site build left beside its output, and the output's file names.

A local cache entry holds ``out/`` and small files about the build (``path.txt``: the way the
builder went; ``warnings.json``: its warnings); these read them back, tolerating an entry
from an older sitedeploy that lacks them.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import builders
from ..errors import BuildError
from ..release.manifest import files


def read_path(entry: Path) -> str:
    """Which way the builder went (incremental or full, and why), if it said."""
    try:
        return (entry / "path.txt").read_text().strip()
    except OSError:
        return ""


def read_warnings(entry: Path) -> tuple[list[str], int]:
    try:
        data = json.loads((entry / "warnings.json").read_text())
        return [str(line) for line in data["first"]], int(data["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return [], 0


def check_output_names(out: Path, job: builders.Job) -> None:
    """A file name a target cannot store (a hook may write anything) fails the build here,
    naming the file, instead of failing mid-upload with an encoding error."""
    for rel, _, _ in files(out):
        bad = any(ord(c) < 32 or ord(c) == 127 or 0xDC80 <= ord(c) <= 0xDCFF for c in rel)
        if bad:
            shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
            raise BuildError(
                f"site '{job.site}' ({job.label}): the build wrote {shown!r}, a file name that is not "
                "UTF-8 or contains control characters; rename the file it comes from"
            )
