"""A real nginx serving a local target with the lines ``sitedeploy nginx-config`` prints:
redirects (status, Location, splats, placeholders), headers, the 404 page, ``nginx -t`` on
the generated config, and the rules switching with the release through ``reload_command``."""

from __future__ import annotations

import http.client
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.fixtures.git import ContentRepo, write_config
from tests.fixtures.nginx import NGINX, Nginx, free_port, server_block

SITE = '[[sites]]\nname = "web"\npath = "sites/web"\nmount = "/"\n'
PAGES = ("index", "new/index", "guide/a", "fresh/index", "404")


def sd(toml: Path, *args: str) -> Result:
    from sitedeploy.cli.main import cli

    return CliRunner().invoke(cli, ["--config", str(toml), *args])


@dataclass
class RulesNginx(Nginx):
    lines: str = ""

    def config(self) -> str:
        mine = f"server {{\n    listen 127.0.0.1:{self.port};\n{self.lines}}}\n"
        return super().config().replace(server_block(self.site, self.port), mine)

    def reload_argv(self) -> list[str]:
        return [NGINX, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-s", "reload"]


@dataclass
class Served:
    repo: ContentRepo
    toml: Path
    nginx: RulesNginx

    def get(self, path: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.nginx.port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response

    def location(self, path: str) -> tuple[int, str]:
        response = self.get(path)
        where = response.getheader("Location") or ""
        return response.status, where.replace(self.nginx.url, "")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("nginx-rules")
    repo = ContentRepo(root / "content")
    for page in PAGES:
        repo.write(f"sites/web/{page}.html", f"<!doctype html><title>{page}</title><h1>{page}</h1>\n")
    repo.write("sites/web/assets/app.0123abcd.js", "window.v = 1;\n")
    repo.write(
        "sites/web/_redirects",
        "/old/ /new/\n/blog/* /guide/:splat 302\n/v1/:lang/page /new/?lang=:lang 308\n/gone 410\n",
    )
    repo.write("sites/web/_headers", "/*\n  X-Frame-Options: DENY\n/guide/*\n  X-Robots-Tag: noindex\n")
    repo.commit("v1 rules")
    ops = root / "ops"
    ops.mkdir()
    server = RulesNginx(root / "nginx", ops / "public", free_port())
    extra = f"reload_command = {server.reload_argv()!r}\n".replace("'", '"')
    toml = write_config(ops, repo.path, sites=SITE, extra=extra)
    printed = sd(toml, "nginx-config", "--target", "local")
    assert printed.exit_code == 0, printed.output
    server.lines = printed.output
    server.start()  # before the first release: the includes are globs that match nothing yet
    try:
        deployed = sd(toml, "deploy")
        assert deployed.exit_code == 0, deployed.output
        ready = Served(repo, toml, server)
        wait_for(ready, "/old/", (301, "/new/"))
        yield ready
    finally:
        server.stop()


def test_redirects_headers_and_the_404_page_are_answered_by_nginx(served: Served) -> None:
    assert served.location("/old/") == (301, "/new/")
    assert served.location("/old") == (301, "/new/")
    assert served.location("/blog/a.html") == (302, "/guide/a.html")
    assert served.location("/v1/fr/page") == (308, "/new/?lang=fr")
    assert served.get("/gone").status == 410
    page = served.get("/guide/a.html")
    assert page.status == 200 and page.getheader("X-Robots-Tag") == "noindex"
    assert page.getheader("X-Frame-Options") == "DENY"
    assert page.getheader("Cache-Control") == "public, max-age=0, must-revalidate"
    asset = served.get("/assets/app.0123abcd.js")
    assert asset.getheader("Cache-Control") == "public, max-age=31536000, immutable"
    missing = served.get("/no/such/page/")
    assert missing.status == 404
    conn = http.client.HTTPConnection("127.0.0.1", served.nginx.port, timeout=10)
    conn.request("GET", "/no/such/page/")
    assert b"<h1>404</h1>" in conn.getresponse().read()
    conn.close()
    assert served.get("/.well-known/sitedeploy/rules.json").status == 404  # the rules stay private


def test_nginx_t_accepts_the_generated_config(served: Served) -> None:
    conf = served.nginx.prefix / "nginx.conf"
    done = subprocess.run([NGINX, "-t", "-p", str(served.nginx.prefix), "-c", str(conf)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def wait_for(served: Served, path: str, expected: tuple[int, str]) -> None:
    """``nginx -s reload`` returns before the old workers stopped accepting: wait (bounded)
    until the answer is the new one several times in a row."""
    deadline, streak = time.monotonic() + 20, 0
    while streak < 5 and time.monotonic() < deadline:
        streak = streak + 1 if served.location(path) == expected else 0
        time.sleep(0.02)
    assert streak == 5, (served.nginx.prefix / "error.log").read_text()[-600:]


def test_the_rules_switch_with_the_release_and_a_failed_reload_is_one_line(served: Served) -> None:
    served.repo.write("sites/web/_redirects", "/old/ /fresh/\n/gone 410\n")
    served.repo.commit("v2 rules: /old/ now goes to /fresh/")
    result = sd(served.toml, "deploy")
    assert result.exit_code == 0, result.output
    wait_for(served, "/old/", (301, "/fresh/"))
    assert served.get("/blog/x").status == 404  # v1's splat went with v1
    assert sd(served.toml, "rollback").exit_code == 0
    wait_for(served, "/old/", (301, "/new/"))  # a rollback reloads too

    broken = served.toml.read_text().replace("reload_command = [", 'reload_command = ["false", ')
    served.toml.write_text(broken)
    result = sd(served.toml, "deploy", "--force")  # the rollback pinned the target
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert "the new release is live and recorded, but 'false " in lines[-1]
    assert "Traceback" not in result.output
    status = sd(served.toml, "status")
    assert "v2 rules" in status.output  # switched and recorded despite the failed reload
