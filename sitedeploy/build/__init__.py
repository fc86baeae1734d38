"""The build room: a commit's sites built into one release tree.

- :mod:`.planning`: :func:`plan`, the build plan of a commit (sites, key, signature), built once;
- :mod:`.sites`: every site of a commit built (or reused from its cache) by its builder;
- :mod:`.release_tree`: the release tree assembled from the site outputs with hard links;
- :mod:`.mounts`: which site is published at which path of the release;
- :mod:`.linkgate`: the links of the assembled release checked before it may publish.

The builders themselves are in :mod:`sitedeploy.builders`; the sandbox they run in is
:mod:`sitedeploy.sandbox`.
"""

from .planning import BuildPlan, plan
from .sites import (
    MKDOCS_FILES,
    ROOT_SITE_FILES,
    ROOT_SITE_NAME,
    TRUST_LEVELS,
    Built,
    SiteJob,
    SiteResult,
    Trust,
    build_release,
    discover_sites,
    release_key,
    site_jobs,
    trust_dir,
)

__all__ = [
    "BuildPlan",
    "plan",
    "MKDOCS_FILES",
    "ROOT_SITE_FILES",
    "ROOT_SITE_NAME",
    "TRUST_LEVELS",
    "Built",
    "SiteJob",
    "SiteResult",
    "Trust",
    "build_release",
    "discover_sites",
    "release_key",
    "site_jobs",
    "trust_dir",
]
