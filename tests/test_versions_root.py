"""The files a versioned root serves besides versions.json: a 404 page that offers the same
path in the default version (its script run in Node), and a robots.txt letting crawlers in."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sitedeploy.versions.state import Alias, FamilyState, Line, root_files

NODE = shutil.which("node") or "node"  # scripts/test.sh installs it (Debian: nodejs)
STUB = """
const fs = require("fs"), vm = require("vm");
const html = fs.readFileSync(process.argv[2], "utf8");
const code = html.match(/<script>([\\s\\S]*?)<\\/script>/)[1];
const link = { href: "", textContent: "" };
const context = {
  window: { location: { pathname: process.argv[3] } },
  document: { getElementById: () => link },
};
vm.createContext(context);
vm.runInContext(code, context);
process.stdout.write(JSON.stringify(link.href));
"""


def state() -> FamilyState:
    lines = (Line("2.0", "2.0"), Line("1.0", "1.0"))
    return FamilyState("versions", lines, (Alias("latest", "2.0"),), "latest")


def test_the_root_serves_a_404_page_and_lets_crawlers_in() -> None:
    files = root_files(state())
    assert files["robots.txt"] == b"User-agent: *\nDisallow:\n"
    page = files["404.html"].decode()
    assert '<a id="same" href="/latest/">' in page and 'content="noindex"' in page
    assert "404.html" not in root_files(FamilyState("versions"))  # no default: nothing to offer
    assert root_files(FamilyState("previews"))["robots.txt"] == b"User-agent: *\nDisallow: /\n"


@pytest.mark.parametrize(
    ("path", "offered"),
    [
        ("/1.0/guide/old/", "/latest/guide/old/"),
        ("/2.0/x.html", "/latest/x.html"),
        ("/guide/", "/latest/guide/"),
    ],
)
def test_the_404_script_swaps_the_version_for_the_default(tmp_path: Path, path: str, offered: str) -> None:
    (tmp_path / "404.html").write_bytes(root_files(state())["404.html"])
    (tmp_path / "stub.js").write_text(STUB)
    done = subprocess.run(
        [NODE, str(tmp_path / "stub.js"), str(tmp_path / "404.html"), path],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(done.stdout) == offered
