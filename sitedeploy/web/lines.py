"""Versions and previews for the report: each line with its commit, URL and (previews) expiry."""

from __future__ import annotations

import calendar
import time

from ..config import Config
from ..errors import SitedeployError
from ..versions.info import family_info
from ..versions.layout import Family
from ..versions.state import read_state
from .model import PreviewView, VersionView
from .pulse import iso

DAY = 86400.0


def gather(config: Config, now: float) -> tuple[list[VersionView], list[PreviewView]]:
    versions: list[VersionView] = []
    previews: list[PreviewView] = []
    for name, cfg in config.targets.items():
        try:
            if cfg.versions:
                versions += _versions(Family.of(config, name, "versions"))
            if cfg.previews:
                previews += _previews(Family.of(config, name, "previews"), now)
        except SitedeployError:
            continue  # the target's row already says it cannot be read
    return versions, previews


def _versions(family: Family) -> list[VersionView]:
    info = family_info(family)
    base = _site_of(family)
    return [
        VersionView(
            family.target,
            v.version,
            v.title,
            v.aliases,
            v.commit,
            f"{base}{v.version}/" if base else None,
            info.default in (v.version, *v.aliases),
            v.deployed_at,
        )
        for v in info.versions
    ]


def _previews(family: Family, now: float) -> list[PreviewView]:
    info = family_info(family)
    with family.root() as root:
        updated = {
            line.name: line.updated_at for line in read_state(root, root.live_release(), "previews").lines
        }
    max_age = family.cfg.preview_max_age_days * DAY
    out = []
    for v in info.versions:
        stamp = _seconds(updated.get(v.version, ""))
        expires = stamp + max_age if stamp is not None and max_age else None
        out.append(
            PreviewView(
                family.target,
                v.version,
                v.ref,
                v.commit,
                family.url(v.version),
                v.deployed_at,
                iso(expires) if expires is not None else None,
                max(0.0, expires - now) if expires is not None else None,
            )
        )
    return out


def _site_of(family: Family) -> str | None:
    from .gather import public_url

    url = public_url(family.cfg)
    return url if url is None or url.endswith("/") else url.rsplit("/", 1)[0] + "/"


def _seconds(stamp: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None
