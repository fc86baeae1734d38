"""Read ``deploy.toml`` into frozen dataclasses.

Every problem is collected with its key path (``targets.prod.path: required``) and raised
once as a :class:`ConfigError`, so a user fixes the whole file in one go. The dataclasses
below (and the target tables, in :mod:`sitedeploy.config.targets`) are the configuration
reference: each field is a key, its default is the default.
Secrets never live here: AWS credentials come from the standard chain, SSH keys from
ssh-agent or key files.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError
from ..forge.settings import ForgeConfig as ForgeConfig
from ..names import is_name
from ..web.settings import StatusConfig as StatusConfig
from .agent import AgentConfig
from .limits import LimitsConfig, check_build_limits
from .places import overlap_problems
from .ranges import at_least, greater_than
from .schema import did_you_mean, is_valid, parse_table, required, setting
from .targets import TARGET_TYPES as TARGET_TYPES
from .targets import LocalTargetConfig as LocalTargetConfig
from .targets import S3TargetConfig as S3TargetConfig
from .targets import SSHTargetConfig as SSHTargetConfig
from .targets import TargetConfig as TargetConfig
from .targets import preview_specs as preview_specs

DEFAULT_TARGET_PATH = "public"
BUILD_TABLES = ("sites", "images")
"""What decides the bytes of a release: read from the deploy.toml of the commit deployed."""
MACHINE_TABLES = ("source", "targets", "agent", "build", "limits", "status", "forge")
"""Where a release goes and how this machine runs (the build sandbox included: a content repo
must not turn its own sandbox off; the ceilings of ``[images]``, see :mod:`sitedeploy.config.limits`):
read from the file sitedeploy is run with."""
_SECRET_WORDS = re.compile(r"secret|password|passphrase|token|access_key|private_key", re.I)


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    repo: str = "."
    """Path (relative to deploy.toml) or URL of the content repository."""
    branch: str | None = None
    """Branch to deploy; default: the remote's default branch (its HEAD)."""
    verify_signatures: Literal["off", "ssh", "gpg"] = "off"
    """"ssh" or "gpg": only commits signed by a trusted key deploy (manual deploys and the agent)."""
    allowed_signers: str | None = None
    """verify_signatures = "ssh": an allowed-signers file (see ssh-keygen(1))."""
    gpg_home: str | None = None
    """verify_signatures = "gpg": a GnuPG home holding the trusted keyring."""


@dataclass(frozen=True, kw_only=True)
class ImagesConfig:
    enabled: bool = True
    """Make responsive variants and ``<picture>`` markup; false publishes images as they are."""
    widths: tuple[int, ...] = (480, 960, 1600)
    """Variant widths in pixels (plus the image's own width when smaller; never enlarged)."""
    formats: tuple[str, ...] = ("avif", "webp")
    """Modern formats offered, in this order, before the original format."""
    quality: dict[str, int] = field(default_factory=lambda: {"avif": 50, "webp": 80, "jpeg": 80, "png": 100})
    """Encoder quality per format (JPEG is progressive)."""
    sizes: str = "(min-width: 1200px) 850px, 100vw"
    """The ``sizes`` attribute: how wide an image is drawn; fits MkDocs' default theme."""
    max_pixels: int = setting(50_000_000, greater_than(0))
    """Images with more pixels are treated as decompression bombs and left untouched."""
    cache_max_bytes: int = setting(2 * 1024**3, at_least(0))
    """Size of the variant cache in the state folder; least recently used entries go first."""
    avif_speed: int = 9
    """libaom speed, 0 (smallest files, slowest) to 10; see sitedeploy.images.variants.AVIF_SPEED."""

    def __post_init__(self) -> None:
        if not 0 <= self.avif_speed <= 10:
            raise ValueError("avif_speed goes from 0 (smallest files) to 10 (fastest)")
        unknown = [f for f in self.formats if f.lower() not in ("avif", "webp", "jpeg", "png")]
        if unknown:
            raise ValueError(f"unknown image format {unknown[0]!r}; use avif, webp, jpeg or png")
        if not self.widths or min(self.widths) <= 0:
            raise ValueError("widths must be positive pixel counts")
        if any(not 1 <= q <= 100 for q in self.quality.values()):
            raise ValueError("quality values go from 1 to 100")


