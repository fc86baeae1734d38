"""The HTTP server under the webhook and metrics endpoints: a flood cannot starve the agent.

The standard ``ThreadingHTTPServer`` starts one thread per connection and waits forever for
its request, so idle connections pile up threads and file descriptors until the process (and
the agent's tick, which shares its file limit) fails with "Too many open files". This one:

- holds at most ``max_connections`` connections, each served by its own thread, so threads
  and sockets stay bounded whatever clients do (threads of evicted connections take a few
  milliseconds to end: at most as many again may be ending);
- gives each connection ``deadline`` seconds in all (request line, headers, body, answer);
  the serving thread shuts a late socket down, which wakes its blocked handler thread;
- when full, closes the oldest connection still sending its request (an idle or slow client)
  to make room for the new one, and answers 503 at once when every connection is being
  answered — so idle connections cannot keep ``/healthz`` or a real push out;
- backs off for a moment when ``accept()`` fails for lack of file descriptors, instead of
  spinning on a listening socket that stays readable.

Handlers call :meth:`BoundedHTTPServer.request_read` once the whole request is in; from then on
the connection is being answered and is no longer evicted for a newcomer.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from .log import EventLog

EVICT_WAIT = 1.0
"""Seconds the accept loop waits for an evicted thread's slot when too many are still ending."""
ACCEPT_BACKOFF = 0.1
"""Pause after accept() failed with EMFILE/ENFILE: the pending connection keeps the socket readable."""
REPORT_EVERY = 60.0
"""Refused, evicted and late connections are summed up in one log line at most this often."""
LINGER_BYTES = 1024 * 1024
LINGER_SECONDS = 1.0
"""After refusing a request whose body was not read: how much of it to drain, for how long."""
BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\nbusy\n"
)


@dataclass
class _Conn:
    deadline: float
    reading: bool = True
    cut: bool = False
    handed_over: bool = False
    """Evicted for a newcomer, which took its slot: its thread gives back a dying slot instead."""


class BoundedHTTPServer(HTTPServer):
    """``HTTPServer`` with a connection cap, a per-connection deadline and eviction of idle peers."""

    request_queue_size = 256  # a burst waits in the kernel's backlog (no fd of ours), not in SYN retries

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        name: str,
        max_connections: int,
        deadline: float,
        log: EventLog | None = None,
    ) -> None:
        if ":" in address[0]:  # "[::1]:9108" binds an IPv6 socket
            self.address_family = socket.AF_INET6
        self.name, self.max_connections, self.deadline, self.log = name, max_connections, deadline, log
        self._conns: dict[socket.socket, _Conn] = {}
        self._lock = threading.Lock()  # guards _conns; a socket is only shut down while tracked
        self._slots = threading.BoundedSemaphore(max_connections)
        self._dying = threading.BoundedSemaphore(max_connections)  # evicted, not yet ended
        self.counts: Counter[str] = Counter()
        self._reported_at = float("-inf")
        super().__init__(address, handler)

    # --- admission --------------------------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._admit(request):
            self._refuse(request)
            return
        thread = threading.Thread(
            target=self._serve, args=(request, client_address), name=f"{self.name}-conn", daemon=True
        )
        thread.start()

    def _admit(self, request: socket.socket) -> bool:
        if not (self._slots.acquire(blocking=False) or self._make_room()):
            return False
        with self._lock:
            self._conns[request] = _Conn(time.monotonic() + self.deadline)
        return True

    def _make_room(self) -> bool:
        """Cut the oldest connection still sending its request; True when its slot is ours.

        The slot passes to the newcomer at once and the cut thread, which ends within
        milliseconds, counts as dying (at most ``max_connections`` of those), so a flood does
        not make the accept loop wait for each evicted thread: at most twice the cap exist.
        """
        with self._lock:
            oldest = next(((s, c) for s, c in self._conns.items() if c.reading and not c.cut), None)
            if oldest is None:
                return False  # every connection is being answered: the newcomer gets 503
            sock, conn = oldest
            conn.handed_over = self._dying.acquire(blocking=False)
            self._cut(sock, conn, "evicted")
        return conn.handed_over or self._slots.acquire(timeout=EVICT_WAIT)

    def _refuse(self, request: socket.socket) -> None:
        self.counts["refused"] += 1
        with contextlib.suppress(OSError):
            request.setblocking(False)  # never wait on a client that does not read
            request.send(BUSY)
            request.shutdown(socket.SHUT_WR)
            request.recv(65536)  # what already came: closing on unread data sends a reset
        self.shutdown_request(request)

    def _serve(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._lock:  # untracked before it is closed: the cutter never touches a reused fd
                conn = self._conns.pop(request, None)
            self.shutdown_request(request)
            (self._dying if conn is not None and conn.handed_over else self._slots).release()

    def request_read(self, request: socket.socket) -> None:
        """The handler has the whole request: answer it, do not evict it for a newcomer."""
        with self._lock:
            conn = self._conns.get(request)
            if conn is not None:
                conn.reading = False

    # --- time, errors, reporting ------------------------------------------------------------

    def service_actions(self) -> None:
        """Runs in the serving thread between accepts (every poll interval): cut late sockets."""
        now = time.monotonic()
        with self._lock:
            for sock, conn in self._conns.items():
                if conn.deadline <= now and not conn.cut:
                    self._cut(sock, conn, "timed_out")
        self._report()

    def _cut(self, sock: socket.socket, conn: _Conn, why: str) -> None:
        conn.cut = True
        self.counts[why] += 1
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # the handler's blocked recv/send returns at once

    def get_request(self) -> tuple[Any, Any]:
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                self.counts["no_files"] += 1
                time.sleep(ACCEPT_BACKOFF)
            raise  # socketserver drops this one connection attempt and carries on

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # a client that went away, or a connection we cut
            return
        if self.log is not None:
            where = exc.__traceback__ if exc else None
            while where is not None and where.tb_next is not None:
                where = where.tb_next
            at = f"{where.tb_frame.f_code.co_filename}:{where.tb_lineno}" if where else "?"
            self.log.error(f"{self.name}-internal-error", error=f"{type(exc).__name__}: {exc}", at=at)

    def _report(self) -> None:
        now = time.monotonic()
        if not self.counts or now - self._reported_at < REPORT_EVERY:
            return
        self._reported_at = now
        counts, self.counts = dict(self.counts), Counter()
        if self.log is not None:
            self.log.warning(f"{self.name}-pressure", limit=self.max_connections, **counts)

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            for sock, conn in self._conns.items():
                if not conn.cut:
                    self._cut(sock, conn, "closed")


def serve_in_thread(server: BoundedHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, args=(0.25,), name=server.name, daemon=True)
    thread.start()
    return thread


def linger(sock: socket.socket) -> None:
    """Close gently after answering without reading the body (411, 413): say we are done, then
    drain what the client still sends for a moment. Closing with unread data makes the kernel
    send a reset, and the client would see "connection reset" instead of our answer."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(LINGER_SECONDS)
        until, drained = time.monotonic() + LINGER_SECONDS, 0
        while drained < LINGER_BYTES and time.monotonic() < until:
            chunk = sock.recv(65536)
            if not chunk:
                return
            drained += len(chunk)
