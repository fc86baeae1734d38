"""The HTML side of the images stage: which ``<img>`` tags become ``<picture>``, and nothing else.

The golden test builds ``tests/data/images/page.md`` with a real MkDocs, runs the stage, and
compares the content between the ``golden:start``/``golden:end`` markers with
``page.expected.html`` (variant hashes normalised, so an encoder upgrade does not break it).
Regenerate with ``SITEDEPLOY_UPDATE_GOLDENS=1 pytest tests/test_images_rewrite.py``.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from sitedeploy.config import ImagesConfig
from sitedeploy.images import process_site
from sitedeploy.images.rewrite import find_images, splice

DATA = Path(__file__).parent / "data" / "images"
SETTINGS = ImagesConfig(widths=(320, 640))
MKDOCS_YML = """site_name: Golden
use_directory_urls: true
markdown_extensions: [attr_list, md_in_html, tables]
"""


def gradient(width: int, height: int, fmt: str) -> bytes:
    """Colour gradients with a little noise: like a photo, PNG stores it poorly."""
    grey = Image.linear_gradient("L").resize((width, height))
    im = Image.merge("RGB", (grey, grey.rotate(90), grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    im = Image.blend(im, Image.effect_noise((width, height), 40).convert("RGB"), 0.15)
    buffer = io.BytesIO()
    im.save(buffer, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``page.md`` built by MkDocs (once per module), with a photo, a screenshot and an SVG."""
    project = tmp_path_factory.mktemp("mkdocs")
    (project / "mkdocs.yml").write_text(MKDOCS_YML)
    docs = project / "docs"
    (docs / "img").mkdir(parents=True)
    (docs / "guide.md").write_text((DATA / "page.md").read_text())
    (docs / "img" / "photo.jpg").write_bytes(gradient(1200, 800, "JPEG"))
    (docs / "img" / "shot.png").write_bytes(gradient(500, 300, "PNG"))
    (docs / "img" / "diagram.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    )
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(project / "site")],
        cwd=project,
        check=True,
        capture_output=True,
    )
    return project / "site"


@pytest.fixture(scope="module")
def rewritten(built: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(page before, page after) the stage ran on a copy of the built site."""
    before = (built / "guide" / "index.html").read_text()
    report = process_site(built, "/", SETTINGS, tmp_path_factory.mktemp("cache"))
    assert report.warnings == () and report.processed == 2, report
    return before, (built / "guide" / "index.html").read_text()


def golden_part(page: str) -> str:
    start, end = page.index("<!-- golden:start -->"), page.index("<!-- golden:end -->")
    return re.sub(r"\.[0-9a-f]{10}\.(avif|webp|jpg|png)", r".HASH.\1", page[start:end]) + "\n"


def test_golden_page(rewritten: tuple[str, str]) -> None:
    expected = DATA / "page.expected.html"
    actual = golden_part(rewritten[1])
    if os.environ.get("SITEDEPLOY_UPDATE_GOLDENS"):
        expected.write_text(actual)
    assert actual == expected.read_text()


def without_images(page: str) -> str:
    """The page minus every picture, img and a tag: what the stage must leave byte-identical."""
    page = re.sub(r"<picture>.*?</picture>", "", page, flags=re.S)
    return re.sub(r"<(img|a)\b[^>]*>", "", page)


def test_the_rest_of_the_page_is_byte_identical(rewritten: tuple[str, str]) -> None:
    before, after = rewritten
    assert before != after
    assert without_images(before) == without_images(after)


def test_which_images_are_rewritten(rewritten: tuple[str, str]) -> None:
    after = golden_part(rewritten[1])
    pictures = re.findall(r"<picture>.*?</picture>", after, flags=re.S)
    assert len(pictures) == 5  # plain, figure, lightbox, table cell + the author's own
    for untouched in (
        'src="https://example.com/cat.jpg"',
        'src="../img/diagram.svg"',
        'data-sitedeploy="skip"',
        'class="no-sitedeploy"',
        'srcset="img/photo.jpg 1200w"',
        "document.write('<img src=\"img/photo.jpg\">')",
    ):
        (line,) = [line for line in after.splitlines() if untouched in line]
        assert "HASH" not in line, line
    author = next(p for p in pictures if "Author picture" in p)
    assert "HASH" not in author


def test_attributes_are_kept_and_completed(rewritten: tuple[str, str]) -> None:
    after = golden_part(rewritten[1])
    figure = next(p for p in re.findall(r"<picture>.*?</picture>", after, flags=re.S) if "main-shot" in p)
    img = figure[figure.index("<img") :]
    for attribute in (
        'alt="A screenshot"',
        'id="main-shot"',
        'class="wide"',
        'data-zoom="1"',
        'width="500"',
        'height="300"',
        'loading="lazy"',
        'decoding="async"',
        'sizes="(min-width: 1200px) 850px, 100vw"',
    ):
        assert attribute in img, attribute
    assert 'title="The title"' in after and 'alt="A photo &amp; &quot;quotes&quot;"' in after


def test_a_lightbox_link_points_at_a_large_variant(rewritten: tuple[str, str]) -> None:
    after = golden_part(rewritten[1])
    (link,) = re.findall(r'<a [^>]*class="glightbox"[^>]*>', after)
    assert re.search(r'href="../img/photo\.640w\.HASH\.jpg"', link), link


def test_every_variant_a_page_names_exists(rewritten: tuple[str, str], built: Path) -> None:
    urls = set(re.findall(r"\.\./img/[\w.-]+\.(?:avif|webp|jpg|png)", rewritten[1]))
    assert len(urls) > 10
    for url in urls:
        assert (built / url.removeprefix("../")).is_file(), url


def test_tags_are_found_by_a_parser_not_a_pattern() -> None:
    page = (
        '<p title="<img src=x>">x</p><!-- <img src="c.png"> --><script>"<img src=s.png>"</script>'
        '<IMG SRC="real.png" ALT=\'q\'/>\r\n<picture><img src="in.png"></picture>'
        '<a href="a.png"><img src="a.png"></a>'
    )
    images = find_images(page)
    assert [i.tag.get("src") for i in images] == ["real.png", "in.png", "a.png"]
    assert [i.in_picture for i in images] == [False, True, False]
    assert images[2].link is not None and images[2].link.get("href") == "a.png"
    first = images[0].tag
    assert page[first.start : first.end] == "<IMG SRC=\"real.png\" ALT='q'/>"
    assert splice(page, [(first.start, first.end, "X")]) == page.replace(page[first.start : first.end], "X")


def test_pages_without_img_are_not_rewritten(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "a.jpg").write_bytes(gradient(700, 400, "JPEG"))
    (site / "other.html").write_bytes(
        b"<p>no images \xe2\x9c\x93 here, only a link to <a href='img/a.jpg'>it</a></p>"
    )
    (site / "page.html").write_bytes(b"<p>\xe2\x9c\x93</p>\r\n<img src=img/a.jpg>\r\n<p>end</p>")
    report = process_site(site, "/", SETTINGS, tmp_path / "cache")
    assert report.pages == 1
    assert (site / "other.html").read_bytes().startswith(b"<p>no images \xe2\x9c\x93")
    page = (site / "page.html").read_bytes()
    assert page.startswith(b"<p>\xe2\x9c\x93</p>\r\n<picture>") and page.endswith(b"</picture>\r\n<p>end</p>")
