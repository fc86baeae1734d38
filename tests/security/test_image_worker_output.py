"""What the image worker writes is data, and the deployer checks it: a worker a hostile image
took over (stood in for by a fake worker in the real sandbox) can fail the build, never make
the deployer write outside the site, unpickle anything, or publish a file it links to; the
variant cache it can write is read without following links, and evicted without following them."""

from __future__ import annotations

import base64
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
from PIL import Image

from sitedeploy.config import ImagesConfig
from sitedeploy.errors import BuildError
from sitedeploy.images import confined, process_site
from sitedeploy.images.cache import VariantCache

SETTINGS = ImagesConfig(widths=(480,))
# A worker that answers the request with REPLY (bytes), then waits for the end of input (or
# exits at once when it has nothing to say).
FAKE_WORKER = """
import sys
sys.stdin.buffer.readline()
sys.stdout.buffer.write(REPLY)
sys.stdout.buffer.flush()
if REPLY:
    sys.stdin.buffer.read()
"""


def _site(root: Path, width: int = 1000) -> Path:
    (root / "img").mkdir(parents=True)
    Image.linear_gradient("L").resize((width, 500)).convert("RGB").save(root / "img" / "a.jpg", quality=95)
    (root / "index.html").write_text('<p><img src="img/a.jpg" alt="a"></p>\n')
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _ok(**variant: object) -> dict[str, object]:
    fields = {"width": 480, "height": 240, "format": "jpeg", "digest": "0123456789", "size": 5, **variant}
    return {
        "status": "ok",
        "width": 1000,
        "height": 500,
        "fallback": "jpeg",
        "variants": [fields],
        "reason": "",
    }


def _line(message: object) -> bytes:
    return json.dumps(message).encode() + b"\n"


FORGED = {
    "a digest that walks out of the site": _line(
        {"job": 0, "outcome": _ok(digest="../../../../tmp/x"), "blobs": None}
    ),
    "a boolean for a width": _line({"job": 0, "outcome": _ok(width=True), "blobs": None}),
    "an extra field": _line({"job": 0, "outcome": {**_ok(), "__reduce__": "os.system"}, "blobs": None}),
    "a result for no job": _line({"job": 7, "outcome": _ok(), "blobs": None}),
    "a pickle": pickle.dumps({"job": 0}) + b"\n",
    "bytes that are not the variant": _line(
        {"job": 0, "outcome": _ok(), "blobs": {"0123456789": base64.b64encode(b"hello").decode()}}
    ),
    "variants said to be cached that are not": _line({"job": 0, "outcome": _ok(), "blobs": None}),
    "an exit without an answer": b"",
}


@pytest.mark.parametrize("reply", FORGED.values(), ids=FORGED.keys())
def test_a_forged_result_fails_the_build_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: bytes
) -> None:
    site = _site(tmp_path / "site")
    before = _files(site)
    monkeypatch.setattr(confined, "WORKER_COMMAND", ("-P", "-c", f"REPLY = {reply!r}\n" + FAKE_WORKER))
    with pytest.raises(BuildError, match=r"image worker"):
        process_site(site, "/", SETTINGS, tmp_path / "cache")
    assert _files(site) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "site"]


def test_links_planted_in_the_cache_are_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "home" / ".ssh" / "id_ed25519"
    secret.parent.mkdir(parents=True)
    secret.write_text("PRIVATE KEY")
    cache_dir = tmp_path / "cache"
    first = _site(tmp_path / "one")
    process_site(first, "/", SETTINGS, cache_dir)
    (entry,) = VariantCache(cache_dir).root.glob("??/*")
    for blob in entry.iterdir():  # every variant is now a link to the deployer's key
        if blob.name != "outcome.json":
            blob.unlink()
            blob.symlink_to(secret)
    second = _site(tmp_path / "two")
    report = process_site(second, "/", SETTINGS, cache_dir)
    assert (report.cache_hits, report.decoded) == (0, 1)  # the planted entry is a miss
    assert not [p for p in second.rglob("*") if p.is_symlink()]
    assert not [name for name, data in _files(second).items() if b"PRIVATE KEY" in data]
    assert _files(second).keys() == _files(first).keys()


def test_a_fifo_for_an_outcome_is_a_miss_not_a_hang(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    process_site(_site(tmp_path / "one"), "/", SETTINGS, cache_dir)
    (entry,) = VariantCache(cache_dir).root.glob("??/*")
    (entry / "outcome.json").unlink()
    os.mkfifo(entry / "outcome.json")
    assert VariantCache(cache_dir).get(entry.name) is None


@pytest.mark.parametrize("sandbox", ["bwrap", "off"])
def test_eviction_never_follows_a_link_out_of_the_cache(tmp_path: Path, sandbox: str) -> None:
    """Unconfined too: the eviction code itself must not follow links, not only the sandbox."""
    outside = tmp_path / "outside"
    (outside / "entry").mkdir(parents=True)
    (outside / "entry" / "outcome.json").write_text("{}")
    (outside / "entry" / "photo.jpg").write_bytes(b"x" * 1000)
    cache_dir = tmp_path / "cache"
    process_site(_site(tmp_path / "one"), "/", SETTINGS, cache_dir, sandbox=sandbox)  # type: ignore[arg-type]
    (VariantCache(cache_dir).root / "zz").symlink_to(outside)  # a shard planted as a link
    os.utime(outside / "entry" / "outcome.json", (1, 1))  # the least recently used of all
    cold = ImagesConfig(widths=(480,), cache_max_bytes=0)  # evict everything that is ours
    process_site(_site(tmp_path / "two", width=900), "/", cold, cache_dir, sandbox=sandbox)  # type: ignore[arg-type]
    assert sorted(p.name for p in (outside / "entry").iterdir()) == ["outcome.json", "photo.jpg"]
    assert not list(VariantCache(cache_dir).root.glob("[0-9a-f][0-9a-f]/*"))
    shutil.rmtree(outside)
