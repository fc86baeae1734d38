"""Engine previews: ``previews = ["engine:zensical"]`` publishes the commit the target follows
(the tip of its source branch) built with another engine, at ``<preview_path>/en-<engine>/``,
so reviewers click through both before the team switches (issue 26; ``sitedeploy compare``
reports the same differences in writing).

The slug lives in its own namespace, ``en-``: a branch's slug always starts ``br-`` and a
request's ``pr-``/``mr-`` (:mod:`.previews`), so no branch or request can take an engine
preview's URL, nor one of theirs. The preview is an ordinary preview line: built at the
``branch-preview`` trust level, every page ``noindex``, moved when the branch moves, removed
when the spec goes. Its label (``engine:zensical@main``) says which engine and branch it is.
"""

from __future__ import annotations

import dataclasses

from ..build import SiteJob

ENGINES = ("mkdocs", "properdocs", "zensical")
PREFIX = "en-"
_LABEL = "engine:"


def engine_slug(engine: str) -> str:
    return f"{PREFIX}{engine}"


def engine_previews(refs: dict[str, str], engine: str, branch: str | None) -> list[tuple[str, str, str, str]]:
    """(ref, label, slug, commit) of the engine preview: the branch's tip, if it exists."""
    ref = f"refs/heads/{branch}" if branch else None
    if engine not in ENGINES or ref is None or ref not in refs:
        return []
    return [(f"{ref}#{engine}", f"{_LABEL}{engine}@{branch}", engine_slug(engine), refs[ref])]


def engine_of(label: str) -> str | None:
    """The engine an engine preview's label names (``engine:zensical@main``), else None."""
    if not label.startswith(_LABEL):
        return None
    engine = label[len(_LABEL) :].partition("@")[0]
    return engine if engine in ENGINES else None


def with_engine(jobs: list[SiteJob], engine: str) -> list[SiteJob]:
    """The sites built with ``engine`` (a static site stays a copy); the kind is part of each
    build's key, so the engine's output never reuses the usual builder's cached build."""
    return [job if job.kind == "static" else dataclasses.replace(job, kind=engine) for job in jobs]
