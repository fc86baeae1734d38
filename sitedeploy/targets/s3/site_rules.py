"""A release's ``_redirects`` and ``_headers`` on S3: redirect objects and object headers.

S3's website endpoint knows one kind of redirect: an object carrying
``x-amz-website-redirect-location`` answers ``301`` with that ``Location``. So every exact rule
with status 301 becomes a zero-byte object at the key the website looks up for its path
(``/old/`` and ``/old`` → ``old/index.html``; ``/old.html`` → ``old.html``), replacing the file
of the release there (usually mkdocs-redirects' meta-refresh page: a rule wins over a file, as
on nginx). Patterns and the other statuses need the CloudFront Function
(:mod:`sitedeploy.redirects.cloudfront`); without a distribution the deploy says how many rules
S3 alone does not answer.

``_headers`` values that S3 stores with an object (:data:`STORED`) become that object's headers,
over the target's own ``cache_control`` rules; any other header is refused with one line (S3
cannot send it: a CloudFront response headers policy can).

Both are part of what the target plans, records and verifies, like any object: :meth:`SiteRules.view`
adds the redirect objects to the release's manifest, :meth:`SiteRules.headers_for` gives every
key its headers, and the state object records them (``live.Stored.headers``). The rules a release
was switched with are kept in its release object (``releases``), so a rollback, the run after a
crash and ``verify`` plan from the same view as the deploy that made it.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import RulesError, TargetError
from ...progress import Progress
from ...redirects.cloudfront import FUNCTION_FILE, MAX_BYTES, function_code
from ...redirects.release import read_rules
from ...redirects.ruleset import RuleSet
from ...release.manifest import FileEntry, Manifest
from .headers import EXTRA, HeaderRules, ObjectHeaders

if TYPE_CHECKING:
    from .target import S3Target

log = logging.getLogger(__name__)
EMPTY = hashlib.sha256(b"").hexdigest()
"""The body of a redirect object (and of any empty file): written from nothing, never kept."""
STORED = frozenset({"cache-control", "content-type", *(name.lower() for name in EXTRA)})
"""``_headers`` names S3 keeps with an object (Content-Encoding is never taken from ``_headers``)."""
REDIRECT_TYPE = "text/html; charset=utf-8"


def redirect_key(source: str) -> str:
    """The key the website endpoint reads for a rule's path: ``/old/`` → ``old/index.html``
    (``/old`` too: the endpoint sends ``/old`` to ``/old/`` itself), ``/a.html`` → ``a.html``."""
    rel = source.strip("/")
    if not rel:
        return "index.html"
    if not source.endswith("/") and "." in posixpath.basename(rel):
        return rel
    return f"{rel}/index.html"


def location(target: str, served_at: str) -> str:
    """The ``Location`` of a rule's target on a prefix the website serves at ``served_at``: a
    version's ``/new/`` on line ``1.0`` is ``/1.0/new/``; an ``https://`` target as it is."""
    return served_at.rstrip("/") + target if target.startswith("/") else target


def url_forms(path: str) -> list[str]:
    """The URL paths one key answers: ``guide/index.html`` at ``/guide/`` and as itself."""
    forms = ["/" + path]
    if path == "index.html" or path.endswith("/index.html"):
        forms.append("/" + path[: -len("index.html")])
    return forms


