"""The files a release gets from its sites' rules: joined, checked against the release's own
files, then written beside the deploy marker (``.well-known/sitedeploy/``): ``rules.json``
(read back by targets and ``sitedeploy serve``), the nginx includes (:mod:`.nginx`) and, when
there are redirects, the CloudFront Function (:mod:`.cloudfront`).

A release whose sites have no rules and no 404 page gets none of these files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from . import cloudfront, nginx
from .collect import SITE_RULES
from .ruleset import RULES_FILE, RuleSet, check, combine

log = logging.getLogger(__name__)


def site_rules(out: Path) -> RuleSet:
    """The rules stored beside a site's cached output (none for a build made before them)."""
    try:
        return RuleSet.from_json((out.parent / SITE_RULES).read_bytes())
    except FileNotFoundError:
        return RuleSet()
    except (OSError, ValueError, TypeError, KeyError):
        return RuleSet()  # the cache entry's manifest check rebuilds a damaged entry


def store_site_rules(entry: Path, rules: RuleSet) -> None:
    (entry / SITE_RULES).write_bytes(rules.to_json())


def release_files(outputs: Iterable[Path], paths: set[str]) -> dict[str, bytes]:
    """Release path → bytes of the generated files (empty when no site has rules)."""
    rules = combine(site_rules(out) for out in outputs)
    if rules.empty:
        return {}
    check(rules, paths)
    files = {
        RULES_FILE: rules.to_json(),
        nginx.SERVER_CONF: nginx.server_conf(rules).encode(),
        nginx.LOCATION_CONF: nginx.location_conf(rules).encode(),
    }
    if rules.redirects:
        files[cloudfront.FUNCTION_FILE] = cloudfront.function_code(rules).encode()
    return files


def read_rules(root: Path) -> RuleSet:
    """A release tree's rules (an empty set when it has none)."""
    try:
        return RuleSet.from_json((root / RULES_FILE).read_bytes())
    except FileNotFoundError:
        return RuleSet()
    except (OSError, ValueError, TypeError, KeyError, json.JSONDecodeError):
        return RuleSet()