@dataclass(frozen=True, kw_only=True)
class SiteConfig:
    name: str = required()
    """The site's name in output, history and errors: letters, digits, ``-``, ``_``, ``.``."""
    path: str = required()
    """Folder in the content repo; with mkdocs.yml it is built with MkDocs, else copied."""
    mount: str = "/"
    """Where the site lives in the published tree."""
    strict: bool = False
    """Turn MkDocs warnings (and broken images) into a failed build."""
    images: ImagesConfig = field(default_factory=ImagesConfig)
    builder: Literal["mkdocs", "properdocs", "zensical", "static"] | None = None
    """Default: zensical.toml -> zensical, properdocs.yml -> properdocs, mkdocs.yml -> mkdocs, else static
    (copied as is). ``properdocs`` also builds a folder that has only a mkdocs.yml."""


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    sandbox: Literal["bwrap", "off"] = "bwrap"
    """Run builders and ``pip install`` in bubblewrap; "off" runs them unconfined (warned on every build)."""
    incremental: bool = True
    """MkDocs sites re-render only what an edit can change (``--full-build`` turns it off once)."""
    jobs: int = setting(0, at_least(0))
    """Sites built at once, each in its own sandbox; 0: one per CPU, fewer if memory is short
    (see ``job_memory_mb``). The release is the same whatever the number."""
    job_memory_mb: int = setting(768, greater_than(0))
    """Memory one site build is expected to need: ``jobs`` is capped at available memory / this."""
    cache: str | None = None
    """A shared build cache: ``s3://bucket/prefix/`` or a folder (relative to deploy.toml) that
    CI runners and other agents use too; see the manual's "Scaling out"."""
    cache_endpoint_url: str | None = None
    """An S3-compatible server for ``cache`` (MinIO, R2, …); credentials from the AWS chain."""
    cache_allowed_signers: str | None = None
    """Required with ``cache``: an ssh allowed-signers file; only entries signed by its keys are used."""
    cache_signing_key: str | None = None
    """A private SSH key that signs the entries this machine writes; without it, it only reads."""
    mode: Literal["local", "cache-first", "cache-only"] = "cache-first"
    """With ``cache``: "cache-first" fetches a site's build and builds it here if missing;
    "cache-only" never builds production sites here (CI does: ``build --push``); "local"
    always builds here (and still writes, with a signing key)."""
    cache_wait: float = setting(0.0, at_least(0))
    """mode = "cache-only": seconds to wait for a missing build to appear before failing."""
    cache_max_age_days: float = setting(30.0, at_least(0))
    """Entries older than this are deleted by writers after ``build --push``; 0 keeps all."""
    cache_max_entry_mb: int = setting(4096, greater_than(0))
    """An entry larger than this (packed or unpacked) is treated as damaged and not used."""


@dataclass(frozen=True)
class Config:
    path: Path
    """The deploy.toml this came from; relative paths in it are relative to its folder."""
    source: SourceConfig
    sites: tuple[SiteConfig, ...] | None
    """None: every folder under ``sites/`` of the deployed commit is a site."""
    images: ImagesConfig
    targets: dict[str, TargetConfig]
    agent: AgentConfig
    state_dir: Path
    build: BuildConfig = field(default_factory=BuildConfig)
    build_tables: dict[str, Any] = field(default_factory=dict)
    """The tables that decide a release's bytes (``BUILD_TABLES``), as written in the file they
    came from: recorded with a release, and compared with the commit's own deploy.toml."""
    build_origin: str = ""
    """Where ``sites`` and ``images`` came from: ``deploy.toml at 1a2b3c4d`` once the commit's
    own file was read (``gitconfig.build_config_at``), else this file's path."""
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    """The operator's ceilings on ``[images]`` (machine-local: a commit may only lower them)."""
    status: StatusConfig = field(default_factory=StatusConfig)
    forge: ForgeConfig | None = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, path: str) -> Path:
        """A path from the file, relative to deploy.toml's folder."""
        return (self.base_dir / Path(path).expanduser()).resolve()

    def target(self, name: str | None) -> dict[str, TargetConfig]:
        """The targets a command acts on: the one named, or all of them."""
        if name is None:
            return self.targets
        if name not in self.targets:
            hint = did_you_mean(name, self.targets)
            raise ConfigError(f"{self.path.name}: no target '{name}'{hint}; known: {', '.join(self.targets)}")
        return {name: self.targets[name]}


