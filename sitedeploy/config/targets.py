"""The ``[targets.<name>]`` tables of ``deploy.toml``: keys every target understands (with the
versions and previews keys), then one dataclass per target type.

Like :mod:`sitedeploy.config`, of which this is a part, the dataclasses are the configuration
reference: each field is a key, its default is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..names import line_problem
from ..redirects.reload import command_argv
from .ranges import at_least, greater_than, http_url, http_urls, permission_mode
from .schema import required, setting


@dataclass(frozen=True, kw_only=True)
class TargetConfig:
    """Keys every target type understands."""

    type: str = required()
    """``"local"``, ``"ssh"`` or ``"s3"``."""
    keep_releases: int = 10
    """Releases kept for an instant rollback, the live one included; older ones are pruned."""
    max_delete: int = setting(256, at_least(0))
    """Refuse a deploy that would delete more files than this (``--force-delete`` overrides)."""
    removed_pages: Literal["warn", "refuse", "allow"] = "warn"
    """A deploy that removes live pages no ``_redirects`` rule covers: list them with suggested
    rules and go on (``warn``), stop (``refuse``; ``--force`` overrides, noted in history), or
    say nothing (``allow``)."""
    lock_timeout: float = setting(0.0, at_least(0))
    """Seconds to wait for another deploy's lock before giving up."""
    lock_ttl: float = setting(60.0, at_least(1))
    """Seconds a deploy's lock lease lasts unless its holder renews it (every third of it): a
    deployer that dies blocks others for at most this long (plus one renewal interval)."""
    ref: str | None = None
    """What the agent follows: ``branch:main`` or ``tag:v*``; default: the source branch."""
    prereleases: bool = False
    """With ``ref = "tag:…"``: may the newest tag be a pre-release (``v1.4.0-rc.1``)? By default
    the agent follows final releases only; the order is semantic-version precedence either way."""
    check_urls: tuple[str, ...] = setting((), http_urls)
    """URLs the agent fetches after a switch; a failure rolls back automatically."""
    drift: Literal["off", "alert", "repair"] = "alert"
    """What the agent does when served files differ from the live release: nothing, notify, or
    restore them."""
    marker_url: str | None = setting(None, http_url)
    """Where the live deploy marker is served; default: /.well-known/sitedeploy.json on the
    host of the first check_url."""

    # --- versions and previews (sitedeploy.versions; manual: versions.md) --------------
    versions: str | None = None
    """Refs served side by side, each at ``<version>/``: ``"tag:v*"`` (or ``"branch:release-*"``)."""
    version_format: str = "{major}.{minor}"
    """Tag → version name; ``{major}``, ``{minor}``, ``{patch}``, ``{prerelease}``, ``{tag}``,
    ``{name}`` (the tag without a leading ``v``). Tags giving the same name: the newest wins."""
    version_title: str = "{version}"
    """Shown in Material's version selector; ``{version}`` and the fields above."""
    version_site: str | None = None
    """With several sites: the one each version holds, at the version's root."""
    aliases: dict[str, str] = field(default_factory=lambda: {"latest": "newest"})
    """Alias → rule: ``"newest"``, ``"newest-stable"`` (no pre-release suffix) or a version."""
    default_version: str | None = None
    """Where the root sends readers (a version or alias); default: ``latest``, else the newest."""
    previews: str | tuple[str, ...] | None = None
    """Refs deployed as previews, each at ``<preview_path>/<slug>/``: ``"branch:*"``, and pull or
    merge requests with ``"pull:*"`` (a list takes several: ``["branch:docs/*", "pull:*"]``);
    ``"engine:zensical"`` (or ``properdocs``, ``mkdocs``) publishes the followed branch built with that
    engine at ``en-zensical/``."""
    preview_path: str = "previews"
    """Below the target's path (or prefix): the previews' own root."""
    preview_url: str | None = None
    """URL template printed and notified for a preview: ``https://preview.example.com/{slug}/``."""
    preview_max_age_days: float = 14.0
    """A preview not updated for this long is removed by the agent (0 = never)."""

    def __post_init__(self) -> None:
        if self.keep_releases < 2:
            raise ValueError("keep_releases must be at least 2 (the live release and one to roll back to)")
        check_versions_keys(self)


_VERSION_FIELDS = ("major", "minor", "patch", "prerelease", "tag", "name", "version")


def preview_specs(cfg: TargetConfig) -> tuple[str, ...]:
    """``previews`` as a tuple of specs, whether the file gave one string or a list."""
    value = cfg.previews
    return (value,) if isinstance(value, str) else tuple(value or ())


def check_versions_keys(cfg: TargetConfig) -> None:
    """The versions/previews keys of a target (their meaning lives in ``sitedeploy.versions``)."""
    specs: list[tuple[str, str | None, tuple[str, ...], str]] = [
        ("versions", cfg.versions, ("tag", "branch"), "v*")
    ]
    specs += [("previews", spec, ("branch", "pull", "engine"), "*") for spec in preview_specs(cfg)]
    for key, value, kinds, example in specs:
        kind, sep, pattern = (value or "").partition(":")
        if value is not None and (not sep or kind not in kinds or not pattern):
            shapes = " or ".join(f'"{k}:<pattern>"' for k in kinds)
            raise ValueError(f'{key} must look like {shapes} (for example "{kinds[0]}:{example}")')
        engines = ("mkdocs", "properdocs", "zensical")
        if kind == "engine" and pattern not in engines:
            raise ValueError(
                f'previews: "{value}" names no engine; use "engine:" with one of {", ".join(engines)}'
            )
    for key in ("version_format", "version_title"):
        try:
            getattr(cfg, key).format(**dict.fromkeys(_VERSION_FIELDS, "1"))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{key}: unknown field {exc} (use {', '.join(_VERSION_FIELDS)})") from None
    named = [("aliases:", alias) for alias in cfg.aliases]
    named += [("default_version:", cfg.default_version)] if cfg.default_version is not None else []
    for key, name in named:
        problem = line_problem(name, key)
        if problem is not None:
            raise ValueError(problem)
    if cfg.versions and cfg.previews and not cfg.preview_path.strip("/"):
        raise ValueError("preview_path must name a folder when the target also serves versions")
    if cfg.preview_max_age_days < 0:
        raise ValueError("preview_max_age_days must be 0 (never) or a positive number of days")


