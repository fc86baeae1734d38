"""Several sites built at once (``[build] jobs``), each in its own sandbox.

Each site already builds in its own folders (workspace, venvs, incremental cache, cache
entry) and its own sandboxed process tree, so sites can run side by side in threads: the
work is in the builders' subprocesses, not in Python. The release does not depend on how
many run at once: results come back in the plan's order, each site's output is a pure
function of its key, and the release tree is assembled only after every site is done.

How many: ``jobs`` (0: one per CPU), capped at the memory available now divided by
``job_memory_mb`` (a 2 GB runner does not start eight MkDocs builds), and at the number of
sites. On the first failure no new site starts; the sites already running finish, and the
failure of the earliest site in the plan's order is raised (the same error whatever the
timing).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from ..config import BuildConfig

T = TypeVar("T")
J = TypeVar("J")


def workers(settings: BuildConfig, sites: int) -> int:
    """How many sites to build at once."""
    wanted = settings.jobs or os.cpu_count() or 1
    by_memory = available_memory_mb() // settings.job_memory_mb
    return max(1, min(wanted, by_memory, sites))


def available_memory_mb() -> int:
    """MemAvailable from /proc/meminfo (Linux), or a large number where it is not known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 1 << 20


def run_all(build: Callable[[J], T], jobs: Sequence[J], count: int) -> list[T]:
    """``build`` of every job, ``count`` at once, results in the jobs' order."""
    if count <= 1 or len(jobs) <= 1:
        return [build(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="site") as pool:
        futures = [pool.submit(build, job) for job in jobs]
        for future in futures:
            future.add_done_callback(lambda done: _stop_on_failure(done, futures))
        errors = [f.exception() for f in futures if not f.cancelled()]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return [f.result() for f in futures]


def _stop_on_failure(done: Future[T], futures: list[Future[T]]) -> None:
    if not done.cancelled() and done.exception() is not None:
        for future in futures:
            future.cancel()  # those not started yet; running ones finish
