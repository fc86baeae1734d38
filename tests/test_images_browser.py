"""A real browser picks the right variant: a small one on a phone, a large one on a desktop.

The page is rewritten by the images stage, served over HTTP on 127.0.0.1 and loaded in
headless Chromium at two window sizes; the server's request log shows which files it fetched.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from PIL import Image

from sitedeploy.config import ImagesConfig
from sitedeploy.images import process_site
from tests.fixtures.browser import Chromium, WebServer

# Headless Chromium will not make a window narrower than 500 px, so the phone loads the page in
# a 390 x 844 iframe: srcset and sizes (100vw) are evaluated against the frame's viewport.
PHONE = """<!doctype html><html><body style="margin:0">
<iframe src="/index.html" width="390" height="844" style="border:0"></iframe></body></html>
"""
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Photo</title>
<style>body { margin: 0 } .content { max-width: 850px } img { max-width: 100% }</style></head>
<body><div class="content"><p><img alt="A hero photo" src="img/hero.jpg"></p></div></body></html>
"""


def hero_jpeg() -> bytes:
    """A 2000 x 1000 photo-like gradient."""
    grey = Image.linear_gradient("L").resize((2000, 1000))
    im = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), grey.rotate(180)))
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def fetched_variants(requests: list[str]) -> list[tuple[int, str]]:
    """(width, extension) of each variant requested, e.g. (480, 'avif')."""
    found = (re.search(r"/img/hero\.(\d+)w\.[0-9a-f]{10}\.(\w+)$", path) for path in requests)
    return [(int(m.group(1)), m.group(2)) for m in found if m]


def test_phone_fetches_a_small_variant_and_desktop_a_large_one_in_a_modern_format(
    tmp_path: Path, chromium: Chromium, web_server: tuple[Path, WebServer]
) -> None:
    root, server = web_server
    (root / "img").mkdir()
    (root / "img" / "hero.jpg").write_bytes(hero_jpeg())
    (root / "index.html").write_text(PAGE)
    (root / "phone.html").write_text(PHONE)
    report = process_site(root, "/", ImagesConfig(), tmp_path / "cache")
    assert report.processed == 1 and "<picture>" in (root / "index.html").read_text()

    chromium.dump_dom(f"{server.url}/phone.html", 390, 844)
    phone = fetched_variants(server.requests)
    server.requests.clear()
    dom = chromium.dump_dom(f"{server.url}/index.html", 1600, 1000)
    assert "<picture>" in dom
    desktop = fetched_variants(server.requests)

    assert phone == [(480, "avif")], server.requests
    assert len(desktop) == 1 and desktop[0][0] >= 960 and desktop[0][1] == "avif", desktop
    assert "/img/hero.jpg" not in server.requests  # the original never leaves the server
