"""Two targets in one place are refused when deploy.toml is read (sitedeploy.config.places)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitedeploy import config as config_mod
from sitedeploy.errors import ConfigError
from sitedeploy.targets.base import Drift
from sitedeploy.targets.ownership import owned

S3 = 'type = "s3"\nbucket = "{bucket}"\nprefix = "{prefix}"\n'
SSH = 'type = "ssh"\nhosts = ["{host}"]\npath = "{path}"\n'


def load(tmp_path: Path, a: str, b: str) -> config_mod.Config:
    path = tmp_path / "deploy.toml"
    path.write_text(f'[source]\nrepo = "."\n\n[targets.a]\n{a}\n[targets.b]\n{b}')
    return config_mod.load(path)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (S3.format(bucket="x", prefix=""), S3.format(bucket="x", prefix="versions/")),
        (S3.format(bucket="x", prefix="docs"), S3.format(bucket="x", prefix="/docs/")),
        (SSH.format(host="web1", path="/srv/www"), SSH.format(host="web1:2222", path="/srv/www/current/v")),
        ('type = "local"\npath = "public"', 'type = "local"\npath = "public/../public/x"'),
    ],
)
def test_overlapping_places_are_refused_in_one_line_naming_both(tmp_path: Path, a: str, b: str) -> None:
    named = r"targets\.a \(.*\) and targets\.b \(.*\) are (the same|nested)"
    with pytest.raises(ConfigError, match=named) as info:
        load(tmp_path, a, b)
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (S3.format(bucket="x", prefix="docs/"), S3.format(bucket="x", prefix="docs2/")),
        (S3.format(bucket="x", prefix=""), S3.format(bucket="y", prefix="")),
        (SSH.format(host="web1", path="/srv/a"), SSH.format(host="web2", path="/srv/a")),
        ('type = "local"\npath = "public"', 'type = "local"\npath = "public-2"'),
    ],
)
def test_separate_places_load(tmp_path: Path, a: str, b: str) -> None:
    assert set(load(tmp_path, a, b).targets) == {"a", "b"}


def test_a_folder_holding_its_own_state_is_not_the_targets_drift() -> None:
    drift = Drift(extra=["stray.html", "v/.sitedeploy/live.json", "v/index.html", "w/.sitedeploy.html"])
    assert owned([drift])[0].extra == ["stray.html", "w/.sitedeploy.html"]
