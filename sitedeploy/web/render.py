"""The report as HTML (Jinja2 with autoescape on) and as SVG badges.

Every string on the page comes from git, a build or a target (commit subjects, branch names,
errors), so the template never marks anything safe: Jinja2 escapes ``<``, ``>``, ``&`` and both
quotes in every ``{{ }}``. The page carries no inline script or style, so the server's
Content-Security-Policy (``script-src 'self'``) forbids any script a string might smuggle in.
Badges escape the target name for XML the same way.
"""

from __future__ import annotations

import calendar
import functools
import importlib.resources
import time
from typing import Any

import jinja2
from markupsafe import escape

from .model import StatusReport

STATIC = {"status.css": "text/css; charset=utf-8", "status.js": "text/javascript; charset=utf-8"}
BADGE_COLOURS = {
    "in sync": "#2e7d32",
    "behind": "#b26a00",
    "deploying": "#b26a00",
    "failed": "#c62828",
    "drifted": "#c62828",
    "pinned": "#1565c0",
    "suspended": "#1565c0",
    "unknown": "#616161",
}
_BADGE_TEXT = {
    "in-sync": "in sync",
    "behind": "behind",
    "never-deployed": "behind",
    "deploying": "deploying",
    "failed": "failed",
    "drifted": "drifted",
    "pinned": "pinned",
    "suspended": "suspended",
}


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sitedeploy.web", "templates"),
        autoescape=True,  # every template, whatever its name: the page is all untrusted text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ago"] = ago
    env.filters["seconds"] = seconds_text
    return env


def page(report: StatusReport, *, refresh: float) -> bytes:
    template = _env().get_template("status.html")
    now = _epoch(report.generated_at) or time.time()
    return template.render(r=report, now=now, refresh=int(refresh)).encode()


def static(name: str) -> bytes | None:
    if name not in STATIC:
        return None
    return importlib.resources.files("sitedeploy.web").joinpath("templates", name).read_bytes()


def badge(label: str, state: str) -> bytes:
    """A flat two-part badge: ``label | in sync``. Widths follow the text (about 7 px a letter)."""
    text = _BADGE_TEXT.get(state, "unknown")
    colour = BADGE_COLOURS[text]
    left, right = 10 + 7 * len(label), 10 + 7 * len(text)
    width = left + right
    name, value = str(escape(label)), str(escape(text))  # & < > " ' as entities: valid XML too
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{name}: {value}"><title>{name}: {value}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="5" y="14">{name}</text><text x="{left + 5}" y="14">{value}</text></g></svg>'
    )
    return svg.encode()


def ago(stamp: Any, now: float) -> str:
    """``3 min ago`` / ``in 2 h`` for an ISO time; ``-`` when there is none."""
    t = _epoch(stamp)
    if t is None:
        return "-"
    delta = now - t
    text = seconds_text(abs(delta))
    return f"{text} ago" if delta >= 0 else f"in {text}"


def seconds_text(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if value >= size:
            return f"{value / size:.0f} {unit}"
    return f"{value:.0f} s"


def _epoch(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None
