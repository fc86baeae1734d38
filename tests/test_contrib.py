"""The shipped systemd units let the build sandbox run: what they allow is derived from the
bubblewrap arguments the code uses (``sandbox.bwrap_argv``), and bwrap's failure to set up its
namespaces names the usual causes instead of only the kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitedeploy.builders import Job, failure
from sitedeploy.sandbox import bwrap_argv

CONTRIB = Path(__file__).parent.parent / "contrib"
UNITS = sorted(CONTRIB.glob("*.service"))
# bwrap's flag -> the namespace it makes (systemd's RestrictNamespaces= names).
FLAG_NAMESPACE = {"user": "user", "pid": "pid", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup", "net": "net"}


def directives(unit: Path) -> dict[str, str]:
    """``Key=value`` lines of a unit (the last one wins, as in systemd)."""
    found = {}
    for line in unit.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(("#", ";")):
            found[key.strip()] = value.strip()
    return found


def sandbox_argv() -> list[str]:
    """Every argument the build sandbox uses, with and without network (pip's step has it)."""
    common = {"env": {}, "read_only": [], "writable": [], "cwd": Path("/")}
    return [*bwrap_argv(["true"], network=False, **common), *bwrap_argv(["true"], network=True, **common)]


def namespaces_bwrap_makes() -> set[str]:
    made = {"mnt"}  # bwrap always makes a mount namespace: its root is a fresh tmpfs
    for arg in sandbox_argv():
        if arg.startswith("--unshare-"):
            made.add(FLAG_NAMESPACE[arg.removeprefix("--unshare-").removesuffix("-try")])
    return made


def test_there_are_units_to_check() -> None:
    assert {u.name for u in UNITS} == {"sitedeploy-agent.service", "sitedeploy-agent-once.service"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_units_allow_exactly_the_namespaces_bwrap_makes(unit: Path) -> None:
    allowed = set(directives(unit)["RestrictNamespaces"].split())
    assert allowed == namespaces_bwrap_makes()


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_units_set_nothing_that_stops_what_bwrap_does_inside(unit: Path) -> None:
    found, argv = directives(unit), sandbox_argv()
    on = {"true", "yes", "1", "on", "strict", "invisible", "noaccess", "ptraceable"}
    if "--proc" in argv:  # an overmounted /proc makes the kernel refuse a fresh one in a userns
        for key in ("ProtectKernelTunables", "ProtectKernelLogs", "ProtectProc", "ProcSubset"):
            assert found.get(key, "no").lower() not in on | {"pid"}, key
    if "--hostname" in argv:  # ProtectHostname's seccomp filter refuses sethostname
        assert found.get("ProtectHostname", "no").lower() not in on
    if "--unshare-net" in argv:  # bwrap brings up the new namespace's loopback over netlink
        assert "AF_NETLINK" in found["RestrictAddressFamilies"].split()
    assert found["ExecStart"].startswith("/opt/sitedeploy/bin/sitedeploy ")


@pytest.mark.parametrize(
    "said",
    [
        "bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
        "non-privileged user namespaces. On e.g. debian this can be enabled with "
        "'sysctl kernel.unprivileged_userns_clone=1'.",
        "bwrap: setting up uid map: Permission denied",
        "bwrap: Can't mount proc on /newroot/proc: Operation not permitted",
        "bwrap: loopback: Failed to create NETLINK_ROUTE socket: Address family not supported by protocol",
    ],
)
def test_a_namespace_failure_names_systemd_the_sysctls_and_apparmor(tmp_path: Path, said: str) -> None:
    log = tmp_path / "output.log"
    log.write_text(said + "\n")
    job = Job("docs", "sites/docs", tmp_path, tmp_path / "out", tmp_path, 0, False, "bwrap", tmp_path)
    message = failure(job, "mkdocs", log).message
    assert said in message and "\n" not in message
    for cause in (
        "RestrictNamespaces",
        "kernel.unprivileged_userns_clone",
        "user.max_user_namespaces",
        "kernel.apparmor_restrict_unprivileged_userns",
    ):
        assert cause in message


def test_an_ordinary_build_failure_gets_no_sandbox_hint(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    log.write_text("ERROR - Config value 'nav': a namespace-like word in a user's own error\n")
    job = Job("docs", "sites/docs", tmp_path, tmp_path / "out", tmp_path, 0, False, "bwrap", tmp_path)
    assert "RestrictNamespaces" not in failure(job, "mkdocs", log).message
