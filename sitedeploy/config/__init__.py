"""The configuration room: ``deploy.toml`` read into frozen dataclasses, and its checks.

- :mod:`.deploy_toml`: the file's tables (sources, sites, images, build, agent) and ``load``;
- :mod:`.agent`: the ``[agent]`` table (polling, checks, webhook, notifications, metrics);
- :mod:`.targets`: the ``[targets.NAME]`` tables, one dataclass per target type;
- :mod:`.places`: where each target keeps its site (no two targets may share a place);
- :mod:`.limits`: the ``[limits]`` table (what a build may produce);
- :mod:`.schema`, :mod:`.ranges`: how a table is parsed and a value checked;
- :mod:`.from_git`: the build settings of the commit being deployed;
- :mod:`.statedir`: the ``.gitignore`` of the folders sitedeploy makes.

``from sitedeploy.config import Config, load`` is the public way in.
"""

from ..forge.settings import ForgeConfig
from ..web.settings import StatusConfig
from .agent import AgentConfig, MetricsConfig, NotifyConfig, WebhookConfig
from .deploy_toml import (
    BUILD_TABLES,
    DEFAULT_TARGET_PATH,
    MACHINE_TABLES,
    TARGET_TYPES,
    BuildConfig,
    Config,
    ImagesConfig,
    LocalTargetConfig,
    S3TargetConfig,
    SiteConfig,
    SourceConfig,
    SSHTargetConfig,
    TargetConfig,
    check_top_level,
    find_config,
    from_dict,
    load,
    merge_images,
    normalize_mount,
    normalize_site_path,
    parse_build_tables,
    preview_specs,
)

__all__ = [
    "ForgeConfig",
    "StatusConfig",
    "BUILD_TABLES",
    "DEFAULT_TARGET_PATH",
    "MACHINE_TABLES",
    "TARGET_TYPES",
    "AgentConfig",
    "BuildConfig",
    "Config",
    "ImagesConfig",
    "LocalTargetConfig",
    "MetricsConfig",
    "NotifyConfig",
    "S3TargetConfig",
    "SSHTargetConfig",
    "SiteConfig",
    "SourceConfig",
    "TargetConfig",
    "WebhookConfig",
    "check_top_level",
    "find_config",
    "from_dict",
    "load",
    "merge_images",
    "normalize_mount",
    "normalize_site_path",
    "parse_build_tables",
    "preview_specs",
]