def find_config(start: Path, name: str = "deploy.toml") -> Path:
    """``name`` in ``start`` or the nearest folder above it, stopping at the repository's root
    (the folder holding ``.git``), the way git finds its repository from a subfolder."""
    for folder in (start, *start.parents):
        if (folder / name).is_file():
            return folder / name
        if (folder / ".git").exists():
            raise ConfigError(
                f"no {name} in {start} or above it up to the repository's root {folder}; "
                "create one with 'sitedeploy init' or pass --config"
            )
    raise ConfigError(
        f"no {name} in {start} or above it, and {start} is not in a git repository; "
        "run 'git init' and 'sitedeploy init' there, or pass --config"
    )


def load(path: Path, state_dir: Path | None = None) -> Config:
    """Read and validate ``path``; raise one ConfigError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; create one with 'sitedeploy init' or pass --config") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    return from_dict(raw, path.resolve(), state_dir)


def from_dict(raw: dict[str, Any], path: Path, state_dir: Path | None = None) -> Config:
    problems: list[str] = []
    check_top_level(raw, problems)
    source = parse_table(SourceConfig, raw.get("source", {}), "source", problems)
    images, sites = parse_build_tables(raw, problems)
    targets = _parse_targets(raw.get("targets"), problems)
    agent = parse_table(AgentConfig, raw.get("agent", {}), "agent", problems)
    build = parse_table(BuildConfig, raw.get("build", {}), "build", problems)
    limits = parse_table(LimitsConfig, raw.get("limits", {}), "limits", problems)
    status = parse_table(StatusConfig, raw.get("status", {}), "status", problems)
    forge = parse_table(ForgeConfig, raw["forge"], "forge", problems) if "forge" in raw else None
    _check_source(source, problems)
    _check_build(build, problems)
    if not problems:  # (a target with a bad key may lack its path) two in one place: repair deletes
        problems += overlap_problems(targets, path.parent)
        check_build_limits(limits, images, sites, problems)
    if problems:
        raise ConfigError(f"{path}: {problems[0]}" + _more(problems), [f"{path}: {p}" for p in problems])
    state = state_dir or path.parent / ".sitedeploy"
    tables = {k: raw[k] for k in BUILD_TABLES if k in raw}
    built = (state.resolve(), build, tables, str(path))
    return Config(
        path, source, sites, images, targets, agent, *built, limits=limits, status=status, forge=forge
    )


def parse_build_tables(
    raw: dict[str, Any], problems: list[str]
) -> tuple[ImagesConfig, tuple[SiteConfig, ...] | None]:
    """``[images]`` and ``[[sites]]`` alone: what a commit's own deploy.toml contributes."""
    images = parse_table(ImagesConfig, raw.get("images", {}), "images", problems)
    if not is_valid(images):  # invalid: already reported; sites still get checked
        images = ImagesConfig()
    return images, _parse_sites(raw.get("sites"), images, problems)


def _more(problems: list[str]) -> str:
    return f" (and {len(problems) - 1} more problem{'s' * (len(problems) > 2)})" if len(problems) > 1 else ""


def check_top_level(raw: dict[str, Any], problems: list[str]) -> None:
    known = (*BUILD_TABLES, *MACHINE_TABLES)
    for key in raw:
        if key not in known:
            secret = " (secrets never go in deploy.toml: use the AWS credential chain or ssh-agent)"  # nosec B105
            hint = secret if _SECRET_WORDS.search(key) else did_you_mean(key, known)
            problems.append(f"{key}: unknown key{hint}")


def _check_build(build: BuildConfig, problems: list[str]) -> None:
    if is_valid(build) and build.cache and not build.cache_allowed_signers:
        problems.append(
            "build.cache_allowed_signers: required with build.cache (entries are used only if signed)"
        )


def _check_source(source: SourceConfig, problems: list[str]) -> None:
    if source.verify_signatures == "ssh" and not source.allowed_signers:
        problems.append('source.allowed_signers: required when verify_signatures = "ssh"')


