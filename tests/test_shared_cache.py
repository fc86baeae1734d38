"""The shared build cache (issue 27): machines share site builds through a folder or an S3
bucket; only signed, intact entries are used; previews never write; writers and evictors
race safely."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from sitedeploy.build import plan
from sitedeploy.build.shared import open_shared
from sitedeploy.cache import FolderStore, SharedCache
from sitedeploy.commands.common import synced_source
from sitedeploy.config import load
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server
from tests.fixtures.shared_cache import CacheKeys, machine, run_cli


@pytest.fixture
def repo(tmp_path: Path) -> ContentRepo:
    content = ContentRepo(tmp_path / "content")
    content.add_static_site("landing")
    content.add_static_site("blog", version="b1")
    content.commit("two sites")
    return content


def entries(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "v1").iterdir()) if (cache / "v1").is_dir() else []


def test_two_agents_share_builds_through_s3(
    tmp_path: Path, repo: ContentRepo, cache_keys: CacheKeys, s3_server: S3Server, s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/builds/"
    extra = f'cache_endpoint_url = "{s3_server.url}"\n'
    first = machine(tmp_path / "a", repo.path, url, cache_keys, sign=cache_keys.ci, extra=extra)
    second = machine(tmp_path / "b", repo.path, url, cache_keys, extra=extra)
    built = run_cli(first, "deploy")
    assert built.exit_code == 0, built.output
    assert built.output.count("building site") == 2 and built.output.count("stored in the shared cache") == 2
    shared = run_cli(second, "deploy")
    assert shared.exit_code == 0, shared.output
    assert "building site" not in shared.output and shared.output.count("fetched site") == 2
    for site in ("landing", "blog"):
        page = f"public/current/{site}/index.html"
        assert (tmp_path / "b" / page).read_bytes() == (tmp_path / "a" / page).read_bytes()


def test_ci_push_then_a_cache_only_agent_publishes_without_building(
    tmp_path: Path, repo: ContentRepo, cache_keys: CacheKeys
) -> None:
    cache = tmp_path / "shared"
    ci = machine(tmp_path / "ci", repo.path, str(cache), cache_keys, sign=cache_keys.ci)
    agent = machine(tmp_path / "agent", repo.path, str(cache), cache_keys, extra='mode = "cache-only"\n')
    early = run_cli(agent, "deploy")  # nothing pushed yet: one line, live site untouched
    assert early.exit_code != 0 and len(early.output.strip().splitlines()) == 1
    assert "no build in the shared cache" in early.output and "build --push" in early.output
    assert not (tmp_path / "agent" / "public" / "current").exists()
    pushed = run_cli(ci, "build", "--commit", "main", "--push")
    assert pushed.exit_code == 0, pushed.output
    assert pushed.output.count("stored in the shared cache") == 2 and len(entries(cache)) == 2
    again = run_cli(ci, "build", "--push")  # a retried CI job: nothing new, nothing rebuilt
    assert "shared cache: 0 stored, 2 already there" in again.output and "building" not in again.output
    deployed = run_cli(agent, "deploy")
    assert deployed.exit_code == 0, deployed.output
    assert "building site" not in deployed.output
    assert (tmp_path / "agent" / "public" / "current" / "blog" / "index.html").read_text().count("b1") == 2


def _push_one(tmp_path: Path, repo: ContentRepo, keys: CacheKeys, sign: Path) -> tuple[Path, Path]:
    cache = tmp_path / "shared"
    ci = machine(tmp_path / "ci", repo.path, str(cache), keys, sign=sign)
    assert run_cli(ci, "build", "--site", "landing", "--push").exit_code == 0
    (entry,) = (cache / "v1").iterdir()
    return cache, entry


def _tamper_bytes(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[-40] ^= 0xFF  # inside the archive (its compressed body)
    entry.write_bytes(bytes(data))


def _strip_signature(entry: Path) -> None:
    magic, length, rest = entry.read_bytes().split(b"\n", 2)
    entry.write_bytes(magic + b"\n0\n" + rest[int(length) :])


@pytest.mark.parametrize("damage", ["bytes changed", "signature missing", "unknown key", "other key"])
def test_a_tampered_entry_is_never_used(
    tmp_path: Path, repo: ContentRepo, cache_keys: CacheKeys, damage: str
) -> None:
    sign = cache_keys.rogue if damage == "unknown key" else cache_keys.ci
    cache, entry = _push_one(tmp_path, repo, cache_keys, sign)
    if damage == "bytes changed":
        _tamper_bytes(entry)
    elif damage == "signature missing":
        _strip_signature(entry)
    elif damage == "other key":  # a valid entry of 'landing' stored under 'blog''s key
        blog = plan(
            load(tmp_path / "ci" / "deploy.toml"), *_source_commit(tmp_path / "ci"), trust="production"
        )
        from sitedeploy.build.shared import shared_key

        blog_key = shared_key(next(j for j in blog.jobs if j.config.name == "blog"))
        entry.rename(entry.with_name(f"{blog_key}.entry"))
    agent = machine(tmp_path / "agent", repo.path, str(cache), cache_keys)
    result = run_cli(agent, "build")
    assert result.exit_code == 0, result.output
    assert "fetched site" not in result.output
    assert result.output.count("building site") == 2
    assert result.output.count("shared cache entry of site") == 1 and "ignored" in result.output


def test_entries_pushed_together_are_checked_once_and_bound_to_their_own_keys(
    tmp_path: Path, repo: ContentRepo, cache_keys: CacheKeys
) -> None:
    cache = tmp_path / "shared"
    ci = machine(tmp_path / "ci", repo.path, str(cache), cache_keys, sign=cache_keys.ci)
    assert run_cli(ci, "build", "--push").exit_code == 0
    from sitedeploy.build.shared import shared_key

    jobs = plan(load(ci), *_source_commit(tmp_path / "ci"), trust="production").jobs
    keys = {job.config.name: shared_key(job) for job in jobs}
    reader = _cache_of(machine(tmp_path / "reader", repo.path, str(cache), cache_keys))
    for name, key in keys.items():
        (tmp_path / "fetched" / name).mkdir(parents=True)
        assert reader.fetch(key, tmp_path / "fetched" / name).ok
    assert len(reader._signers) == 1  # one listing, one ssh-keygen for both entries
    blog = cache / "v1" / f"{keys['blog']}.entry"  # landing's entry under blog's key: the
    blog.unlink()  # listing names blog's key, but with blog's archive's sha256
    (cache / "v1" / f"{keys['landing']}.entry").rename(blog)
    result = run_cli(machine(tmp_path / "agent", repo.path, str(cache), cache_keys), "build")
    assert result.exit_code == 0, result.output
    assert "fetched site" not in result.output and result.output.count("building site") == 2
    assert "shared cache entry of site 'blog' ignored: not signed" in result.output


def _source_commit(folder: Path) -> tuple[Any, Any]:
    source = synced_source(load(folder / "deploy.toml"))
    return source, source.resolve(None, None)


@pytest.mark.parametrize("trust", ["branch-preview", "pull-preview"])
def test_a_preview_writes_nothing_to_the_shared_cache(
    tmp_path: Path, repo: ContentRepo, cache_keys: CacheKeys, trust: Any
) -> None:
    cache = tmp_path / "shared"
    machine(tmp_path / "a", repo.path, str(cache), cache_keys, sign=cache_keys.ci)
    config = load(tmp_path / "a" / "deploy.toml")
    source = synced_source(config)
    built = plan(config, source, source.resolve(None, None), trust=trust).get()
    assert [s.fetched for s in built.sites] == [False, False]
    assert entries(cache) == [] and not (cache / ".tmp").exists()
    shared = open_shared(config, trust)
    assert shared is not None and not shared.writes


def _cache_of(config_path: Path) -> SharedCache:
    shared = open_shared(load(config_path), "production")
    assert shared is not None
    return shared.cache


@pytest.mark.parametrize("store", ["folder", "s3"])
def test_two_writers_of_one_key_at_once_store_it_once(
    tmp_path: Path, cache_keys: CacheKeys, store: str, request: pytest.FixtureRequest
) -> None:
    if store == "s3":
        server, bucket = request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket")
        url, extra = f"s3://{bucket}/x", f'cache_endpoint_url = "{server.url}"\n'
    else:
        url, extra = str(tmp_path / "shared"), ""
    cache = _cache_of(machine(tmp_path / "m", tmp_path, url, cache_keys, sign=cache_keys.ci, extra=extra))
    entry = tmp_path / "entry"
    (entry / "out").mkdir(parents=True)
    (entry / "out" / "index.html").write_text("<h1>same build</h1>\n")
    (entry / "manifest.json").write_bytes(_manifest(entry / "out"))
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def write() -> None:
        barrier.wait()
        results.append(cache.push("k" * 64, entry))

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    assert cache.fetch("k" * 64, fetched).ok
    assert (fetched / "out" / "index.html").read_text() == "<h1>same build</h1>\n"


def _manifest(out: Path) -> bytes:
    from sitedeploy.release.manifest import scan

    return scan(out).to_json()


class _EvictOnFirstWrite:
    """A reader's destination that evicts every entry as soon as the first bytes arrive."""

    def __init__(self, into: Any, cache: SharedCache) -> None:
        self.into, self.cache, self.evicted = into, cache, -1

    def write(self, data: bytes) -> int:
        if self.evicted < 0:
            self.evicted = self.cache.evict(now=10**12)
        return int(self.into.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.into, name)


