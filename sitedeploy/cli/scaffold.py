"""``sitedeploy init``: adopt a repository as it is, or start one from an example site.

A root ``mkdocs.yml`` (the layout ``mkdocs new .`` makes) becomes one site at ``/``; folders
under ``sites/`` become one site each; an empty folder gets a one-page MkDocs site. Existing
files are never overwritten: sitedeploy's lines are appended to an existing ``.gitignore``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

ROOT_SITE_FILES = ("mkdocs.yml", "mkdocs.yaml", "zensical.toml")
IGNORED = (".sitedeploy/", "public/")

DEPLOY_TOML = """\
# sitedeploy configuration: every key is in the manual's configuration reference.
# [[sites]] and [images] are read from the commit being deployed: commit changes to them.
[source]
repo = "."            # this repository; a URL works too
# branch = "main"     # default: the repository's default branch

{sites}
[targets.local]
type = "local"
path = "public"       # releases/, current -> releases/<id>, .sitedeploy/
keep_releases = 10
"""

SITE = '[[sites]]\nname = "{name}"\npath = "{path}"{comment}\nmount = "{mount}"\n'

EXAMPLE_FILES = {
    "sites/docs/mkdocs.yml": "site_name: My Docs\nnav:\n  - Home: index.md\n",
    "sites/docs/docs/index.md": (
        "# Welcome\n\nEdit `sites/docs/docs/index.md`, commit, and run `sitedeploy deploy`.\n"
    ),
}


@dataclass
class Scaffolded:
    layout: str
    """What was found: ``root mkdocs.yml``, ``2 sites under sites/`` or ``example site``."""
    in_git_repo: bool
    written: list[Path] = field(default_factory=list)
    appended: list[Path] = field(default_factory=list)

    def next_step(self) -> str:
        if not self.in_git_repo:
            return "next: run 'git init', commit these files, then run 'sitedeploy deploy'"
        return "next: commit them, then run 'sitedeploy deploy'"


def scaffold(directory: Path) -> Scaffolded:
    """Write deploy.toml for what ``directory`` holds, and sitedeploy's .gitignore lines."""
    config = directory / "deploy.toml"
    if config.exists():
        raise ConfigError(f"{config}: already exists; sitedeploy init never overwrites files")
    layout, sites, files = _detect(directory)
    result = Scaffolded(layout, _in_git_repo(directory))
    for name, text in {**files, "deploy.toml": DEPLOY_TOML.format(sites=sites)}.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.written.append(path)
    _ignore(directory / ".gitignore", result)
    return result


def _detect(directory: Path) -> tuple[str, str, dict[str, str]]:
    """(layout, the [[sites]] tables, files to write) for what the folder already holds."""
    root = next((name for name in ROOT_SITE_FILES if (directory / name).is_file()), None)
    if root is not None:
        comment = f"            # the repository's root: {root} is here"
        return f"root {root}", SITE.format(name="docs", path=".", comment=comment, mount="/"), {}
    folders = sorted(p.name for p in (directory / "sites").glob("*") if p.is_dir())
    if folders:
        tables = [
            SITE.format(
                name=name, path=f"sites/{name}", comment="", mount="/" if len(folders) == 1 else f"/{name}/"
            )
            for name in folders
        ]
        return f"{len(folders)} site(s) under sites/", "\n".join(tables), {}
    clash = [directory / name for name in EXAMPLE_FILES if (directory / name).exists()]
    if clash:
        raise ConfigError(f"{clash[0]}: already exists; sitedeploy init never overwrites files")
    comment = "   # has mkdocs.yml: built with MkDocs; otherwise published as is"
    return (
        "example site",
        SITE.format(name="docs", path="sites/docs", comment=comment, mount="/"),
        EXAMPLE_FILES,
    )


def _ignore(gitignore: Path, result: Scaffolded) -> None:
    """Append the lines sitedeploy needs, keeping whatever the file already says."""
    text = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in IGNORED if line not in present and line.rstrip("/") not in present]
    if not missing:
        return
    existed = gitignore.exists()
    lead = "\n" if text and not text.endswith("\n") else ""
    header = "# sitedeploy: state and the local target\n" if existed else ""
    with gitignore.open("a", encoding="utf-8") as out:
        out.write(lead + header + "".join(f"{line}\n" for line in missing))
    (result.appended if existed else result.written).append(gitignore)


def _in_git_repo(directory: Path) -> bool:
    start = directory.resolve()
    return any((folder / ".git").exists() for folder in (start, *start.parents))
