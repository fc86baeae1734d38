"""Readers through nginx while deploys and rollbacks alternate on two SSH hosts: no error, and
never a page of one version with an asset of the other (the manual's nginx config, targets/ssh.md)."""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.fixtures.nginx import Nginx
from tests.fixtures.sshd import SSHEnv, SSHServer, deploy_folder, make_site, open_ssh_target, rollback_to
from tests.reliability.report import readers as report_readers

PAGES = ("/", "/guide/", "/guide/install/")


def version_site(root: Path, version: str) -> Path:
    """Pages and assets that all say which version they belong to."""
    page = (
        '<!doctype html><link rel="stylesheet" href="/assets/style.css">'
        '<script src="/assets/app.js"></script><h1 data-version="{v}">{title}</h1>' + "<p>text</p>" * 200
    )
    files = {
        "index.html": page.format(v=version, title="home"),
        "guide/index.html": page.format(v=version, title="guide"),
        "guide/install/index.html": page.format(v=version, title="install"),
        "assets/style.css": f"/* version {version} */ body {{ color: black; }}" + " " * 4000,
        "assets/app.js": f"window.version = '{version}';" + " " * 8000,
        "unchanged.html": "<p>same in both</p>",
    }
    return make_site(root, files)


class Reader:
    """A browser-like client: fetches a page, then its assets, sending back the cookie."""

    def __init__(self, server: Nginx) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        self.cookie = ""
        self.pages = 0
        self.problems: list[str] = []

    def get(self, path: str) -> str:
        self.conn.request("GET", path, headers={"Cookie": self.cookie} if self.cookie else {})
        response = self.conn.getresponse()
        body = response.read().decode()
        if response.status != 200:
            self.problems.append(f"{path}: HTTP {response.status}")
        if cookie := response.getheader("Set-Cookie"):
            self.cookie = cookie.split(";")[0]
        return body

    def visit(self, page: str) -> None:
        m = re.search(r'data-version="(\w+)"', self.get(page))
        if m is None:
            self.problems.append(f"{page}: no version in the page")
            return
        assets = (("/assets/style.css", r"version (\w+)"), ("/assets/app.js", r"version = '(\w+)'"))
        for asset, pattern in assets:
            found = re.search(pattern, self.get(asset))
            if found is None or found[1] != m[1]:
                self.problems.append(f"{page} is {m[1]} but {asset} is {found and found[1]}")
        self.pages += 1

    def loop(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                for page in PAGES:
                    self.visit(page)
                time.sleep(0.002)  # leave the deploying thread some of the GIL on 2 cores
        finally:
            self.conn.close()


def test_fifty_deploys_and_rollbacks_under_readers_never_mix_versions(
    ssh_env: SSHEnv,
    sshd_pair: tuple[SSHServer, SSHServer],
    nginx_factory: Callable[[Path], Nginx],
    tmp_path: Path,
) -> None:
    target = open_ssh_target("prod", ssh_env.target_table(Path("site")))
    builds = [version_site(tmp_path / "blue", "blue"), version_site(tmp_path / "green", "green")]
    releases = [deploy_folder(target, builds[0])[0].id]
    servers = [nginx_factory(s.home / "site") for s in sshd_pair]
    readers = [Reader(servers[i % 2]) for i in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=r.loop, args=(stop,)) for r in readers]
    for t in threads:
        t.start()
    try:
        for i in range(50):
            if i % 2 == 0:  # deploy the other version as a new release
                releases.append(deploy_folder(target, builds[(i // 2 + 1) % 2])[0].id)
            else:  # roll back to the release before
                rollback_to(target, releases[-2])
                releases.append(releases[-2])
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    problems = [p for r in readers for p in r.problems]
    report_readers("ssh x2 + nginx", len(releases) - 1, 3 * sum(r.pages for r in readers), len(problems))
    assert problems == [], problems[:5]
    print(f"{sum(r.pages for r in readers)} pages read during {len(releases) - 1} switches")
    assert sum(r.pages for r in readers) > 200  # the readers really were reading throughout
    assert set(target.live_by_host().values()) == {releases[-1]}
    target.close()
