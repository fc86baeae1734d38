"""``sitedeploy status --serve``: the status page for a machine that runs no agent."""

from __future__ import annotations

import sys

from ..agent.httpserver import BoundedHTTPServer
from ..agent.log import EventLog
from ..config import Config
from ..errors import ConfigError
from .server import DEADLINE, MAX_CONNECTIONS, StatusPages, handler_for


def status_server(config: Config, bind: str, port: int, log: EventLog | None = None) -> BoundedHTTPServer:
    """Listen on ``bind:port`` (refused beyond localhost without ``[status] token_env``)."""
    pages = StatusPages(config, host=bind)
    if pages.refused:
        raise ConfigError(f"status --serve --bind {bind}: {pages.refused}")
    try:
        return BoundedHTTPServer(
            (bind, port),
            handler_for(pages),
            name="status",
            max_connections=MAX_CONNECTIONS,
            deadline=DEADLINE,
            log=log,
        )
    except OSError as exc:
        raise ConfigError(f"status --serve: cannot listen on {bind}:{port} ({exc.strerror})") from None


def serve_status(config: Config, bind: str, port: int) -> None:
    server = status_server(config, bind, port, EventLog())
    host = f"[{bind}]" if ":" in bind else bind
    print(f"status page: http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", file=sys.stderr)
    try:
        server.serve_forever(0.25)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