@dataclass(frozen=True, kw_only=True)
class LocalTargetConfig(TargetConfig):
    path: str = required()
    """Folder that receives ``releases/``, ``current`` and ``.sitedeploy/``."""
    reload_command: str | tuple[str, ...] | None = None
    """Run after each switch so the web server reads the live release's redirects and headers
    (``["sudo", "systemctl", "reload", "nginx"]``); a string is split into words, never run by
    a shell. See ``sitedeploy nginx-config``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        command_argv(self.reload_command)


@dataclass(frozen=True, kw_only=True)
class SSHTargetConfig(TargetConfig):
    hosts: tuple[str, ...] = required()
    """``host`` or ``host:port``; ~/.ssh/config is honoured."""
    user: str | None = None
    """Login name; default: ~/.ssh/config's User, then your user name."""
    path: str = required()
    """Folder on every host receiving ``releases/``, ``current`` and ``.sitedeploy/``; absolute,
    or relative to the login's home folder."""
    key_file: str | None = None
    """Offer only this private key; default: ssh-agent, IdentityFile, ~/.ssh/id_*."""
    known_hosts: str = "~/.ssh/known_hosts"
    """Host keys are verified against this file; nothing is ever added to it."""
    ssh_config: str = "~/.ssh/config"
    """HostName, Port, User and IdentityFile in it are honoured."""
    connect_timeout: float = setting(10.0, greater_than(0))
    """Seconds to wait for a host to answer while connecting."""
    file_mode: int = setting(0o644, permission_mode(0o777))
    """Mode of every file sent (write it as ``0o644`` in TOML)."""
    dir_mode: int = setting(0o755, permission_mode(0o2777))
    """Mode of every folder of a release; setgid (``0o2775``) is allowed for shared groups."""
    reload_command: str | tuple[str, ...] | None = None
    """Run on every host after each switch (``sudo systemctl reload nginx``) so nginx reads the
    live release's redirects and headers; quoted word by word, never built into a shell line."""

    def __post_init__(self) -> None:
        super().__post_init__()
        command_argv(self.reload_command)
        if not self.hosts:
            raise ValueError("hosts must list at least one host ('web1' or 'web1:2222')")
        for entry in self.hosts:
            port = entry.rpartition("]")[2] if entry.startswith("[") else entry
            port = port.partition(":")[2] if port.count(":") == 1 else ""
            if not entry.strip(" []:") or (port and not (port.isdigit() and 0 < int(port) < 65536)):
                raise ValueError(f"hosts: {entry!r} is not 'host' or 'host:port'")
        if not self.path.strip():
            raise ValueError("path must name the folder that receives releases/ and current")


@dataclass(frozen=True, kw_only=True)
class S3TargetConfig(TargetConfig):
    bucket: str = required()
    """The bucket's name."""
    prefix: str = ""
    """Key prefix the site lives under, e.g. ``"docs/"``; the distribution serves it as its root."""
    region: str | None = None
    """The bucket's region; default: from the profile or environment."""
    endpoint_url: str | None = setting(None, http_url)
    """Any S3-compatible service (path-style addressing), e.g. MinIO."""
    profile: str | None = None
    """A profile in ~/.aws/config; default: the standard AWS credential chain."""
    cloudfront_distribution_id: str | None = None
    """Invalidate the changed paths of this CloudFront distribution after a switch."""
    invalidation_budget: int = setting(15, greater_than(0))
    """More changed paths than this collapse into folder wildcards."""
    retain_releases: int = setting(2, at_least(0))
    """Files that left the site are deleted only after this many newer switches."""
    cache_control: dict[str, str] = field(default_factory=dict)
    """Glob -> Cache-Control value; merged over the built-in rules."""
    gzip: tuple[str, ...] = ()
    """Globs of files stored gzip-compressed with ``Content-Encoding: gzip``."""
    max_concurrency: int = setting(16, greater_than(0))
    """Transfers in flight at once (one shared client, one thread pool)."""
    retry_mode: Literal["standard", "adaptive"] = "standard"
    """botocore's retry mode; ``adaptive`` also slows down when S3 throttles."""
    max_attempts: int = setting(5, greater_than(0))
    """Attempts per request, the first included, before a deploy fails (retryably)."""
    connect_timeout: float = setting(10.0, greater_than(0))
    """Seconds to wait for a connection to S3."""
    read_timeout: float = setting(60.0, greater_than(0))
    """Seconds to wait for an answer from S3."""
    multipart_threshold: int = setting(64 * 1024 * 1024, at_least(5 * 1024 * 1024))
    """Files at least this big are sent in parts, streamed from disk."""
    cloudfront_endpoint_url: str | None = setting(None, http_url)
    """Only for CloudFront-compatible test servers; leave unset for AWS."""
    versioning: Literal["auto", "off"] = "auto"
    """``auto``: on a bucket with versioning enabled, replaced bodies stay as noncurrent versions
    (no copy); ``off``: always keep copies in ``.sitedeploy/objects/``, never ask the bucket."""


TARGET_TYPES: dict[str, type[TargetConfig]] = {
    "local": LocalTargetConfig,
    "ssh": SSHTargetConfig,
    "s3": S3TargetConfig,
}
