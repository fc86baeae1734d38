"""``_redirects`` in Netlify's syntax: parsed, checked line by line, and matched.

One rule a line, ``from to [status]``; blank lines and ``#`` comments are skipped::

    /old-page/        /new-page/              # 301 by default
    /blog/*           /news/:splat      302   # * is a splat, :splat puts it back
    /v1/:lang/guide/  /guide/:lang/     308   # :name matches one path segment
    /retired/         /                 410   # gone (the target is not used)
    /chat             https://chat.example.com/

Statuses: 301 (default), 302, 307, 308 and 410; a trailing ``!`` (Netlify's "force") is
accepted and changes nothing: a rule always wins over a file at its path here, since the file
there is usually the meta-refresh page mkdocs-redirects left for servers without rules.

Why the paths are narrow: a rule ends up inside an nginx config, a CloudFront Function and an
S3 object's metadata, all generated from text a content repo controls. Only URL path
characters that mean nothing to those languages are accepted (no quotes, ``$``, ``;``,
braces, backslashes, spaces or control characters); ``..``, ``.`` and empty segments are
refused, so a rule can neither escape its mount nor inject configuration.

Matching (the same in nginx, ``sitedeploy serve``, the CloudFront Function and the loop
check): a rule without ``*`` or ``:name`` matches its path with or without the trailing
slash; ``/a/*`` matches ``/a``, ``/a/`` and everything below; ``:name`` matches one segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import RulesError

STATUSES = (301, 302, 307, 308, 410)
MAX_RULES = 10_000
"""More rules than this in one release are refused (each is a regex some servers try in turn)."""
MAX_FILE_BYTES = 1024**2
"""A ``_redirects`` or ``_headers`` file larger than this is refused before it is read."""
MAX_CAPTURES = 9
"""nginx numbers captures ``$1`` to ``$9``: a pattern may hold at most nine ``*``/``:name``."""

_PATH_CHARS = r"A-Za-z0-9\-._~/%+,=@!()"
_SOURCE = re.compile(rf"^/[{_PATH_CHARS}:*]*$")
_TARGET_PATH = re.compile(rf"^/[{_PATH_CHARS}:?&#]*$")
_HTTPS = re.compile(rf"^https://[A-Za-z0-9.-]+(:[0-9]{{1,5}})?(/[{_PATH_CHARS}:?&#]*)?$")
_NAME = re.compile(r"^:[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Redirect:
    """One rule, its paths already under the site's mount."""

    source: str
    target: str
    status: int
    origin: str
    """``file:line`` for messages."""

    @property
    def names(self) -> tuple[str, ...]:
        """The captures in order: ``splat`` for ``*``, else the placeholder's name."""
        return tuple("splat" if s == "*" else s[1:] for s in self.source.split("/") if is_capture(s))

    @property
    def exact(self) -> bool:
        return not self.names

    @property
    def external(self) -> bool:
        return self.target.startswith("https://")

    def regex(self) -> str:
        """A PCRE/Python/JavaScript-compatible pattern for the path (one group per capture)."""
        parts = self.source.rstrip("/").split("/")[1:]
        out = ""
        for part in parts:
            if part == "*":
                out += "(?:/(.*))?"
            elif is_capture(part):
                out += "/([^/]+)"
            else:
                out += "/" + literal(part)
        tail = "" if parts and parts[-1] == "*" else "/?"
        return f"^{out}{tail}$" if out else "^/$"

    def apply(self, groups: tuple[str | None, ...]) -> str:
        """The target with its placeholders filled from a match's groups."""
        values = dict(zip(self.names, (g or "" for g in groups), strict=False))
        return _PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), self.target)

    def match(self, path: str) -> str | None:
        """Where this rule sends ``path``, or None when it does not match."""
        found = re.match(self.regex(), path)
        return None if found is None else self.apply(found.groups())


def literal(text: str) -> str:
    """``text`` as a regex matching itself, special characters in brackets, no backslash (the
    same pattern then reads alike in an nginx string, Python and JavaScript)."""
    return re.sub(r"([.+()!*])", r"[\1]", text)