def test_eviction_while_a_reader_fetches_hands_out_a_whole_entry_or_none(
    tmp_path: Path, repo: ContentRepo, cache_keys: CacheKeys
) -> None:
    cache_dir, entry = _push_one(tmp_path, repo, cache_keys, cache_keys.ci)
    cache = _cache_of(tmp_path / "ci" / "deploy.toml")
    key = entry.name.removesuffix(".entry")
    store = cache.store
    assert isinstance(store, FolderStore)
    original = store.read
    seen: list[_EvictOnFirstWrite] = []

    def read(name: str, into: Any, limit: int) -> bool:
        seen.append(_EvictOnFirstWrite(into, cache))
        return original(name, seen[-1], limit)

    object.__setattr__(store, "read", read)  # the test's reader, not sitedeploy's code path
    dest = tmp_path / "dest"
    dest.mkdir()
    assert cache.fetch(key, dest).ok  # the entry went mid-read; the reader still got all of it
    assert seen[0].evicted == 1 and entries(cache_dir) == []
    assert (dest / "out" / "index.html").is_file()
    again = tmp_path / "again"
    again.mkdir()
    assert cache.fetch(key, again) == type(cache.fetch(key, again))(False)  # gone: a miss


def _archive(*members: tuple[str, bytes | None, bytes]) -> Any:
    """A gzip'd tar of (name, link target or None, body)."""
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for name, link, body in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link.decode()
                tar.addfile(info)
            else:
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    raw.seek(0)
    return raw


