"""What each target follows, answered by one ``git ls-remote`` against the source.

``ref = "branch:main"`` follows a branch; ``ref = "tag:v*"`` follows the newest tag matching
the pattern (semantic-version precedence, :mod:`sitedeploy.source.tag_order`: ``v1.10.0`` after
``v1.9.0``, ``v1.4.0`` after ``v1.4.0-rc.1``), leaving pre-releases out unless the target sets
``prereleases = true``; no ``ref`` follows ``source.branch``, or the remote's default branch
(its HEAD).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from ..errors import ConfigError
from ..source.gitrun import QUERY_TIMEOUT, Git
from ..source.tag_order import newest

Refs = dict[str, str]
"""Full ref name → commit sha (annotated tags already peeled to their commit)."""

LS_REMOTE_TIMEOUT = QUERY_TIMEOUT


@dataclass(frozen=True)
class Tracked:
    kind: str  # "branch", "tag" or "head"
    pattern: str
    prereleases: bool = False
    """With a tag pattern: may a pre-release tag (``v1.4.0-rc.1``) be the one followed?"""

    def describe(self) -> str:
        return "HEAD" if self.kind == "head" else f"{self.kind}:{self.pattern}"


def parse_tracked(
    ref: str | None, branch: str | None, where: str = "ref", *, prereleases: bool = False
) -> Tracked:
    if ref is None:
        return Tracked("branch", branch) if branch else Tracked("head", "HEAD")
    kind, sep, pattern = ref.partition(":")
    if not sep or kind not in ("branch", "tag") or not pattern:
        raise ConfigError(
            f'{where}: use "branch:<name>" or "tag:<pattern>" (for example "tag:v*"), got {ref!r}'
        )
    return Tracked(kind, pattern, prereleases)


def ls_remote(url: str) -> Refs:
    """One query to the remote: every branch, tag and HEAD it has."""
    out = Git(remote=url).text(
        "ls-remote", "--", url, doing=f"list the refs of {url}", network=True, timeout=LS_REMOTE_TIMEOUT
    )
    return parse_ls_remote(out)


def parse_ls_remote(text: str) -> Refs:
    refs: Refs = {}
    peeled: Refs = {}
    for line in text.splitlines():
        sha, _, name = line.partition("\t")
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        elif name:
            refs[name] = sha
    refs.update(peeled)  # an annotated tag deploys the commit it points at
    return refs


def resolve(tracked: Tracked, refs: Refs) -> tuple[str, str] | None:
    """(ref name, commit) the target should serve, or None when the remote has no such ref."""
    if tracked.kind == "head":
        sha = refs.get("HEAD")
        return ("HEAD", sha) if sha else None
    if tracked.kind == "branch":
        name = f"refs/heads/{tracked.pattern}"
        return (name, refs[name]) if name in refs else None
    names = [n.removeprefix("refs/tags/") for n in refs if n.startswith("refs/tags/")]
    tags = [n for n in names if fnmatch.fnmatchcase(n, tracked.pattern)]
    tag = newest(tags, tracked.pattern, prereleases=tracked.prereleases)
    return (f"refs/tags/{tag}", refs[f"refs/tags/{tag}"]) if tag else None
