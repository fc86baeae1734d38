"""The operator caps what content may raise (issue 21, finding 12): a commit's own ``[images]``
may lower the limits of the ``[limits]`` table in the file sitedeploy runs with, never go past
them; a value past one is refused with one line naming the key and the limit. Read from a real
commit, as every deploy reads its build settings."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sitedeploy import config as config_mod
from sitedeploy.commands import synced_source
from sitedeploy.config import Config
from sitedeploy.config.from_git import build_config_at
from sitedeploy.errors import ConfigError
from tests.fixtures.git import ContentRepo, write_config

SITES = '[[sites]]\nname = "landing"\npath = "sites/landing"\n\n'


def commit_images(repo: ContentRepo, images: str, extra: str = "") -> None:
    repo.write("deploy.toml", f"{SITES}[images]\n{images}\n{extra}")
    repo.commit("images settings")


def committed(tmp_path: Path, repo: ContentRepo, limits: str = "") -> Config:
    ops = tmp_path / "ops"
    ops.mkdir(exist_ok=True)
    config = config_mod.load(write_config(ops, repo.path, sites=SITES, extra=limits), tmp_path / "state")
    source = synced_source(config)
    return build_config_at(config, source, source.resolve(None, config.source.branch))


PAST = [
    ("max_pixels = 200000000", "images.max_pixels: 200000000", "limits.max_pixels = 50000000"),
    ("widths = [480, 12000]", "images.widths: a width of 12000", "limits.max_width = 4096"),
    ("widths = [100, 200, 300, 400, 500, 600, 700]", "images.widths: 7 widths", "limits.max_widths = 6"),
    ("avif_speed = 0", "images.avif_speed: 0", "limits.min_avif_speed = 4"),
    (
        "cache_max_bytes = 10737418240",
        "images.cache_max_bytes: 10737418240",
        "limits.cache_max_bytes = 2147483648",
    ),
]


@pytest.mark.parametrize(("images", "key", "limit"), PAST, ids=[p[2].split(" ")[0] for p in PAST])
def test_a_commit_cannot_go_past_the_operators_limit(
    tmp_path: Path, content_repo: ContentRepo, images: str, key: str, limit: str
) -> None:
    # the commit's own [limits] is not read: limits are the machine's
    commit_images(content_repo, images, extra="\n[limits]\nmax_pixels = 900000000\nmin_avif_speed = 0\n")
    with pytest.raises(ConfigError) as refused:
        committed(tmp_path, content_repo)
    message = refused.value.message
    assert "\n" not in message and "deploy.toml at commit" in message
    assert f"{key} is past the operator's limit {limit}" in message, message


def test_a_commit_may_lower_the_limits_and_the_operator_may_raise_them(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    commit_images(content_repo, "max_pixels = 1000\nwidths = [320]\navif_speed = 10\ncache_max_bytes = 0")
    lowered = committed(tmp_path, content_repo).images
    assert (lowered.max_pixels, lowered.widths, lowered.avif_speed) == (1000, (320,), 10)

    commit_images(content_repo, "max_pixels = 200000000\navif_speed = 0")
    raised = "\n[limits]\nmax_pixels = 200000000\nmin_avif_speed = 0\n"
    images = committed(tmp_path, content_repo, limits=raised).images
    assert (images.max_pixels, images.avif_speed) == (200_000_000, 0)


def test_a_sites_own_images_table_is_capped_too(tmp_path: Path, content_repo: ContentRepo) -> None:
    content_repo.write("deploy.toml", f"{SITES}[sites.images]\nmax_pixels = 60000000\n")
    content_repo.commit("a site's own images")
    with pytest.raises(ConfigError, match=r"sites\[0\]\.images\.max_pixels: 60000000 is past"):
        committed(tmp_path, content_repo)


def test_the_operators_own_images_are_capped_by_its_limits(tmp_path: Path) -> None:
    text = "[images]\nmax_pixels = 60000000\n\n[limits]\nmax_pixels = 50000000\n"
    with pytest.raises(ConfigError, match=r"images\.max_pixels: 60000000 is past .*limits\.max_pixels"):
        config_mod.from_dict(tomllib.loads(text), Path("/etc/sitedeploy/deploy.toml"))
