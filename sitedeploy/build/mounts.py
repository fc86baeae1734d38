"""Sites share one published tree: refuse only a real conflict between their outputs.

Mounts may nest — a landing page at ``/`` with docs at ``/docs/`` and a blog at ``/blog/`` —
because each site keeps its own search index, sitemap and ``404.html`` under its own mount.
What cannot work, and is found here from the built outputs before anything is assembled:

- two sites producing the same output path (one file would silently replace the other);
- a site mounted over pages of another: the outer site has ``docs/old.html`` and another site
  is mounted at ``/docs/``, so the inner site would serve a page it does not know about (not in
  its search, its sitemap or its navigation), or the outer site has a file named ``docs``
  where the inner site needs a folder;
- a site writing sitedeploy's own release marker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ConfigError

MAX_NAMED = 3


@dataclass(frozen=True)
class SiteFiles:
    name: str
    mount: str
    """Normalized: ``/`` or ``/docs/``."""
    paths: Iterable[str]
    """Paths relative to the site's own output folder."""


STATE_PREFIX = ".sitedeploy/"
"""Where targets keep their state (on S3, beside the site's keys): no site may write there."""


def check_outputs(sites: list[SiteFiles], reserved: tuple[str, ...] = ()) -> None:
    """Raise ConfigError naming both sites and the path when two outputs collide."""
    owner: dict[str, SiteFiles] = {}
    for site in sites:
        prefix = site.mount.lstrip("/")
        for path in site.paths:
            full = prefix + path
            if full in reserved or full.startswith(STATE_PREFIX):
                raise ConfigError(
                    f"site '{site.name}' writes {full}, a path sitedeploy keeps for its own state "
                    "and release marker on every target; remove or rename that file"
                )
            other = owner.setdefault(full, site)
            if other is not site:
                raise ConfigError(
                    f"sites '{other.name}' and '{site.name}' both produce {full}; move one site's "
                    "mount or remove the file from one of them"
                )
    for inner in sites:
        _check_inner(inner, sites, owner)


def _check_inner(inner: SiteFiles, sites: list[SiteFiles], owner: dict[str, SiteFiles]) -> None:
    """No site mounted around ``inner`` may have files inside ``inner``'s folder."""
    folder = inner.mount.lstrip("/")
    deeper = [s.mount.lstrip("/") for s in sites if _inside(s.mount, inner.mount)]
    covered = sorted(
        path
        for path, site in owner.items()
        if _inside(inner.mount, site.mount)
        and (path.startswith(folder) or path == folder.rstrip("/"))
        and not any(path.startswith(d) for d in deeper)  # checked when that deeper site is
    )
    if covered:
        outer = owner[covered[0]].name
        shown = ", ".join(covered[:MAX_NAMED]) + (" …" if len(covered) > MAX_NAMED else "")
        raise ConfigError(
            f"site '{inner.name}' is mounted at {inner.mount}, over {shown} of site '{outer}'; "
            f"remove {'those files' if len(covered) > 1 else 'that file'} from '{outer}' "
            f"or mount '{inner.name}' elsewhere"
        )


def _inside(mount: str, outer: str) -> bool:
    """``mount`` is strictly inside ``outer`` (``/docs/api/`` in ``/docs/``, ``/docs/`` in ``/``)."""
    return mount != outer and mount.startswith(outer)
