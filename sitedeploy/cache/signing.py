"""Signing shared-cache entries with SSH keys (``ssh-keygen -Y``), and checking them.

An entry in a shared cache was made on another machine (a CI runner, another agent): the
bucket or folder is writable by more hands than the deployer's, so an entry counts only if
a key in ``[build] cache_allowed_signers`` signed it. What is signed binds the entry to its
key (:func:`message`): a validly signed build of site A copied under site B's key does not
verify. The namespace ``sitedeploy-cache`` keeps a cache signature from ever passing for a
commit or file signature made with the same key, and the other way round.
"""

from __future__ import annotations

import re
import subprocess  # nosec B404 - fixed argv lists, no shell
import tempfile
from pathlib import Path

NAMESPACE = "sitedeploy-cache"
_PRINCIPAL = re.compile(r"^(\S+)$", re.M)


def message(key: str, digest: str) -> bytes:
    """What a signature covers: the entry's key and the sha256 of its archive."""
    return f"sitedeploy-cache-entry v1 {key} {digest}\n".encode()


def sign(data: bytes, private_key: Path) -> bytes:
    """An armored SSH signature of ``data``; raises OSError with ssh-keygen's reason."""
    with tempfile.TemporaryDirectory(prefix="sitedeploy-sign-") as tmp:
        path = Path(tmp) / "entry"
        path.write_bytes(data)
        proc = subprocess.run(  # nosec B603 B607 - argv list
            ["ssh-keygen", "-q", "-Y", "sign", "-n", NAMESPACE, "-f", str(private_key), str(path)],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if proc.returncode != 0:
            reason = proc.stderr.decode(errors="replace").strip().splitlines()
            raise OSError(f"ssh-keygen -Y sign failed: {reason[-1] if reason else proc.returncode}")
        return (Path(tmp) / "entry.sig").read_bytes()


def verify(data: bytes, signature: bytes, allowed_signers: Path) -> str | None:
    """Who signed ``data`` (a principal of ``allowed_signers``), or None: no valid signature
    by a listed key."""
    if not signature.startswith(b"-----BEGIN SSH SIGNATURE-----"):
        return None
    with tempfile.TemporaryDirectory(prefix="sitedeploy-verify-") as tmp:
        sig = Path(tmp) / "entry.sig"
        sig.write_bytes(signature)
        found = _run(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)], b"")
        for principal in _PRINCIPAL.findall(found or ""):
            argv = [
                "-Y",
                "verify",
                "-f",
                str(allowed_signers),
                "-I",
                principal,
                "-n",
                NAMESPACE,
                "-s",
                str(sig),
            ]
            if _run(argv, data) is not None:
                return str(principal)
    return None


def _run(args: list[str], stdin: bytes) -> str | None:
    """ssh-keygen's output, or None when it refused."""
    proc = subprocess.run(  # nosec B603 B607 - argv list
        ["ssh-keygen", *args], input=stdin, capture_output=True, check=False
    )
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 else None