@pytest.mark.parametrize(
    "member",
    [
        ("out/x", b"/etc/passwd", b""),
        ("../escape", None, b"x"),
        ("/abs", None, b"x"),
        ("out/../../x", None, b""),
    ],
    ids=["symlink", "dotdot", "absolute", "inner-dotdot"],
)
def test_an_entry_that_breaks_the_untrusted_output_rules_is_refused(
    tmp_path: Path, member: tuple[str, bytes | None, bytes]
) -> None:
    from sitedeploy.cache.packing import BadEntry, unpack

    with pytest.raises(BadEntry):
        unpack(_archive(("manifest.json", None, b"{}"), member), tmp_path, 10**6)
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "out" / "x").is_symlink()


@pytest.mark.parametrize(
    ("line", "signer"),
    [
        ("ci@example.com,ops {key}", "ci@example.com"),  # read from the line: one ssh-keygen
        ("*@example.com {key}", "*@example.com"),  # a pattern: found by -Y find-principals
        ('ci@example.com namespaces="git" {key}', None),  # listed, not for cache entries
        ("ci@example.com {rogue}", None),  # the entry's key is not listed
    ],
)
def test_the_signer_is_whom_ssh_keygen_verifies(
    tmp_path: Path, cache_keys: CacheKeys, line: str, signer: str | None
) -> None:
    from sitedeploy.cache import signing

    key, rogue = (k.with_suffix(".pub").read_text().strip() for k in (cache_keys.ci, cache_keys.rogue))
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"# operators\n{line.format(key=key, rogue=rogue)}\n")
    data = signing.listing([("k" * 64, "d" * 64)])
    signature = signing.sign(data, cache_keys.ci)
    assert signing.verify(data, signature, allowed) == signer
    assert signing.verify(data.replace(b"d", b"e"), signature, allowed) is None
