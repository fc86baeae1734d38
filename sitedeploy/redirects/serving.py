"""``sitedeploy serve`` answering as production will: the live release's redirects (status and
``Location``), its headers, and ``.well-known/sitedeploy/`` hidden (404 pages are
:mod:`sitedeploy.cli.serve`'s own). The rules are read from the release the request finds behind
``current`` (cached by the file's identity), so a deploy or rollback shows up at once.
"""

from __future__ import annotations

import os
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .release import read_rules
from .ruleset import GENERATED_PREFIX, RULES_FILE, RuleSet

_cache: dict[tuple[int, int, int], RuleSet] = {}
_lock = threading.Lock()


def rules_at(root: Path) -> RuleSet:
    """The rules of the release at ``root`` (parsed once per version of the file)."""
    try:
        st = os.stat(root / RULES_FILE)
    except OSError:
        return RuleSet()
    key = (st.st_dev, st.st_ino, st.st_mtime_ns)
    with _lock:
        if key not in _cache:
            _cache.clear()  # one release at a time is live: keep one
            _cache[key] = read_rules(root)
        return _cache[key]


class RulesHandler(SimpleHTTPRequestHandler):
    """Redirects before files, headers on every file answered."""

    _sd_status = 0

    def do_GET(self) -> None:
        if not self._redirected():
            super().do_GET()

    def do_HEAD(self) -> None:
        if not self._redirected():
            super().do_HEAD()

    def _url_path(self) -> str:
        return unquote(urlsplit(self.path).path) or "/"

    def _redirected(self) -> bool:
        path = self._url_path()
        if path.startswith("/" + GENERATED_PREFIX):
            self.send_error(HTTPStatus.NOT_FOUND)
            return True
        found = rules_at(Path(self.directory)).resolve(path)
        if found is None:
            return False
        rule, target = found
        self.send_response(rule.status)
        if rule.status != 410:
            self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def send_response(self, code: int, message: str | None = None) -> None:
        self._sd_status = code
        super().send_response(code, message)

    def end_headers(self) -> None:
        if self._sd_status in (200, 206, 304):
            rules = rules_at(Path(self.directory))
            for name, value in rules.headers_for(self._url_path()).items():
                if name.lower() != "content-type":  # already sent from the file's type
                    self.send_header(name, value)
        super().end_headers()
