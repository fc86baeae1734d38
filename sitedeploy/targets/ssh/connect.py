"""Opening one SSH connection: ``~/.ssh/config``, host-key checks, authentication.

Host keys are always verified against ``known_hosts``; an unknown key is refused with its type
and SHA256 fingerprint and the command that trusts it, a changed key is refused with both
fingerprints. Nothing is ever added to ``known_hosts`` by sitedeploy.

Authentication: ``key_file`` when set (and only it, so a wrong key fails clearly instead of
falling through to whatever the agent holds); otherwise the ``IdentityFile`` entries of
``~/.ssh/config``, ssh-agent and the default keys (``~/.ssh/id_ed25519`` ...), as ``ssh`` does.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import paramiko

from ...config import SSHTargetConfig
from ...errors import HostKeyError, Misconfigured


@dataclass(frozen=True)
class Endpoint:
    """Where one entry of ``hosts`` really points, after ``~/.ssh/config``."""

    label: str
    """The entry as written in deploy.toml, for messages."""
    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    use_agent: bool

    @property
    def known_hosts_name(self) -> str:
        """How OpenSSH (and paramiko) name this server in known_hosts."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


def split_host(entry: str) -> tuple[str, int | None]:
    """``web1`` / ``web1:2222`` / ``[::1]:2222`` -> (host, port or None)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port)
    return entry, None


def resolve(entry: str, cfg: SSHTargetConfig) -> Endpoint:
    """Apply ``~/.ssh/config`` (HostName, Port, User, IdentityFile) to one ``hosts`` entry.

    Explicit keys in deploy.toml (a ``:port`` in the entry, ``user``, ``key_file``) win over
    the ssh config, the way command-line options win over it for ``ssh``.
    """
    alias, port = split_host(entry)
    options = _ssh_config(cfg.ssh_config).lookup(alias)
    identity = tuple(os.path.expanduser(p) for p in options.get("identityfile", []))
    identity = tuple(p for p in identity if os.path.exists(p))
    key_files = (os.path.expanduser(cfg.key_file),) if cfg.key_file else identity
    return Endpoint(
        label=entry,
        hostname=options.get("hostname", alias),
        port=port or _port(options.get("port", "22"), alias, cfg.ssh_config),
        user=cfg.user or options.get("user") or getpass.getuser(),
        key_files=key_files,
        use_agent=cfg.key_file is None,
    )


def _ssh_config(path: str) -> paramiko.SSHConfig:
    full = Path(path).expanduser()
    try:
        return paramiko.SSHConfig.from_path(str(full))
    except FileNotFoundError:
        return paramiko.SSHConfig()
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise Misconfigured(f"cannot read ssh config {full}: {exc}; fix it or set ssh_config") from None


def _port(value: str, alias: str, path: str) -> int:
    """The ``Port`` ssh_config gives ``alias``, or a Misconfigured naming the file and line."""
    if value.isdigit() and 0 < int(value) < 65536:
        return int(value)
    full = Path(path).expanduser()
    raise Misconfigured(
        f"{full}{_line_of(full, 'Port', value)}: Port {value!r} (for host {alias!r}) is not a port "
        "number 1-65535; fix that line, or set ssh_config to another file"
    )


def _line_of(path: Path, keyword: str, value: str) -> str:
    """`` line N`` of the first ``keyword value`` line in ``path`` ('' if not found there, say
    in an Include'd file): paramiko keeps no line numbers."""
    wanted = re.compile(rf"^\s*{keyword}(?:\s*=\s*|\s+)\"?{re.escape(value)}\"?\s*$", re.I)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((f" line {n}" for n, line in enumerate(lines, 1) if wanted.match(line)), "")


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class RefuseUnknownKey(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, refusing with a message a person can act on."""

    def __init__(self, where: str, endpoint: Endpoint, known_hosts: str, revoked: Revoked) -> None:
        self.where = where
        self.endpoint = endpoint
        self.known_hosts = known_hosts
        self.revoked = revoked

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> NoReturn:
        refuse_revoked(self.where, self.endpoint, self.known_hosts, self.revoked, key)
        ep = self.endpoint
        raise HostKeyError(
            f"{self.where}: unknown host key {key.get_name()} {fingerprint(key)} for {ep.known_hosts_name}"
            f" (not in {self.known_hosts}); refusing to connect. Check the fingerprint with the "
            f"server's admin (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then trust it: "
            f"ssh-keyscan -p {ep.port} {ep.hostname} >> {self.known_hosts}"
        )


class AEADFirstTransport(paramiko.Transport):
    """paramiko's transport offering AES-GCM first: an AEAD cipher needs no separate HMAC pass
    over every packet, about a tenth of this side's CPU in a bulk upload. A server without it
    agrees on the next cipher offered (aes-ctr)."""

    _preferred_ciphers = tuple(
        sorted(paramiko.Transport._preferred_ciphers, key=lambda c: "-gcm@" not in c)  # type: ignore[attr-defined]
    )


def connect(where: str, ep: Endpoint, cfg: SSHTargetConfig) -> paramiko.SSHClient:
    """A connected, authenticated client. Raises HostKeyError (unknown, changed or revoked key,
    unreadable known_hosts) itself; paramiko and socket errors are left to ``SSHHost.step``."""
    known_hosts = os.path.expanduser(cfg.known_hosts)
    client = paramiko.SSHClient()
    revoked = _load_known_hosts(client, where, known_hosts)
    client.set_missing_host_key_policy(RefuseUnknownKey(where, ep, known_hosts, revoked))
    sock: socket.socket | None = None
    try:
        sock = socket.create_connection((ep.hostname, ep.port), timeout=cfg.connect_timeout)
        # Small SFTP requests wait on one another: without this, Nagle's algorithm and delayed
        # ACKs add ~40 ms to many of them.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.connect(
            ep.hostname,
            ep.port,
            username=ep.user,
            key_filename=list(ep.key_files) or None,  # type: ignore[arg-type]  # str or list
            allow_agent=ep.use_agent,
            look_for_keys=ep.use_agent,
            timeout=cfg.connect_timeout,
            banner_timeout=cfg.connect_timeout,
            auth_timeout=cfg.connect_timeout,
            sock=sock,
            transport_factory=AEADFirstTransport,  # type: ignore[arg-type]  # the stubs lag paramiko
        )
    except BaseException as exc:
        client.close()
        if sock is not None:
            sock.close()
        if isinstance(exc, paramiko.BadHostKeyException):
            raise _changed_key(where, ep, known_hosts, exc) from None
        raise
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(15)
        try:  # a key listed as trusted and also @revoked: revoked wins, as in OpenSSH
            refuse_revoked(where, ep, known_hosts, revoked, transport.get_remote_server_key())
        except HostKeyError:
            client.close()
            raise
    return client


Revoked = dict[str, int]
"""Base64 key blob of each ``@revoked`` line of known_hosts → its line number."""


def _load_known_hosts(client: paramiko.SSHClient, where: str, path: str) -> Revoked:
    """Trusted keys into ``client``; the revoked ones returned. Parsed here rather than by
    paramiko, which fails on marker lines (``@revoked``, ``@cert-authority``) with an error
    that named no file or line."""
    if not os.path.exists(path):
        return {}  # every key is unknown: refused below with the command that trusts it
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise HostKeyError(f"{where}: cannot read known_hosts {path}: {exc}") from None
    revoked: Revoked = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("@revoked"):
            fields = line.split()
            if len(fields) >= 4:
                revoked[fields[3]] = number
        elif line and not line.startswith(("#", "@")):  # @cert-authority: host certificates
            _trust(client, where, path, number, line)  # are not supported; such hosts are unknown
    return revoked


def _trust(client: paramiko.SSHClient, where: str, path: str, number: int, line: str) -> None:
    try:
        entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
    except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException) as exc:
        raise HostKeyError(
            f"{where}: {path} line {number}: not a valid known_hosts entry ({type(exc).__name__}); "
            "fix or delete that line (ssh-keygen -R HOST removes a host's lines)"
        ) from None
    if entry is None:  # too few fields or a key type paramiko does not know: skipped, as ssh does
        return
    for name in entry.hostnames:
        client.get_host_keys().add(name, entry.key.get_name(), entry.key)


def refuse_revoked(where: str, ep: Endpoint, known_hosts: str, revoked: Revoked, key: paramiko.PKey) -> None:
    line = revoked.get(key.get_base64())
    if line is not None:
        raise HostKeyError(
            f"{where}: the host key {key.get_name()} {fingerprint(key)} of {ep.known_hosts_name} is "
            f"marked @revoked in {known_hosts} line {line}; refusing to connect. Ask the server's "
            "admin for its new key, or remove the @revoked line if the revocation was a mistake"
        )


def _changed_key(
    where: str, ep: Endpoint, known_hosts: str, exc: paramiko.BadHostKeyException
) -> HostKeyError:
    return HostKeyError(
        f"{where}: HOST KEY CHANGED for {ep.known_hosts_name}: the server offers "
        f"{exc.key.get_name()} {fingerprint(exc.key)}, {known_hosts} has "
        f"{exc.expected_key.get_name()} {fingerprint(exc.expected_key)}; refusing to connect "
        f"(possible man-in-the-middle). If the server was reinstalled, check the new fingerprint "
        f"with its admin, then: ssh-keygen -R '{ep.known_hosts_name}' -f {known_hosts} && "
        f"ssh-keyscan -p {ep.port} {ep.hostname} >> {known_hosts}"
    )
