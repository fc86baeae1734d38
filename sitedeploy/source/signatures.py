"""Refuse commits that are not signed by a trusted key (``source.verify_signatures``).

``git verify-commit`` does the cryptography; this module picks the trust store and turns its
answer into a :class:`~sitedeploy.errors.SignatureError` that names the commit and the signer:

    ssh   ``gpg.ssh.allowedSignersFile`` = ``source.allowed_signers`` (see ssh-keygen(1),
          ALLOWED SIGNERS): the key must be listed for a principal
    gpg   ``GNUPGHOME`` = ``source.gpg_home``: the key must be in that keyring

The signature's format must match the mode, so an SSH-mode deploy never falls back to the
user's own GnuPG keyring (and the other way round).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError, SignatureError

if TYPE_CHECKING:
    from ..config import Config
    from .repository import Commit, Source
from .gitrun import Git

Mode = Literal["ssh", "gpg"]
_ARMOR = {"ssh": "-----BEGIN SSH SIGNATURE-----", "gpg": "-----BEGIN PGP SIGNATURE-----"}
_SSH_GOOD = re.compile(r'Good "git" signature for (?P<who>\S+) with (?P<key>\S+ key \S+)')
_SSH_KEY = re.compile(r"(?P<key>\S+ key SHA256:\S+)")
_GPG_GOOD = re.compile(r"\[GNUPG:\] GOODSIG (?P<key>\S+) (?P<who>.*)")
_GPG_KEY = re.compile(r"\[GNUPG:\] (?:ERRSIG|NO_PUBKEY|BADSIG|EXPKEYSIG|REVKEYSIG) (?P<key>\S+)")


def verify_commit(
    git_dir: Path,
    sha: str,
    mode: Mode,
    *,
    allowed_signers: Path | None = None,
    gpg_home: Path | None = None,
) -> str:
    """Return who signed ``sha`` (``alice@example.com (ED25519 key SHA256:…)``) or raise."""
    short = sha[:12]
    kind = _signature_kind(git_dir, sha)
    if kind is None:
        raise SignatureError(f"commit {short} is not signed; sign it ({_how(mode)}) or push a signed commit")
    if kind != mode:
        raise SignatureError(
            f"commit {short} has a {kind} signature but verify_signatures = {mode!r}; "
            f"sign it with {_how(mode)}"
        )
    trusted, output = _run_verify(git_dir, sha, mode, allowed_signers, gpg_home)
    if trusted:
        return _signer(mode, output)
    key = _key(mode, output)
    store = allowed_signers if mode == "ssh" else (gpg_home or "the default GnuPG keyring")
    raise SignatureError(
        f"commit {short} is signed by {key or 'an unknown key'}, which is not trusted by {store}; "
        "add the key there if it belongs to a committer, or revert the commit"
    )


def _signature_kind(git_dir: Path, sha: str) -> str | None:
    raw = Git(git_dir).text("cat-file", "commit", sha, doing=f"read commit {sha[:12]}")
    header = raw.split("\n\n", 1)[0]
    for mode, armor in _ARMOR.items():
        if f"gpgsig {armor}" in header or f"gpgsig-sha256 {armor}" in header:
            return mode
    return "x509" if "gpgsig " in header else None


def _run_verify(
    git_dir: Path, sha: str, mode: Mode, allowed: Path | None, home: Path | None
) -> tuple[bool, str]:
    """What ``git verify-commit`` printed, and whether it trusts the signature."""
    env: dict[str, str] = {}
    options: list[str] = []
    if mode == "ssh":
        if allowed is None or not allowed.is_file():
            raise ConfigError(f"source.allowed_signers: {allowed} is not a file (see ssh-keygen(1))")
        options = ["-c", f"gpg.ssh.allowedSignersFile={allowed}"]
    elif home is not None:
        if not home.is_dir():
            raise ConfigError(f"source.gpg_home: {home} is not a folder")
        env["GNUPGHOME"] = str(home)
    proc = Git(git_dir).completed(*options, "verify-commit", "--raw", sha, env=env, doing="verify-commit")
    return proc.returncode == 0, (proc.stdout + proc.stderr).decode(errors="replace")


def _signer(mode: Mode, output: str) -> str:
    pattern = _SSH_GOOD if mode == "ssh" else _GPG_GOOD
    match = pattern.search(output)
    return f"{match['who']} ({match['key']})" if match else "a trusted key"


def _key(mode: Mode, output: str) -> str | None:
    match = (_SSH_KEY if mode == "ssh" else _GPG_KEY).search(output)
    return match["key"] if match else None


def _how(mode: Mode) -> str:
    return "git commit -S with gpg.format=ssh" if mode == "ssh" else "git commit -S with a GnuPG key"


@dataclass(frozen=True)
class Signature:
    """What ``source.verify_signatures`` found for a commit: who signed it, or why it fails."""

    signer: str | None = None
    problem: str | None = None

    def hold(self, *, force: bool) -> str | None:
        """Refuse a commit that failed the check; with ``force``, the note history keeps."""
        if self.problem is None:
            return None
        if not force:
            raise SignatureError(f"{self.problem}; or pass --force to deploy it anyway")
        return f"forced: {self.problem}"


def check_signature(config: Config, source: Source, commit: Commit) -> Signature:
    try:
        return Signature(signer=verify_signature(config, source, commit))
    except SignatureError as exc:
        return Signature(problem=exc.message)


def verify_signature(config: Config, source: Source, commit: Commit) -> str | None:
    """The commit's signer, if ``verify_signatures`` asks for one; raises SignatureError."""
    mode = config.source.verify_signatures
    if mode == "off":
        return None
    src = config.source
    return verify_commit(
        source.mirror_dir,
        commit.sha,
        mode,
        allowed_signers=config.resolve(src.allowed_signers) if src.allowed_signers else None,
        gpg_home=config.resolve(src.gpg_home) if src.gpg_home else None,
    )
