"""The sandbox room: running code a content repo controls, and reading what it wrote.

- :mod:`.bwrap`: a step (a build, ``pip install``, the image worker) run under bubblewrap;
- :mod:`.untrusted`: the one way the deployer reads a folder sandboxed code could write;
- :mod:`.cacheseal`: seals of the caches a build may write, checked before reuse;
- :mod:`.venvs`: a site's pinned requirements, downloaded outside and installed inside;
- :mod:`.hints`: what to do when the kernel refuses the sandbox's namespaces.
"""

from .bwrap import (
    ENV_ALLOW,
    OFF_WARNING,
    TMPFS_BYTES,
    Mode,
    Step,
    allowed_env,
    bwrap_argv,
    log_path,
    prepare,
    python_roots,
    require_bwrap,
    run,
)

__all__ = [
    "ENV_ALLOW",
    "OFF_WARNING",
    "TMPFS_BYTES",
    "Mode",
    "Step",
    "allowed_env",
    "bwrap_argv",
    "log_path",
    "prepare",
    "python_roots",
    "require_bwrap",
    "run",
]
