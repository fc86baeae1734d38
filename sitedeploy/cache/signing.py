"""Signing shared-cache entries with SSH keys (``ssh-keygen -Y``), and checking them.

An entry in a shared cache was made on another machine (a CI runner, another agent): the
bucket or folder is writable by more hands than the deployer's, so an entry counts only if
a key in ``[build] cache_allowed_signers`` signed it. What is signed binds each entry to its
key (:func:`listing`): a validly signed build of site A copied under site B's key does not
verify. The namespace ``sitedeploy-cache`` keeps a cache signature from ever passing for a
commit or file signature made with the same key, and the other way round.
"""

from __future__ import annotations

import base64
import binascii
import re
import subprocess  # nosec B404 - fixed argv lists, no shell
import tempfile
from collections.abc import Iterable
from pathlib import Path

NAMESPACE = "sitedeploy-cache"
_PRINCIPAL = re.compile(r"^(\S+)$", re.M)


LISTING_HEAD = b"sitedeploy-cache-entries v2\n"


def listing(entries: Iterable[tuple[str, str]]) -> bytes:
    """What a signature covers: each entry's key with the sha256 of its archive, one a line
    (entries signed together, see :mod:`.entries`)."""
    return LISTING_HEAD + "".join(f"{key} {digest}\n" for key, digest in sorted(entries)).encode()


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
    by a listed key.

    ``ssh-keygen -Y verify`` decides, always, for a principal it is given. Which principal
    to ask about is read here from the signature's public key and the lines of
    ``allowed_signers`` naming that very key (one process per entry, not two); a key listed
    only through a pattern or a certificate authority falls back to ``-Y find-principals``.
    Reading it wrong can only make ``verify`` refuse, never accept."""
    if not signature.startswith(b"-----BEGIN SSH SIGNATURE-----"):
        return None
    with tempfile.TemporaryDirectory(prefix="sitedeploy-verify-") as tmp:
        sig = Path(tmp) / "entry.sig"
        sig.write_bytes(signature)
        for principal in _listed_principals(signature, allowed_signers):
            if _verify_as(principal, data, sig, allowed_signers):
                return principal
        found = _run(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)], b"")
        for principal in _PRINCIPAL.findall(found or ""):
            if _verify_as(principal, data, sig, allowed_signers):
                return str(principal)
    return None


def _verify_as(principal: str, data: bytes, sig: Path, allowed_signers: Path) -> bool:
    argv = ["-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE, "-s", str(sig)]
    return _run(argv, data) is not None


def _listed_principals(signature: bytes, allowed_signers: Path) -> list[str]:
    """The plain principals (no patterns) of the lines of ``allowed_signers`` that list the
    public key inside ``signature``; [] when either cannot be read."""
    key = _signature_key(signature)
    if key is None:
        return []
    try:
        lines = allowed_signers.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    found: list[str] = []
    for line in lines:
        fields = line.split()
        if not fields or fields[0].startswith("#") or not any(_b64(f) == key for f in fields[1:]):
            continue
        found += [p for p in fields[0].split(",") if p and not set(p) & set('*?!"')]
    return found


def _signature_key(signature: bytes) -> bytes | None:
    """The public key blob of an armored SSHSIG (PROTOCOL.sshsig), or None."""
    body = b"".join(line for line in signature.splitlines() if not line.startswith(b"-----"))
    blob = _b64(body.decode("ascii", errors="replace"))
    if blob is None or not blob.startswith(b"SSHSIG") or len(blob) < 14:
        return None
    length = int.from_bytes(blob[10:14], "big")
    key = blob[14 : 14 + length]
    return key if len(key) == length and length > 0 else None


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None


def _run(args: list[str], stdin: bytes) -> str | None:
    """ssh-keygen's output, or None when it refused."""
    proc = subprocess.run(  # nosec B603 B607 - argv list
        ["ssh-keygen", *args], input=stdin, capture_output=True, check=False
    )
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 else None
