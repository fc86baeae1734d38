"""All the rules of one release: every site's redirects, headers and 404 page, checked against
the release's files, and stored in the release as ``.well-known/sitedeploy/rules.json``.

Checks made when the release is assembled (a site's own file was checked line by line when it
was built, :mod:`.rules`), each refusing with one line naming the file and line:

- a path used by two rules (with or without its trailing slash);
- a loop: following the rules from a rule's path comes back to a path already seen (``/a →
  /b → /a``, or ``/docs/* → /docs/:splat``), or more than :data:`MAX_HOPS` redirects in a row;
- a target that is not in the release: a path must name a file (``/new/`` →
  ``new/index.html``), or, with placeholders, a folder of the release; ``https://`` is not
  checked;
- more than :data:`~.rules.MAX_RULES` rules.

Resolution order, the same on every server: rules without placeholders first (exact paths),
then patterns in file order, sites in mount order; the first match answers.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import RulesError
from .headers import HeaderRule, headers_for
from .rules import MAX_RULES, Redirect, is_capture, key_of

MAX_HOPS = 10
"""Browsers give up after about 20 redirects; a chain longer than this is surely a mistake."""
RULES_FILE = ".well-known/sitedeploy/rules.json"
"""Where a release keeps its rules (targets and ``sitedeploy serve`` read them back)."""
GENERATED_PREFIX = ".well-known/sitedeploy/"
"""Files sitedeploy generates into a release; no site may write here (and servers hide it)."""


@dataclass(frozen=True)
class RuleSet:
    redirects: tuple[Redirect, ...] = ()
    headers: tuple[HeaderRule, ...] = ()
    not_found: tuple[tuple[str, str], ...] = ()
    """(mount, path of its 404 page), longest mount first."""
    _exact: dict[str, Redirect] = field(default_factory=dict, compare=False, repr=False)
    _by_prefix: dict[str, list[int]] = field(default_factory=dict, compare=False, repr=False)
    """Patterns by their literal leading segments (``/docs/blog`` for ``/docs/blog/*``), as
    indexes into ``_compiled``: a lookup tries only the patterns that can match, so checking
    10,000 rules is not 10,000 squared regex matches."""
    _compiled: list[tuple[Redirect, re.Pattern[str]]] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._exact.update({key_of(r.source): r for r in reversed(self.redirects) if r.exact})
        for i, rule in enumerate(self.patterns):
            self._compiled.append((rule, re.compile(rule.regex())))
            self._by_prefix.setdefault(_literal_prefix(rule.source), []).append(i)

    @property
    def empty(self) -> bool:
        return not (self.redirects or self.headers or self.not_found)

    @property
    def exact(self) -> list[Redirect]:
        return [r for r in self.redirects if r.exact]

    @property
    def patterns(self) -> list[Redirect]:
        return [r for r in self.redirects if not r.exact]

    def resolve(self, path: str) -> tuple[Redirect, str] | None:
        """The rule answering ``path`` and where it sends it, or None."""
        rule = self._exact.get(key_of(path))
        if rule is not None:
            return rule, rule.target
        segments = path.rstrip("/").split("/")
        prefixes = {"/".join(segments[:k]) for k in range(1, len(segments) + 1)}
        for i in sorted(i for p in prefixes for i in self._by_prefix.get(p, ())):
            rule, pattern = self._compiled[i]
            found = pattern.match(path)
            if found is not None:
                return rule, rule.apply(found.groups())
        return None

    def headers_for(self, path: str) -> dict[str, str]:
        return headers_for(path, list(self.headers))

    def not_found_page(self, path: str) -> str | None:
        """The 404 page of the site whose mount holds ``path``."""
        return next((page for mount, page in self.not_found if path.startswith(mount)), None)

    def to_json(self) -> bytes:
        data = {
            "redirects": [[r.source, r.target, r.status, r.origin] for r in self.redirects],
            "headers": [[h.source, [list(x) for x in h.headers], h.origin] for h in self.headers],
            "not_found": [list(x) for x in self.not_found],
        }
        return json.dumps(data, indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> RuleSet:
        data = json.loads(raw)
        return cls(
            tuple(Redirect(s, t, int(c), o) for s, t, c, o in data.get("redirects", [])),
            tuple(HeaderRule(s, tuple((n, v) for n, v in hs), o) for s, hs, o in data.get("headers", [])),
            tuple((m, p) for m, p in data.get("not_found", [])),
        )


def combine(parts: Iterable[RuleSet]) -> RuleSet:
    """The sites' rule sets as one, sites in mount order (their rules keep file order)."""
    parts = list(parts)
    redirects = tuple(r for p in parts for r in p.redirects)
    if len(redirects) > MAX_RULES:
        raise RulesError(f"the release has {len(redirects)} redirect rules (at most {MAX_RULES}); use splats")
    not_found = sorted((x for p in parts for x in p.not_found), key=lambda x: -len(x[0]))
    return RuleSet(redirects, tuple(h for p in parts for h in p.headers), tuple(not_found))


def check(rules: RuleSet, paths: set[str]) -> None:
    """Refuse duplicates, loops and targets missing from the release (``paths``: its files)."""
    folders = sorted({p.rsplit("/", 1)[0] + "/" for p in paths if "/" in p})
    seen: dict[str, Redirect] = {}
    for rule in rules.redirects:
        key = key_of(rule.source)
        if key in seen:
            raise RulesError(f"{rule.origin}: {rule.source!r} already has a rule at {seen[key].origin}")
        seen[key] = rule
    for rule in rules.redirects:
        if rule.status != 410 and not rule.external:
            _check_target(rule, rules, paths, folders)
        _check_loop(rule, rules)


def _check_target(rule: Redirect, rules: RuleSet, paths: set[str], folders: list[str]) -> None:
    target = re.split(r"[?#]", rule.target, maxsplit=1)[0]
    if ":" in target:  # a pattern: its fixed beginning must be a folder of the release
        fixed = target.split(":", 1)[0].lstrip("/")
        at = bisect.bisect_left(folders, fixed)  # sorted: the first folder >= the prefix
        if not fixed or (at < len(folders) and folders[at].startswith(fixed)):
            return
    elif rules.resolve(target) is not None or exists(target, paths):
        return
    raise RulesError(
        f"{rule.origin}: the target {rule.target!r} is not in the release; fix the path, or use "
        "an https:// URL for another server"
    )


def exists(path: str, paths: set[str]) -> bool:
    """Whether a server would answer ``path`` with a file of the release."""
    rel = path.lstrip("/")
    if rel == "" or rel.endswith("/"):
        return f"{rel}index.html" in paths
    return rel in paths or f"{rel}/index.html" in paths


def _check_loop(rule: Redirect, rules: RuleSet) -> None:
    path = sample(rule.source)
    visited = {key_of(path)}
    for _ in range(MAX_HOPS):
        found = rules.resolve(path)
        if found is None or found[0].status == 410 or found[0].external:
            return
        path = re.split(r"[?#]", found[1], maxsplit=1)[0]
        if key_of(path) in visited:
            raise RulesError(f"{rule.origin}: {rule.source!r} redirects in a loop (back to {path!r})")
        visited.add(key_of(path))
    raise RulesError(f"{rule.origin}: {rule.source!r} starts a chain of more than {MAX_HOPS} redirects")


def _literal_prefix(source: str) -> str:
    """``/docs/blog/:year/*`` → ``/docs/blog``: the segments before the first capture."""
    out = []
    for segment in source.rstrip("/").split("/"):
        if is_capture(segment):
            break
        out.append(segment)
    return "/".join(out)


def sample(source: str) -> str:
    """A concrete path the pattern matches (each capture filled with a word)."""
    return "/".join("sample" if s == "*" or s.startswith(":") else s for s in source.split("/")) or "/"
