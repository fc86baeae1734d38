"""Readers during 50 alternating deploys and rollbacks: local + nginx and S3 (moto's server).

SSH + nginx on two hosts is tests/test_ssh_nginx.py (same reader, same count; it reports its
figures into the same table through report.readers). Local/SSH: no error and never a page of
one release with an asset of another. S3: no error and never a page whose asset is missing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from sitedeploy.config import S3TargetConfig
from sitedeploy.targets.local import LocalTarget
from sitedeploy.targets.s3.target import S3Target
from tests.fixtures.nginx import Nginx
from tests.fixtures.s3 import S3Server, publish_dir, rollback_target, write_tree
from tests.fixtures.sshd import deploy_folder, rollback_to
from tests.reliability import report
from tests.test_s3_safety import versioned_site
from tests.test_ssh_nginx import Reader, version_site

SWITCHES = 50
report.table("readers", f"{'target':16} {'switches':>8} {'requests':>9} {'failures':>8}")


def test_local_nginx_readers_never_mix_releases(
    tmp_path: Path, nginx_factory: Callable[[Path], Nginx]
) -> None:
    site = tmp_path / "www"
    target = LocalTarget("local", site)
    builds = [version_site(tmp_path / "blue", "blue"), version_site(tmp_path / "green", "green")]
    releases = [deploy_folder(target, builds[0])[0].id]
    server = nginx_factory(site)
    readers = [Reader(server) for _ in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=r.loop, args=(stop,)) for r in readers]
    for t in threads:
        t.start()
    try:
        for i in range(SWITCHES):
            if i % 2 == 0:
                releases.append(deploy_folder(target, builds[(i // 2 + 1) % 2])[0].id)
            else:
                rollback_to(target, releases[-2])
                releases.append(releases[-2])
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    problems = [p for r in readers for p in r.problems]
    requests = sum(r.pages for r in readers) * 3  # a page and its two assets
    report.readers("local + nginx", SWITCHES, requests, len(problems))
    assert problems == [], problems[:5]
    assert requests > 300
    assert target.live_release() == releases[-1]


_REFS = re.compile(r'(?:href|src)="/([^"]+)"')
_VERSION = re.compile(r" v(\d+)</p>")


def test_s3_readers_never_find_a_page_whose_asset_is_missing(
    tmp_path: Path, s3_config: Callable[..., S3TargetConfig], s3_server: S3Server, s3_bucket: str
) -> None:
    cfg = s3_config(max_delete=1000)
    client = s3_server.client()
    counts = {"requests": 0, "late": 0, "switches": 0}
    broken: list[str] = []
    stop = threading.Event()

    def get(key: str) -> bytes | None:
        counts["requests"] += 1
        try:
            return bytes(client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

    def missing(what: str, seen_at: int) -> None:
        # A page read from the live sitemap keeps its assets until the switch after the one
        # that replaces it has finished (retain_releases = 2, as test_s3_safety counts it); a
        # reader slower than that (a loaded machine) may find them gone, as a browser cache
        # that old would: counted apart, not a break.
        if counts["switches"] - seen_at < 1:
            broken.append(what)
        else:
            counts["late"] += 1

    def reader() -> None:
        while not stop.is_set():
            seen_at = counts["switches"]
            for page in (get("sitemap.xml") or b"").decode().split("\n"):
                html = get(page)
                if html is None:  # a page of the sitemap just read
                    missing(f"page {page} missing", seen_at)
                    continue
                version = _VERSION.search(html.decode())
                for ref in _REFS.findall(html.decode()):
                    if get(ref) is None:
                        missing(f"{page} ({version and version[1]}) -> {ref} missing", seen_at)

    with S3Target("s3", cfg) as target:
        publish_dir(target, cfg, write_tree(tmp_path / "b", versioned_site(0)))
        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for i in range(SWITCHES):
                if i % 2 == 0:
                    publish_dir(target, cfg, write_tree(tmp_path / "b", versioned_site(i + 1)))
                else:
                    rollback_target(target, cfg)
                counts["switches"] += 1
        finally:
            stop.set()
            thread.join(30)
    late = f"  ({counts['late']} reads outlived the retention window)" if counts["late"] else ""
    report.readers("s3 (moto)", SWITCHES, counts["requests"], len(broken), late)
    assert broken == [], broken[:5]
    assert counts["requests"] > 200
