"""Folders sitedeploy makes inside a repository carry their own ``.gitignore``.

The state folder (``.sitedeploy/``: the mirror, build caches) and a local target (``public/``)
usually sit inside the content repository. Without sitedeploy's lines in the repo's
``.gitignore``, ``git add -A`` would commit the mirror into itself, and every later fetch would
send the whole history again. A ``.gitignore`` holding ``*`` inside the folder prevents that
whatever the repo's own file says.
"""

from __future__ import annotations

from pathlib import Path

# Names only sitedeploy makes: a folder holding one of them is ours to mark (an upgrade).
OURS = ("mirror.git", "builds", "releases", "current", ".sitedeploy")
TEXT = "# made by sitedeploy: nothing in this folder belongs in git\n*\n"


def ignored_folder(folder: Path) -> Path:
    """Make ``folder`` if needed; mark it ignored when sitedeploy made it (never a user's own
    folder that happens to be named as a target)."""
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".gitignore"
    if not marker.exists() and (made or any((folder / name).exists() for name in OURS)):
        marker.write_text(TEXT, encoding="utf-8")
    return folder
