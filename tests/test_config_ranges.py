"""Config values in range, and a loader that never crashes on any TOML a person can write.

Issue 11, item 12: ``nan`` intervals, infinite jitter, negative counts, setuid modes, ``file://``
URLs and ``:9108`` binds were accepted. Each is now refused at its key path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sitedeploy import config as config_mod
from sitedeploy.build.mounts import SiteFiles, check_outputs
from sitedeploy.errors import ConfigError

CONFIG = Path("/x/deploy.toml")
SSH = {"type": "ssh", "hosts": ["web1"], "path": "/srv"}
S3 = {"type": "s3", "bucket": "b"}


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_mod.from_dict(tomllib.loads(text), CONFIG)
    return [p.removeprefix(f"{CONFIG}: ") for p in info.value.problems]


SSH_T = '[targets.t]\ntype = "ssh"\nhosts = ["w"]\npath = "/s"\n'
URL_PROBLEM = "must be an http:// or https:// URL with a host, got "


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[agent]\ninterval = nan", "agent.interval: must be a finite number, got nan"),
        ("[agent]\ninterval = 0", "agent.interval: must be greater than 0, got 0.0"),
        ("[agent]\njitter = inf", "agent.jitter: must be a finite number, got inf"),
        ("[agent]\njitter = 1.5", "agent.jitter: must be a fraction from 0 to below 1, got 1.5"),
        ("[agent]\ndrift_every = -3", "agent.drift_every: must be at least 0, got -3"),
        ("[agent]\ncheck_attempts = 0", "agent.check_attempts: must be greater than 0, got 0"),
        ("[images]\nmax_pixels = -1", "images.max_pixels: must be greater than 0, got -1"),
        (
            '[targets.t]\ntype = "s3"\nbucket = "b"\nmax_concurrency = 0',
            "targets.t.max_concurrency: must be greater than 0, got 0",
        ),
        (SSH_T + "file_mode = 0o4777", "targets.t.file_mode: must be a permission mode such as 0o644"),
        (SSH_T + "connect_timeout = inf", "targets.t.connect_timeout: must be a finite number, got inf"),
        (SSH_T + "lock_ttl = 0.5", "targets.t.lock_ttl: must be at least 1, got 0.5"),
        ('[targets.t]\ntype = "local"\npath = "p"\nlock_ttl = nan', "targets.t.lock_ttl: must be a finite"),
        (
            '[targets.t]\ntype = "local"\npath = "p"\ncheck_urls = ["file:///etc/passwd"]',
            f"targets.t.check_urls: {URL_PROBLEM}'file:///etc/passwd'",
        ),
        ('[[agent.notify]]\nurl = "file:///tmp/x"', f"agent.notify[0].url: {URL_PROBLEM}'file:///tmp/x'"),
        (
            '[agent.metrics]\nbind = ":9108"',
            "agent.metrics.bind: must be 'host:port', got ':9108' (write '0.0.0.0:9108' for every interface",
        ),
        ('[agent.webhook]\nbind = "h:99999"', "agent.webhook.bind: must be 'host:port', got 'h:99999'"),
    ],
)
def test_out_of_range_values_are_refused_at_their_key_path(toml: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems_of(toml)), problems_of(toml)


def test_every_range_problem_of_a_table_is_reported() -> None:
    found = problems_of("[agent]\ninterval = nan\njitter = inf\ndrift_every = -3\n")
    assert [p.split(":")[0] for p in found] == ["agent.interval", "agent.jitter", "agent.drift_every"]


def test_sensible_values_still_load() -> None:
    cfg = config_mod.from_dict(
        {
            "agent": {"interval": 30, "jitter": 0, "drift_every": 0, "metrics": {"bind": "[::1]:9108"}},
            "targets": {
                "s": {**SSH, "dir_mode": 0o2775, "file_mode": 0o640},
                "c": {**S3, "max_concurrency": 1},
            },
        },
        CONFIG,
    )
    assert cfg.agent.metrics is not None and cfg.agent.metrics.bind == "[::1]:9108"


def test_nested_mounts_are_not_a_config_error() -> None:
    sites = [{"name": "landing", "path": "sites/landing"}, {"name": "docs", "path": ".", "mount": "docs"}]
    cfg = config_mod.from_dict({"sites": sites}, CONFIG)
    assert cfg.sites is not None and [(s.path, s.mount) for s in cfg.sites] == [
        ("sites/landing", "/"),
        (".", "/docs/"),
    ]


@pytest.mark.parametrize(
    ("sites", "error"),
    [
        (
            [("a", "/", ["index.html", "docs/x.html"]), ("b", "/docs/", ["x.html"])],
            "sites 'a' and 'b' both produce docs/x.html",
        ),
        ([("a", "/", ["docs"]), ("b", "/docs/", ["index.html"])], "over docs of site 'a'"),
        (
            [("a", "/", ["docs/api/x.html"]), ("b", "/docs/", ["i.html"]), ("c", "/docs/api/", ["i.html"])],
            "site 'c' is mounted at /docs/api/, over docs/api/x.html of site 'a'",
        ),
        ([("a", "/", [".well-known/sitedeploy.json"])], "site 'a' writes .well-known/sitedeploy.json"),
        (  # nested three deep, and two sites sharing / with different files: all fine
            [
                ("a", "/", ["index.html"]),
                ("b", "/docs/", ["index.html"]),
                ("c", "/docs/api/", ["index.html"]),
                ("d", "/", ["robots.txt"]),
            ],
            None,
        ),
    ],
)
def test_output_conflicts(sites: list[tuple[str, str, list[str]]], error: str | None) -> None:
    files = [SiteFiles(name, mount, paths) for name, mount, paths in sites]
    if error is None:
        check_outputs(files, reserved=(".well-known/sitedeploy.json",))
        return
    with pytest.raises(ConfigError, match=error.replace(".", r"\.")):
        check_outputs(files, reserved=(".well-known/sitedeploy.json",))


# --- any TOML: loads, or one ConfigError --------------------------------------------------------

scalars = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(max_value=datetime.datetime(9999, 1, 1)),
    st.dates(),
    st.times(),
    st.sampled_from(["/", ".", "..", "sites/docs", "/docs/", "web1:22", ":9108", "file:///x", "http://h/"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def table_for(cls: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Tables with the dataclass's real keys (and a stray one), holding anything."""
    keys = [f.name for f in dataclasses.fields(cls)] + ["stray"]
    return st.dictionaries(st.sampled_from(keys), values, max_size=6)