def is_capture(segment: str) -> bool:
    return segment == "*" or bool(_NAME.match(segment))


def parse_redirects(text: str, origin: str, mount: str) -> list[Redirect]:
    """Every rule of one file, its paths placed under ``mount``; one bad line refuses the file."""
    rules = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = re.sub(r"\s+#.*$", "", line).split()  # a target may hold a #fragment
        rules.append(parse_line(fields, f"{origin}:{number}", mount))
        if len(rules) > MAX_RULES:
            raise RulesError(f"{origin}: more than {MAX_RULES} rules; use splats (/old/* /new/:splat)")
    return rules


def parse_line(fields: list[str], where: str, mount: str) -> Redirect:
    if len(fields) == 2 and fields[1].rstrip("!") == "410":
        fields = [fields[0], "/", fields[1]]
    if len(fields) not in (2, 3):
        raise RulesError(
            f"{where}: expected 'from to [status]', got {len(fields)} fields; sitedeploy takes no "
            "query or country conditions"
        )
    source, target = fields[0], fields[1]
    status = _status(fields[2] if len(fields) == 3 else "301", where)
    check_source(source, where)
    if status != 410:
        check_target(target, source, where)
    target = target if target.startswith("https://") else under(mount, target)
    return Redirect(under(mount, source), target, status, where)


def _status(text: str, where: str) -> int:
    code = text.rstrip("!")
    if not code.isdigit() or int(code) not in STATUSES:
        raise RulesError(
            f"{where}: status {text!r} is not one of {', '.join(map(str, STATUSES))}; sitedeploy "
            "serves redirects, not rewrites (200) or custom statuses"
        )
    return int(code)


def check_source(source: str, where: str) -> None:
    _check_chars(source, _SOURCE, where, "from")
    segments = source.split("/")[1:]
    if "*" in source and (source.count("*") > 1 or not source.endswith("/*")):
        raise RulesError(f"{where}: '*' must be the last segment of the path ('/old/*'); got {source!r}")
    captures = [s for s in segments if is_capture(s)]
    if len(captures) > MAX_CAPTURES:
        raise RulesError(f"{where}: {source!r} has more than {MAX_CAPTURES} placeholders")
    bad = next((s for s in segments if ":" in s and not is_capture(s)), None)
    if bad is not None:
        raise RulesError(f"{where}: {bad!r} in {source!r}: a placeholder is a whole segment, ':name'")


def check_target(target: str, source: str, where: str) -> None:
    if target.startswith("http://"):
        raise RulesError(f"{where}: {target!r} is plain http; use an https:// URL or a path")
    if target.startswith("https://"):
        _check_chars(target, _HTTPS, where, "to")
    else:
        _check_chars(target, _TARGET_PATH, where, "to")
    names = {"splat" if s == "*" else s[1:] for s in source.split("/") if is_capture(s)}
    unknown = sorted(set(_PLACEHOLDER.findall(target.split("://", 1)[-1])) - names)
    if unknown:
        raise RulesError(f"{where}: ':{unknown[0]}' in {target!r} is not captured by {source!r}")


def _check_chars(path: str, pattern: re.Pattern[str], where: str, what: str) -> None:
    shown = path.encode("unicode_escape").decode("ascii")[:120]
    if not pattern.match(path) or _PERCENT.search(path):
        raise RulesError(
            f"{where}: {what} {shown!r} is not a plain URL path (start with /; letters, digits and "
            "- . _ ~ / % + , = @ ! ( ) only)" + ("; or an https:// URL" if what == "to" else "")
        )
    segments = path.split("://", 1)[-1].split("?")[0].split("#")[0].split("/")[1:]
    if any(s in (".", "..") for s in segments) or "//" in path.split("://", 1)[-1]:
        raise RulesError(f"{where}: {what} {shown!r} has an empty, '.' or '..' segment")


def under(mount: str, path: str) -> str:
    """``path`` of a site mounted at ``mount`` as a path of the release."""
    return mount.rstrip("/") + path


def key_of(source: str) -> str:
    """Two sources with the same key are duplicates (a trailing slash does not matter)."""
    return source.rstrip("/") or "/"
