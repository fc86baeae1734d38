"""The incremental builder's cache on disk (``pages.pack``): a damaged, foreign or older cache
is never reused; the build runs in full, says why, and leaves a good cache behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitedeploy.builders.mkdocs_incremental.pack import FORMAT, HEADER, PackReader
from tests.test_incremental_build import Site, build_both, edit_text, make_site


def _built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Site, Path]:
    site = make_site(tmp_path / "site", 11, pages=12)
    assert build_both(site, tmp_path, 0, monkeypatch).mode == "full"
    return site, tmp_path / "cache" / "pages.pack"


def _rebuilds_in_full(site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reason: str) -> None:
    """The next build is full for ``reason``, and the one after it incremental again."""
    edit_text(site)
    outcome = build_both(site, tmp_path, 1, monkeypatch)
    assert (outcome.mode, outcome.reason) == ("full", reason), outcome.summary
    edit_text(site)
    outcome = build_both(site, tmp_path, 2, monkeypatch)
    assert (outcome.mode, outcome.rendered) == ("incremental", 1), outcome.summary


def test_a_damaged_pack_is_rebuilt_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site, pack = _built(tmp_path, monkeypatch)
    data = bytearray(pack.read_bytes())
    data[len(HEADER) + 10] ^= 0xFF  # one flipped byte in the first chunk
    pack.write_bytes(bytes(data))
    reason = "the cache is unreadable: it is damaged (checksum mismatch)"
    _rebuilds_in_full(site, tmp_path, monkeypatch, reason)


def test_a_truncated_pack_is_rebuilt_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site, pack = _built(tmp_path, monkeypatch)
    pack.write_bytes(pack.read_bytes()[:-100])  # as a full disk or a crashed file system leaves it
    reason = "the cache is unreadable: it is truncated or damaged (no valid trailer)"
    _rebuilds_in_full(site, tmp_path, monkeypatch, reason)


def test_a_pack_of_another_format_is_rebuilt_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site, pack = _built(tmp_path, monkeypatch)
    pack.write_bytes(HEADER.replace(f" {FORMAT}\n".encode(), b" 99\n") + pack.read_bytes()[len(HEADER) :])
    reason = f"the cache is unreadable: it is in format 99, this builder reads format {FORMAT}"
    _rebuilds_in_full(site, tmp_path, monkeypatch, reason)


def test_a_file_that_is_no_pack_is_rebuilt_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site, pack = _built(tmp_path, monkeypatch)
    pack.write_text('{"site": {}}')
    reason = "the cache is unreadable: it is not a sitedeploy cache pack"
    _rebuilds_in_full(site, tmp_path, monkeypatch, reason)


def test_a_cache_of_the_older_format_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Format 1 kept a state.json and one JSON file per page; the first build of this one
    builds in full, says why, and removes them."""
    site = make_site(tmp_path / "site", 12, pages=12)
    cache = tmp_path / "cache"
    (cache / "content").mkdir(parents=True)
    (cache / "content" / "0123.json").write_text('{"content": "", "toc": []}')
    (cache / "state.json").write_text(json.dumps({"site": {}, "local_code": {}, "files": [], "pages": {}}))
    outcome = build_both(site, tmp_path, 0, monkeypatch)
    assert (outcome.mode, outcome.reason) == ("full", "the cache is in an older format")
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == [
        "html",  # the stored pages of this format
        "last-build.json",
        "pages.pack",
    ]
    edit_text(site)
    assert build_both(site, tmp_path, 1, monkeypatch).mode == "incremental"


def test_the_pack_holds_one_render_and_one_search_chunk_per_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After edits, unused chunks are gone: a pack holds what the last build used, no more."""
    site, pack = _built(tmp_path, monkeypatch)
    for n in range(1, 4):
        edit_text(site)
        assert build_both(site, tmp_path, n, monkeypatch).mode == "incremental"
    reader = PackReader(pack)
    pages = reader.index["pages"]
    assert len(pages) == len(site.pages())
    kinds = sorted(key[0] for key in reader.chunks)
    assert kinds == ["r"] * len(pages) + ["s"] * len(pages)
    assert not list((tmp_path / "cache").glob(".pages.pack.*"))  # no temporary pack left


def test_a_failed_build_leaves_the_previous_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site, pack = _built(tmp_path, monkeypatch)
    before = pack.read_bytes()
    (site.docs / "index.md").write_bytes(b"# Broken \xff\xfe encoding\n")  # MkDocs fails to read it
    with pytest.raises(UnicodeDecodeError):
        build_both(site, tmp_path, 1, monkeypatch)
    assert pack.read_bytes() == before
    assert not list((tmp_path / "cache").glob(".pages.pack.*"))
