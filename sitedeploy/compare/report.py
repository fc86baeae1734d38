"""The comparison as data (``--json``) and as one self-contained HTML file (``--report DIR``).

The HTML has no script, no external stylesheet, font or image: it opens from a folder, a CI
artefact or a mail attachment alike. Everything that comes from the build (page text, titles,
file and plugin names) is escaped with :func:`html.escape`, so a page whose text is
``<script>`` shows that text. Page diffs are side by side, one row per line of visible text,
changed lines marked on both sides.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from . import Comparison
from .differ import PageDiff, SiteComparison

REPORT_NAME = "compare.html"
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#1d232a;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.25rem;border-bottom:1px solid #ccd;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1.05rem;margin-top:1.4rem}table{border-collapse:collapse;margin:.4rem 0}
td,th{border:1px solid #d6d9de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}.ok{color:#126b2f;font-weight:600}.bad{color:#a4161a;font-weight:600}
.diff{width:100%;table-layout:fixed;font:12px/1.4 ui-monospace,monospace}
.diff td{white-space:pre-wrap;word-break:break-word}
.del{background:#fde2e2}.ins{background:#dcfce7}.chg{background:#fef3c7}.num{width:3rem;color:#888}
ul{margin:.3rem 0}code{background:#f3f4f6;padding:0 .2rem}.muted{color:#666}
"""


def as_json(result: Comparison) -> dict[str, Any]:
    return {
        "commit": result.commit.sha,
        "commit_from": result.commit_from,
        "equivalent": result.equivalent,
        "skipped": result.skipped,
        "sites": [_site_json(site) for site in result.sites],
    }


def _site_json(site: SiteComparison) -> dict[str, Any]:
    data = dataclasses.asdict(site)
    data["equivalent"] = site.equivalent
    for page in data["text_differs"]:
        del page["left"], page["right"]  # the HTML report has them; the JSON stays short
    return data


def write_report(result: Comparison, folder: Path) -> Path:
    """Write ``compare.html`` into ``folder`` (made if needed), atomically; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".compare-", suffix=".html", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(render(result))
    path = folder / REPORT_NAME
    os.replace(tmp, path)
    return path


def render(result: Comparison) -> str:
    verdict = _verdict(result.equivalent)
    head = (
        f"<h1>Engine comparison {verdict}</h1><p>Commit <code>{escape(result.commit.sha[:12])}</code> "
        f"({escape(result.commit_from)}): {escape(result.commit.subject)}</p>"
    )
    skipped = "".join(f"<li>{escape(line)}</li>" for line in result.skipped)
    body = head + (f"<p class=muted>Skipped:</p><ul>{skipped}</ul>" if skipped else "")
    body += "".join(_site(site) for site in result.sites)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>sitedeploy compare</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def _verdict(equivalent: bool) -> str:
    return "<span class=ok>equivalent</span>" if equivalent else "<span class=bad>differs</span>"


def _site(site: SiteComparison) -> str:
    a, b = site.engines
    parts = [
        f"<h2>Site {escape(site.site)}: {escape(a)} vs {escape(b)} — {_verdict(site.equivalent)}</h2>",
        f"<p>{site.differences} difference(s), tolerance {site.tolerance}.</p>",
        _overview(site),
        _lists("Pages in one output only", {f"only in {k}": v for k, v in site.only_in.items()}),
        _lists("Navigation", {"rows that differ": site.nav}),
        _lists(
            "Links that resolve in one output only",
            {f"resolve in {k} only": v for k, v in site.links.items()},
        ),
        _search(site),
        _lists("Plugins an engine ignores", {f"ignored by {k}": v for k, v in site.plugins_ignored.items()}),
        _assets(site),
        f"<h3>Pages whose text differs ({len(site.text_differs)})</h3>",
        *(_page(page, a, b) for page in site.text_differs),
    ]
    return "".join(parts)


def _overview(site: SiteComparison) -> str:
    rows = "".join(
        f"<tr><th>{escape(engine)}</th><td>{site.seconds[engine]:.2f} s</td>"
        f"<td>{site.assets[engine].files}</td><td>{_size(site.assets[engine].bytes)}</td>"
        f"<td>{site.search[engine].pages} pages, {site.search[engine].headings} headings</td></tr>"
        for engine in site.engines
    )
    head = "<tr><th>engine</th><th>build time</th><th>files</th><th>total size</th><th>search index</th></tr>"
    return f"<table>{head}{rows}</table>"


def _lists(title: str, groups: dict[str, list[str]]) -> str:
    shown = {name: items for name, items in groups.items() if items}
    if not shown:
        return f"<h3>{escape(title)}</h3><p class=ok>no differences</p>"
    body = "".join(
        f"<p>{escape(name)} ({len(items)}):</p><ul>{''.join(f'<li>{escape(i)}</li>' for i in items)}</ul>"
        for name, items in shown.items()
    )
    return f"<h3>{escape(title)}</h3>{body}"


def _search(site: SiteComparison) -> str:
    groups: dict[str, list[str]] = {}
    for engine, data in site.search.items():
        groups[f"indexed by {engine} only (pages)"] = data.pages_only_here
        groups[f"indexed by {engine} only (headings)"] = data.headings_only_here
    files = ", ".join(f"{escape(e)}: {escape(str(d.file))}" for e, d in site.search.items())
    return _lists("Search index", groups).replace("</h3>", f"</h3><p class=muted>{files}</p>", 1)


def _assets(site: SiteComparison) -> str:
    rows = ""
    for engine, data in site.assets.items():
        for item in data.largest_additions:
            rows += (
                f"<tr><td>{escape(engine)}</td><td>{escape(item.file)}</td><td>{_size(item.bytes)}</td></tr>"
            )
    table = f"<table><tr><th>only in</th><th>file</th><th>size</th></tr>{rows}</table>" if rows else ""
    return f"<h3>Assets: largest additions</h3>{table or '<p class=muted>none</p>'}"


def _page(page: PageDiff, a: str, b: str) -> str:
    rows = []
    matcher = difflib.SequenceMatcher(a=page.left, b=page.right, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        left, right = page.left[i1:i2], page.right[j1:j2]
        if op == "equal":
            rows += [_row("", n + i1, line, n + j1, line) for n, line in enumerate(left)]
            continue
        for n in range(max(len(left), len(right))):
            lhs = left[n] if n < len(left) else None
            rhs = right[n] if n < len(right) else None
            rows.append(_row("chg" if op == "replace" else "", i1 + n, lhs, j1 + n, rhs))
    head = f"<tr><th class=num></th><th>{escape(a)}</th><th class=num></th><th>{escape(b)}</th></tr>"
    return f"<h3><code>{escape(page.page)}</code></h3><table class=diff>{head}{''.join(rows)}</table>"


def _row(kind: str, i: int, left: str | None, j: int, right: str | None) -> str:
    lcls = kind or ("del" if left is not None and right is None else "")
    rcls = kind or ("ins" if right is not None and left is None else "")
    lnum, rnum = (i + 1 if left is not None else ""), (j + 1 if right is not None else "")
    return (
        f"<tr><td class=num>{lnum}</td><td class='{lcls}'>{escape(left or '')}</td>"
        f"<td class=num>{rnum}</td><td class='{rcls}'>{escape(right or '')}</td></tr>"
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024**2 else f"{n / 1024**2:.1f} MB"
