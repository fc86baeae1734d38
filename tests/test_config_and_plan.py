"""Config validation and the pure plan diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitedeploy import config as config_mod
from sitedeploy.errors import ConfigError
from sitedeploy.release.diff import diff
from sitedeploy.release.manifest import FileEntry, Manifest, content_type, scan


def problems(raw: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_mod.from_dict(raw, Path("/x/deploy.toml"))
    return [p.removeprefix("/x/deploy.toml: ") for p in info.value.problems]


def test_defaults_give_the_embedded_local_target() -> None:
    cfg = config_mod.from_dict({}, Path("/x/deploy.toml"))
    assert cfg.sites is None
    [(name, target)] = cfg.targets.items()
    assert name == "local" and isinstance(target, config_mod.LocalTargetConfig)
    assert cfg.resolve(target.path) == Path("/x/public")
    assert cfg.state_dir == Path("/x/.sitedeploy")


def test_types_are_checked_with_key_paths() -> None:
    found = problems(
        {
            "source": {"branch": 3},
            "images": {"widths": [480, "big"]},
            "targets": {"t": {"type": "local", "path": "p", "keep_releases": True}},
        }
    )
    assert "source.branch: must be a string, got an integer 3" in found
    assert "images.widths[1]: must be an integer, got a string 'big'" in found
    assert "targets.t.keep_releases: must be an integer, got a boolean True" in found


def test_site_overrides_merge_over_global_images() -> None:
    cfg = config_mod.from_dict(
        {
            "images": {"formats": ["webp"]},
            "sites": [{"name": "a", "path": "sites/a", "images": {"widths": [320]}}],
        },
        Path("/x/deploy.toml"),
    )
    assert cfg.sites is not None
    images = cfg.sites[0].images
    assert images.widths == (320,) and images.formats == ("webp",)


@pytest.mark.parametrize(
    ("mount", "normal"), [("docs", "/docs/"), ("/docs", "/docs/"), ("/", "/"), ("", "/")]
)
def test_mounts_are_normalized(mount: str, normal: str) -> None:
    assert config_mod.normalize_mount(mount) == normal


def test_site_paths_must_stay_in_the_repo() -> None:
    found = problems({"sites": [{"name": "a", "path": "../outside"}]})
    assert any("sites[0].path: must be a relative path inside the repo" in p for p in found)


@pytest.mark.parametrize("mount", ["../outside", "/docs/../../outside/", ".."])
def test_a_mount_climbing_out_is_refused_not_made_absolute(mount: str) -> None:
    found = problems({"sites": [{"name": "a", "path": "sites/a", "mount": mount}]})
    assert found == [f"sites[0].mount: must not contain '..', got {mount!r}; use a path like '/docs/'"]


def test_literal_choices_suggest() -> None:
    found = problems({"targets": {"t": {"type": "local", "path": "p", "drift": "repiar"}}})
    assert any("targets.t.drift: must be one of" in p and "did you mean 'repair'" in p for p in found)


def entry(sha: str, size: int = 1, kind: str = "text/html") -> FileEntry:
    return FileEntry(sha, size, kind)


def test_plan_gives_each_upload_its_reason() -> None:
    live = Manifest({"a.html": entry("1"), "b.css": entry("2"), "gone.js": entry("3"), "t.txt": entry("4")})
    new = Manifest(
        {
            "a.html": entry("1"),
            "b.css": entry("9"),
            "c.png": entry("5"),
            "t.txt": entry("4", 2),
        }
    )
    plan = diff(new, live)
    assert {(u.path, u.reason) for u in plan.uploads} == {
        ("b.css", "hash"),
        ("c.png", "new"),
        ("t.txt", "size"),
    }
    assert plan.deletes == ("gone.js",)
    assert plan.unchanged == ("a.html",)
    assert plan.summary() == "1 new, 2 changed, 1 removed, 1 unchanged"


def test_plan_against_nothing_uploads_everything() -> None:
    plan = diff(Manifest({"a": entry("1")}), None)
    assert [u.reason for u in plan.uploads] == ["new"] and not plan.deletes


def test_manifest_round_trips_and_types_text_with_charset(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "index.html").write_text("<p>hi</p>")
    (tmp_path / "x.woff2").write_bytes(b"\0")
    manifest = scan(tmp_path)
    assert manifest["d/index.html"].content_type == "text/html; charset=utf-8"
    assert manifest["x.woff2"].content_type == "font/woff2"
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert content_type("a.avif") == "image/avif" and content_type("a.svg").startswith("image/svg+xml")


def test_image_settings_are_checked_globally_and_per_site() -> None:
    found = problems(
        {
            "images": {"formats": ["webp", "heic"]},
            "sites": [{"name": "a", "path": "sites/a", "images": {"quality": {"webp": 0}}}],
        }
    )
    assert any(p.startswith("images: unknown image format 'heic'") for p in found)
    assert any(p.startswith("sites[0].images: quality values go from 1 to 100") for p in found)


def test_a_site_with_a_bad_key_does_not_hide_the_others() -> None:
    found = problems({"sites": [{"name": "a", "path": "sites/a", "strict": "yes"}, {"name": "b"}]})
    assert "sites[0].strict: must be true or false, got a string 'yes'" in found
    assert "sites[1].path: required" in found
