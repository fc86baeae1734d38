"""Hostile content (issue 11, findings 9 and 10, and the corpus): huge, sparse and bomb
images, ``%00`` in a src, 100,000 files. Each gets a clear message or builds, with memory
measured (peak RSS of a fresh process) rather than assumed."""

from __future__ import annotations

import json
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

from sitedeploy.config import ImagesConfig
from sitedeploy.images import spec_from
from sitedeploy.images.pool import worker_bytes
from tests.fixtures.git import ContentRepo, write_config

from .helpers import commit_site_tree, run_cli

MB = 1024**2
# Runs the image stage in a fresh process and reports its peak RSS: the pytest process has
# already decoded other tests' images, so its own numbers say nothing. The decoding happens in
# the image worker, a child: "peak" is the largest of the stage's processes, "parent" the
# deployer's own (which never decodes). The worker runs unconfined here: bwrap's monitor does
# not wait for the process it confines, so that one's peak would never reach RUSAGE_CHILDREN,
# and the sandbox changes nothing in what decoding costs.
PROBE = """
import json, resource, sys
from pathlib import Path
from sitedeploy.config import ImagesConfig
from sitedeploy.images import process_site
site, cache, max_pixels = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
settings = ImagesConfig(widths=(480, 960), max_pixels=max_pixels)
report = process_site(site, "/", settings, cache, sandbox="off")
# VmHWM, not ru_maxrss: that one keeps the parent's size from before exec (pytest's).
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
parent = int(status["VmHWM"].split()[0]) * 1024
# The worker and its pool: the largest peak among the children this process waited for.
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"peak": max(parent, children), "parent": parent, "warnings": list(report.warnings),
                  "processed": report.processed}))
"""


def _probe(site: Path, tmp_path: Path, max_pixels: int = 50_000_000) -> dict[str, object]:
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(site), str(tmp_path / "cache"), str(max_pixels)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result: dict[str, object] = json.loads(out.stdout)
    result["seconds"] = time.monotonic() - started
    return result


def _page(site: Path, *srcs: str) -> None:
    site.mkdir(parents=True, exist_ok=True)
    tags = "".join(f'<img src="{src}" alt="x">' for src in srcs)
    (site / "index.html").write_text(f"<!doctype html><title>t</title><p>{tags}</p>\n")


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims ``width`` x ``height``: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_hostile_images_cost_a_warning_and_little_memory(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _page(site, "bomb.png", "huge.png", "nul%00.png")
    (site / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    with (site / "huge.png").open("wb") as f:  # sparse 2 GB: costs no disk, must cost no memory
        f.truncate(2 * 1024**3)
    (site / "nul").mkdir()
    result = _probe(site, tmp_path)
    warnings = "\n".join(map(str, result["warnings"]))  # type: ignore[call-overload]
    assert "bomb.png" in warnings and "max_pixels" in warnings
    assert "huge.png" in warnings and "MB an image may have" in warnings
    assert "index.html: image 'nul%00.png' contains a NUL" in warnings
    assert int(result["peak"]) < 120 * MB, result  # type: ignore[call-overload]
    assert float(result["seconds"]) < 60, result  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_7000_px_png_stays_within_the_worker_budget(tmp_path: Path) -> None:
    sites = [tmp_path / "decoded", tmp_path / "refused"]  # the stage rewrites its site: one each
    for site in sites:
        _page(site, "big.png")
        Image.new("RGB", (7000, 7000), (200, 30, 40)).save(site / "big.png")  # 160 KB on disk
    decoded = _probe(sites[0], tmp_path)
    budget = worker_bytes(spec_from(ImagesConfig()))
    assert decoded["processed"] == 1
    assert int(decoded["peak"]) <= budget, (decoded["peak"], budget)  # type: ignore[call-overload]
    assert int(decoded["peak"]) > 150 * MB, decoded  # type: ignore[call-overload]  # it was measured
    assert int(decoded["parent"]) < 120 * MB, decoded  # type: ignore[call-overload]  # not decoded here
    refused = _probe(sites[1], tmp_path, max_pixels=10_000_000)  # counted from the header
    assert int(refused["peak"]) < 120 * MB and refused["processed"] == 0  # type: ignore[call-overload]
    print(
        f"7000x7000 PNG: peak {int(decoded['peak']) // MB} MB decoded, "  # type: ignore[call-overload]
        f"{int(refused['peak']) // MB} MB refused; budget {budget // MB} MB"
    )  # type: ignore[call-overload]


@pytest.mark.slow
def test_a_site_of_100000_empty_files_builds_in_bounded_time_and_memory(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    entries = [("100644", f"d{i // 1000:03}/f{i:06}.txt".encode(), b"") for i in range(100_000)]
    commit_site_tree(content_repo, entries, "100,000 empty files")
    ops = tmp_path / "ops"
    ops.mkdir()
    config = write_config(ops, content_repo.path, sites='[[sites]]\nname = "x"\npath = "sites/x"\n')
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    proc = run_cli(["--config", str(config), "build"], {}, ops)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    releases = list((ops / ".sitedeploy/releases").iterdir())
    assert sum(1 for _ in releases[0].rglob("*.txt")) == 100_000
    assert seconds < 240, seconds
    assert peak < 600 * MB or before * 1024 >= peak, peak
    print(f"100,000 files: {seconds:.1f} s, peak RSS of the CLI {peak // MB} MB")
