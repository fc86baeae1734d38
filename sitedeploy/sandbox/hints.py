"""Why bubblewrap could not start, in words an operator can act on.

bwrap's own message when it cannot make its namespaces blames the kernel ("likely because the
kernel does not allow non-privileged user namespaces"). On a server the cause is more often
the service manager or a security module, so a failed build step whose output shows bwrap
failing there gets the likely causes named (see ``contrib/*.service`` for units that allow
exactly what the sandbox needs).
"""

from __future__ import annotations

from collections.abc import Iterable

# What bwrap prints when a namespace, or a mount or setting inside one, is refused.
_SIGNS = ("namespace", "uid map", "gid map", "unshare", "mount proc", "sethostname", "netlink")

HINT = (
    "the build sandbox (bubblewrap) could not set up its namespaces; likely causes: a systemd "
    "unit's RestrictNamespaces= (bwrap needs user mnt pid ipc uts cgroup net), ProtectHostname=, "
    "ProtectKernelTunables= or a RestrictAddressFamilies= without AF_NETLINK (use the units in "
    "contrib/), the sysctls kernel.unprivileged_userns_clone=0 or user.max_user_namespaces=0, or "
    "AppArmor's kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 23.10+: add an AppArmor "
    "profile for bwrap allowing userns)"
)


def namespace_hint(lines: Iterable[str]) -> str:
    """``" (<the likely causes>)"`` when bwrap failed setting up its sandbox, else ``""``."""
    for line in lines:
        text = line.strip().lower()
        if text.startswith("bwrap:") and any(sign in text for sign in _SIGNS):
            return f" ({HINT})"
    return ""