def _parse_sites(raw: Any, images: ImagesConfig, problems: list[str]) -> tuple[SiteConfig, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        problems.append("sites: must be an array of tables ([[sites]])")
        return None
    sites: list[SiteConfig] = []
    for i, table in enumerate(raw):
        sites.append(_parse_site(table, images, f"sites[{i}]", problems))
    _check_sites(sites, problems)
    return tuple(sites)


def _parse_site(table: Any, images: ImagesConfig, path: str, problems: list[str]) -> SiteConfig:
    table = dict(table) if isinstance(table, dict) else table
    overrides = table.pop("images", {}) if isinstance(table, dict) else {}
    site = parse_table(SiteConfig, table, path, problems)
    if not isinstance(overrides, dict):
        problems.append(f"{path}.images: must be a table")
        overrides = {}
    site_images = merge_images(images, overrides, f"{path}.images", problems)
    if not is_valid(site):  # construction failed; a problem is already recorded
        return site
    if ".." in site.mount.split("/"):  # checked before normalizing, which would hide it
        problems.append(f"{path}.mount: must not contain '..', got {site.mount!r}; use a path like '/docs/'")
    return dataclasses.replace(
        site, images=site_images, mount=normalize_mount(site.mount), path=normalize_site_path(site.path)
    )


def merge_images(
    base: ImagesConfig, overrides: dict[str, Any], path: str, problems: list[str]
) -> ImagesConfig:
    """``base`` with the keys of a site's ``[sites.images]`` table replaced."""
    parsed = parse_table(ImagesConfig, overrides, path, problems)
    changed = {k: getattr(parsed, k) for k in overrides} if is_valid(parsed) else {}
    try:
        return dataclasses.replace(base, **changed)
    except ValueError as exc:
        problems.append(f"{path}: {exc}")
        return base


def normalize_mount(mount: str) -> str:
    """``docs`` / ``/docs`` / ``/docs/`` all mean ``/docs/``; the root is ``/``."""
    clean = posixpath.normpath("/" + mount.strip("/"))
    return "/" if clean == "/" else clean + "/"


def normalize_site_path(path: str) -> str:
    """``.``, ``./`` and ``""`` all mean the repository's root folder, written ``.``."""
    return posixpath.normpath(path.strip().rstrip("/") or ".")


def _check_sites(sites: list[SiteConfig], problems: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, site in enumerate(sites):
        if not is_valid(site):
            continue
        if site.name in seen:
            problems.append(f"sites[{i}].name: '{site.name}' is also sites[{seen[site.name]}]")
        seen[site.name] = i
        if not is_name(site.name):
            problems.append(f"sites[{i}].name: use letters, digits, '-', '_' or '.', got {site.name!r}")
        if _escapes(site.path):
            problems.append(f"sites[{i}].path: must be a relative path inside the repo, got {site.path!r}")
    # Nested mounts (a landing page at / with docs at /docs/) are fine; two sites writing the
    # same file is not, and only the built outputs can tell: see ``mounts.check_outputs``.


def _escapes(path: str) -> bool:
    norm = posixpath.normpath(path)
    return path.startswith("/") or norm == ".." or norm.startswith("../")


def _parse_targets(raw: Any, problems: list[str]) -> dict[str, TargetConfig]:
    if raw is None:  # the embedded default: a local folder beside deploy.toml
        return {"local": LocalTargetConfig(type="local", path=DEFAULT_TARGET_PATH)}
    if not isinstance(raw, dict) or not raw:
        problems.append("targets: must contain at least one [targets.<name>] table")
        return {}
    targets: dict[str, TargetConfig] = {}
    for name, table in raw.items():
        path = f"targets.{name}" if is_name(name) else f"targets.{name!r}"  # one line, always
        if not is_name(name):
            problems.append(f"{path}: target names use letters, digits, '-', '_' or '.'")
        kind = table.get("type") if isinstance(table, dict) else None
        if not isinstance(kind, str):
            given = "required" if kind is None else f"must be a string, got {kind!r}"
            problems.append(f"{path}.type: {given} (one of {', '.join(TARGET_TYPES)})")
            continue
        if kind not in TARGET_TYPES:
            hint = did_you_mean(str(kind), TARGET_TYPES)
            problems.append(f"{path}.type: unknown type {kind!r}{hint}; use one of {', '.join(TARGET_TYPES)}")
            continue
        targets[name] = _parse_target(TARGET_TYPES[kind], table, path, problems)
    return targets


def _parse_target(
    cls: type[TargetConfig], table: dict[str, Any], path: str, problems: list[str]
) -> TargetConfig:
    for key in table:
        if _SECRET_WORDS.search(key):
            problems.append(
                f"{path}.{key}: secrets never go in deploy.toml; use the AWS credential chain "
                "(env or profile) or ssh-agent / key_file"
            )
    clean = {k: v for k, v in table.items() if not _SECRET_WORDS.search(k)}
    return parse_table(cls, clean, path, problems)


__all__ = [
    "AgentConfig",
    "BuildConfig",
    "Config",
    "ImagesConfig",
    "LocalTargetConfig",
    "S3TargetConfig",
    "SSHTargetConfig",
    "SiteConfig",
    "SourceConfig",
    "TargetConfig",
    "load",
]
