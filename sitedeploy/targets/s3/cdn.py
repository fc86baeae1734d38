"""CloudFront invalidation for the S3 target: only what changed, within a budget.

A directory page ``guide/index.html`` is served at ``/guide/`` and at ``/guide/index.html``,
so both are invalidated. When the list is longer than the budget (CloudFront bills paths
beyond the first 1,000 a month, and a wildcard counts as one), paths are collapsed into
folder wildcards, deepest folders first, until they fit; at worst ``/*``. A switch that
changed nothing invalidates nothing.

The distribution is assumed to serve the target's prefix as its root (origin path = prefix).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient


def url_paths(paths: Iterable[str]) -> list[str]:
    """URL paths that serve the given release paths (both forms for directory pages)."""
    out: set[str] = set()
    for path in paths:
        url = "/" + quote(path, safe="/-_.~")
        out.add(url)
        if url == "/index.html" or url.endswith("/index.html"):
            out.add(url[: -len("index.html")])
    return sorted(out)


def collapse(urls: list[str], budget: int) -> list[str]:
    """``urls`` if they fit in ``budget``, else folder wildcards (``/guide/*``) that do."""
    if len(urls) <= budget:
        return urls
    deepest = max(url.count("/") for url in urls)
    for depth in range(deepest - 1, 0, -1):
        collapsed = sorted({_truncate(url, depth) for url in urls})
        if len(collapsed) <= budget:
            return collapsed
    return ["/*"]


def _truncate(url: str, depth: int) -> str:
    """``/a/b/c.html`` at depth 1 -> ``/a/*``; a URL no deeper than ``depth`` folders stays."""
    parts = url.split("/")  # ['', 'a', 'b', 'c.html']
    if len(parts) - 2 < depth:
        return url
    return "/".join(parts[: depth + 1]) + "/*"


def invalidation_paths(changed: Iterable[str], budget: int) -> list[str]:
    urls = url_paths(changed)
    return collapse(urls, budget) if urls else []


def invalidate(
    client: CloudFrontClient, distribution_id: str, paths: list[str], reference: str
) -> str | None:
    """Create one invalidation; return its id (None when there is nothing to invalidate)."""
    if not paths:
        return None
    response = client.create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": paths},
            "CallerReference": f"sitedeploy-{reference}-{time.time_ns()}",
        },
    )
    return response["Invalidation"]["Id"]