targets = st.dictionaries(
    st.sampled_from(["local", "prod", "bad name"]),
    st.one_of(
        table_for(config_mod.SSHTargetConfig).map(lambda t: {**t, "type": "ssh"}),
        table_for(config_mod.S3TargetConfig).map(lambda t: {**t, "type": "s3"}),
        table_for(config_mod.LocalTargetConfig).map(lambda t: {"type": "local", **t}),
        values,
    ),
    max_size=3,
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "source": table_for(config_mod.SourceConfig) | values,
        "sites": st.lists(table_for(config_mod.SiteConfig) | values, max_size=3) | values,
        "images": table_for(config_mod.ImagesConfig) | values,
        "targets": targets | values,
        "agent": table_for(config_mod.AgentConfig) | values,
        "stray": values,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_document_loads_or_raises_config_error(raw: dict[str, Any]) -> None:
    try:
        cfg = config_mod.from_dict(raw, CONFIG)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith(f"{CONFIG}: ") for p in exc.problems)
        return
    assert math.isfinite(cfg.agent.interval) and cfg.agent.interval > 0


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("[]{}=.\"'\n #abc01-_:,/"), max_size=60))
def test_any_text_loads_or_raises_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deploy.toml"
        path.write_text(text)
        with contextlib.suppress(ConfigError):
            config_mod.load(path)
