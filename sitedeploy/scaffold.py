"""``sitedeploy init``: a deploy.toml and a one-page MkDocs site to start from."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

DEPLOY_TOML = """\
# sitedeploy configuration: see the README's configuration reference.
[source]
repo = "."            # this repository; a URL works too
# branch = "main"     # default: the repository's default branch

[[sites]]
name = "docs"
path = "sites/docs"   # has mkdocs.yml: built with MkDocs; otherwise published as is
mount = "/"

[targets.local]
type = "local"
path = "public"       # releases/, current -> releases/<id>, .sitedeploy/
keep_releases = 10
"""

FILES = {
    "deploy.toml": DEPLOY_TOML,
    "sites/docs/mkdocs.yml": "site_name: My Docs\nnav:\n  - Home: index.md\n",
    "sites/docs/docs/index.md": (
        "# Welcome\n\nEdit `sites/docs/docs/index.md`, commit, and run `sitedeploy deploy`.\n"
    ),
    ".gitignore": ".sitedeploy/\npublic/\n",
}


def scaffold(directory: Path) -> list[Path]:
    """Write the starter files; refuse to overwrite any that exist."""
    existing = [directory / name for name in FILES if (directory / name).exists()]
    if existing:
        raise ConfigError(f"{existing[0]}: already exists; sitedeploy init never overwrites files")
    written = []
    for name, text in FILES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