class SiteRules:
    """The target's header rules with one release's ``_redirects`` and ``_headers`` over them."""

    def __init__(self, base: HeaderRules, rules: RuleSet, served_at: str = "/") -> None:
        self.base = base
        self.rules = rules
        self.redirects: dict[str, str] = {}
        for rule in rules.exact:
            if rule.status == 301:
                self.redirects.setdefault(redirect_key(rule.source), location(rule.target, served_at))

    @property
    def unserved(self) -> int:
        """Rules the S3 website endpoint cannot answer (patterns, statuses other than 301)."""
        return sum(1 for r in self.rules.redirects if not (r.exact and r.status == 301))

    def check(self, target: str) -> None:
        """Refuse ``_headers`` S3 cannot store, with one line naming the header and its file."""
        for rule in self.rules.headers:
            for name, value in rule.headers:
                if name.lower() not in STORED:
                    raise RulesError(
                        f"{rule.origin}: target '{target}' is S3, which cannot send {name} (it keeps "
                        "only Cache-Control, Content-Type, Content-Language, Content-Disposition and "
                        f"Expires with an object); set {name} in a CloudFront response headers policy "
                        "and remove it from _headers"
                    )
                if name.lower() == "expires":
                    expires(value, rule.origin)

    def view(self, manifest: Manifest) -> Manifest:
        """The release as keys: its files, with a redirect object at each rule's key."""
        if not self.redirects:
            return manifest
        files = dict(manifest.items())
        files.update((key, FileEntry(EMPTY, 0, REDIRECT_TYPE)) for key in self.redirects)
        return Manifest(files)

    def headers_for(self, path: str, content_type: str) -> ObjectHeaders:
        redirect = self.redirects.get(path)
        if redirect is not None:
            content_type = REDIRECT_TYPE
        found = self.base.headers_for(path, content_type)
        wanted: dict[str, str] = {}
        for rule in self.rules.headers:
            if any(rule.matches(url) for url in url_forms(path)):
                wanted.update((name.title(), value) for name, value in rule.headers)
        extra = tuple(
            sorted(
                (name, expires(v, "") if name == "Expires" else v)
                for name, v in wanted.items()
                if name in EXTRA
            )
        )
        return found._replace(
            content_type=wanted.get("Content-Type", found.content_type),
            cache_control=wanted.get("Cache-Control", found.cache_control),
            content_encoding=None if redirect is not None else found.content_encoding,
            redirect=redirect,
            extra=extra,
        )


def expires(value: str, origin: str) -> str:
    """An HTTP date as S3 gives it back (``Wed, 01 Dec 2094 16:00:00 GMT``), so what was written
    and what ``verify`` reads compare equal."""
    try:
        return format_datetime(parsedate_to_datetime(value), usegmt=True)
    except (TypeError, ValueError):
        raise RulesError(
            f"{origin}: Expires {value[:60]!r} is not an HTTP date (Wed, 01 Dec 2094 16:00:00 GMT)"
        ) from None


def from_build(t: S3Target, build_dir: Path, progress: Progress) -> SiteRules:
    """A deploy's rules, from the release it built: checked for S3, and what S3 alone cannot
    answer said."""
    site = SiteRules(t.rules, read_rules(build_dir), t.served_at)
    site.check(t.name)
    warn_unserved(t.name, site, t.cfg.cloudfront_distribution_id, progress)
    return site


def from_json(where: str, base: HeaderRules, raw: bytes | None, served_at: str = "/") -> SiteRules:
    """A recorded release's rules (``where`` names it in the error if they are damaged)."""
    try:
        return SiteRules(base, RuleSet.from_json(raw) if raw else RuleSet(), served_at)
    except (ValueError, KeyError, TypeError):
        raise TargetError(f"{where}: its rules are damaged; deploy that release's commit again") from None


def warn_unserved(target: str, site: SiteRules, distribution: str | None, progress: Progress) -> None:
    """Say how many rules S3's website endpoint does not answer when no CloudFront Function
    can (patterns and statuses other than 301), or that the function is too big for CloudFront."""
    count = site.unserved
    said = ""
    if count and not distribution:
        said = (
            f"target '{target}': {count} redirect rule(s) are patterns or not 301, which an S3 website "
            "endpoint cannot answer; serve the bucket through CloudFront with the release's "
            f"{FUNCTION_FILE} as a viewer-request function (see the manual's 'Redirects and headers')"
        )
    elif distribution and site.rules.redirects:
        size = len(function_code(site.rules).encode())
        if size > MAX_BYTES:
            said = (
                f"target '{target}': the release's {FUNCTION_FILE} is {size} bytes, over CloudFront's "
                f"{MAX_BYTES}-byte limit for a function; fold exact rules into splats (/old/* /new/:splat)"
            )
    if said:
        progress.step(f"warning: {said}")
        log.warning("%s", said)
