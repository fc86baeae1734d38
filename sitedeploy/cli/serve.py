"""A small server for browsing local targets' ``current`` releases (``sitedeploy serve``); it
does not serve branch or pull-request previews (``sitedeploy.versions``), which live beside.

Each target gets its own port. A missing page is answered with the ``404.html`` of the site
it falls under (the nearest one walking up from the requested folder), so a docs site mounted
at ``/docs/`` shows its own "page not found" inside a landing page at ``/``. Redirects and
headers of the live release are answered as nginx answers them (:mod:`.redirects.serving`).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..errors import TargetError
from ..redirects.serving import RulesHandler

MARKER = Path(".well-known/sitedeploy.json")


@dataclass(frozen=True)
class Preview:
    target: str
    current: Path
    port: int

    def mounts(self) -> dict[str, str]:
        """Site name -> mount, from the live release's marker (empty for older releases)."""
        try:
            sites = json.loads((self.current / MARKER).read_text()).get("sites", {})
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in sites.items()} if isinstance(sites, dict) else {}


class _Handler(RulesHandler):
    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        page = self._site_404() if code == HTTPStatus.NOT_FOUND else None
        if page is None:
            super().send_error(code, message, explain)
            return
        body = page.read_bytes()
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _site_404(self) -> Path | None:
        """The 404.html of the innermost site holding the requested path."""
        root = Path(self.directory)
        folder = Path(self.translate_path(self.path))
        if not folder.is_dir():
            folder = folder.parent
        while True:
            try:
                folder.relative_to(root)
            except ValueError:
                return None
            if (folder / "404.html").is_file():
                return folder / "404.html"
            if folder == root:
                return None
            folder = folder.parent

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the terminal is for the URL lines, not one line per request


def start(previews: list[Preview], bind: str) -> list[ThreadingHTTPServer]:
    """Listen on every preview's port (all or none), serving in background threads."""
    servers: list[ThreadingHTTPServer] = []
    try:
        for p in previews:
            if not p.current.exists():
                raise TargetError(
                    f"target '{p.target}': {p.current} does not exist yet; run 'sitedeploy deploy' first"
                )
            servers.append(_listen(p, bind))
    except TargetError:
        for server in servers:
            server.server_close()
        raise
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True, name="serve").start()
    return servers


def _listen(p: Preview, bind: str) -> ThreadingHTTPServer:
    # The handler keeps the path of the symlink, not its target, so every request follows
    # `current` afresh and a deploy or rollback shows up without restarting the server.
    def handler(*args: Any) -> _Handler:
        return _Handler(*args, directory=os.fspath(p.current))

    try:
        return ThreadingHTTPServer((bind, p.port), handler)
    except OSError as exc:
        raise TargetError(
            f"target '{p.target}': cannot listen on {bind}:{p.port} ({exc.strerror}); pick another --port"
        ) from None


def wait(servers: list[ThreadingHTTPServer]) -> None:
    """Block until Ctrl-C, then stop every server."""
    try:
        threading.Event().wait()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
