"""A small preview server for a local target's ``current`` release."""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import TargetError


def serve_forever(current: Path, bind: str, port: int) -> None:
    if not current.exists():
        raise TargetError(f"{current} does not exist yet; run 'sitedeploy deploy' first")
    # The handler keeps the path of the symlink, not its target, so every request follows
    # `current` afresh and a deploy or rollback shows up without restarting the server.
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(current))
    try:
        server = ThreadingHTTPServer((bind, port), handler)
    except OSError as exc:
        raise TargetError(f"cannot listen on {bind}:{port} ({exc.strerror}); pick another --port") from None
    with server:
        server.serve_forever()
