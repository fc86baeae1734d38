"""Review round 3: a hostile content repository (and a hostile visitor) against the new
``_redirects``/``_headers`` support, the shared build cache's unpacking and the status page.

Found and fixed here:

- ``$uri`` is percent-decoded in nginx, and a ``:name`` capture (``[^/]+``) matches CR and LF:
  ``/p/%0d%0aSet-Cookie:...`` against any ``/p/:x`` rule put a header of the visitor's choice
  into the response (``sitedeploy serve`` likewise). Patterns now skip a path holding a control
  character (nginx answers 400).
- ``re.match`` with ``$`` accepts a trailing newline: a ``redirect_maps`` key or value ending in
  ``\\n`` (mkdocs.yml) passed the path checks and reached the nginx config and ``Location``.
- A shared cache entry did not carry the site's ``rules.json``: a fetched build deployed
  without its redirects and security headers.
- A forge token with a trailing newline (a secret file) was quoted whole in the error
  http.client raised, and so in the log.
"""

from __future__ import annotations

import io
import socket
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sitedeploy.cache.packing import BadEntry, unpack
from sitedeploy.errors import RulesError
from sitedeploy.redirects import cloudfront, nginx
from sitedeploy.redirects.collect import _from_config
from sitedeploy.redirects.headers import parse_headers
from sitedeploy.redirects.rules import parse_line, parse_redirects
from sitedeploy.redirects.ruleset import RuleSet
from tests.fixtures.nginx import Nginx, free_port, server_block

RULES = "/p/:x /q/:x\n/old/* /:splat\n/exact/ /q/\n"
HEADERS = "/*\n  X-A: a;b {c} #d 'e' `f` %s\n"


@dataclass
class RulesNginx(Nginx):
    """nginx with the server block ``sitedeploy nginx-config`` prints."""

    def config(self) -> str:
        mine = f"server {{\n listen 127.0.0.1:{self.port};\n{nginx.snippet(str(self.site))}}}\n"
        return super().config().replace(server_block(self.site, self.port), mine)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RulesNginx]:
    root = tmp_path_factory.mktemp("round3")
    live = root / "site" / "current"
    (live / nginx.SERVER_CONF).parent.mkdir(parents=True)
    (live / "index.html").write_text("<h1>home</h1>\n")
    rules = RuleSet(
        tuple(parse_redirects(RULES, "_redirects", "/")), tuple(parse_headers(HEADERS, "_headers", "/"))
    )
    (live / nginx.SERVER_CONF).write_text(nginx.server_conf(rules))
    (live / nginx.LOCATION_CONF).write_text(nginx.location_conf(rules))
    server = RulesNginx(root / "nginx", root / "site", free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def raw_head(server: RulesNginx, target: bytes) -> bytes:
    """The response head for a request line sent byte for byte (no client-side quoting)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.0\r\nHost: example.org\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize(
    "target",
    [b"/p/%0d%0aSet-Cookie:a=b", b"/p/a%0aSet-Cookie:a=b", b"/old/%0dSet-Cookie:a=b", b"/p/%0d"],
)
def test_found_crlf_in_a_capture_cannot_split_the_nginx_response(served: RulesNginx, target: bytes) -> None:
    head = raw_head(served, target)
    assert b"set-cookie" not in head.lower()
    assert b"\r" not in head.replace(b"\r\n", b"") and b"\n" not in head.replace(b"\r\n", b"")
    assert head.startswith(b"HTTP/1.1 400")


def test_held_captures_still_redirect_and_stay_on_this_host(served: RulesNginx) -> None:
    here = f"Location: http://example.org:{served.port}/".encode()
    assert here + b"q/fr\r\n" in raw_head(served, b"/p/fr") + b"\r\n"
    # /\evil.com and //evil.com would leave the host if relative; nginx makes them absolute
    for target in (b"/old/%5Cevil.com", b"/old/%2Fevil.com", b"/old//evil.com"):
        location = next(h for h in raw_head(served, target).split(b"\r\n") if h.startswith(b"Location:"))
        assert location.startswith(here), location


def test_found_sitedeploy_serve_never_redirects_a_path_with_a_control_character() -> None:
    rules = RuleSet(tuple(parse_redirects(RULES, "_redirects", "/")))
    assert rules.resolve("/p/fr") is not None
    for path in ("/p/\r\nSet-Cookie:a=b", "/old/\rx", "/p/a\x00"):
        assert rules.resolve(path) is None


@pytest.mark.parametrize(
    ("source", "target"), [("/a\n", "/b/"), ("/a", "/b/\n"), ("/a", "https://evil.example/\n")]
)
def test_found_a_trailing_newline_does_not_pass_the_path_checks(source: str, target: str) -> None:
    with pytest.raises(RulesError):
        parse_line([source, target, "301"], "mkdocs.yml", "/")


def test_found_redirect_maps_with_a_newline_are_refused() -> None:
    config = {"plugins": [{"redirects": {"redirect_maps": {"old.md\n": "new.md"}}}]}
    with pytest.raises(RulesError):
        _from_config(config, "/", "mkdocs.yml")


@pytest.mark.parametrize(
    "line",
    [
        '/a "/b"',
        "/a /b;return",
        "/a /b}",
        "/a /{b",
        "/a /$host",
        "/a /b\\c",
        "/a //evil.example/",
        "/a /\\evil.example/",
        "/a javascript:alert(1)",
        "/a http://evil.example/",
        '/a https://evil.example/"x',
        "/a https://evil.example/</script>",
        "/a https://user@evil.example/",
        "/a /b/%zz",
        "/a /../../etc/",
        "/a/../b /c",
        "/a /b/\u2028x",
        "/a /b 200",
        "/a* /b",
        "/a/:x/* /:y",
    ],
)
def test_held_hostile_redirect_lines_are_refused(line: str) -> None:
    with pytest.raises(RulesError):
        parse_redirects(line + "\n", "_redirects", "/")


def test_held_a_unicode_line_separator_only_splits_lines_each_checked() -> None:
    with pytest.raises(RulesError):  # the half after U+2028 is not a rule
        parse_redirects('/a /b/\u2028"; return 302 x\n', "_redirects", "/")


@pytest.mark.parametrize(
    "header",
    [
        "Set-Cookie: a=b",
        "set-cookie: a=b",
        "X-Accel-Redirect: /etc/passwd",
        "x-accel-redirect: /internal/",
        "X-Accel-Buffering: no",
        "X-Sendfile: /etc/passwd",
        "Location: https://evil.example/",
        "Content-Encoding: gzip",
        "Transfer-Encoding: chunked",
        "Content-Length: 0",
        "X-A: $host",
        'X-A: a"; add_header Set-Cookie "x',
        "X-A: a\\",
        "X-A: caf\u00e9",
        "X-A: \x1b[31m",
        "X-A:",
        "X A: b",
        "X-A\r: b",
        "X-A: " + "a" * 2001,
    ],
)
def test_held_hostile_headers_are_refused(header: str) -> None:
    with pytest.raises(RulesError):
        parse_headers(f"/*\n  {header}\n", "_headers", "/")


def test_held_a_header_value_cannot_leave_its_nginx_string(served: RulesNginx) -> None:
    head = raw_head(served, b"/").decode()
    assert "\r\nX-A: a;b {c} #d 'e' `f` %s\r\n" in head + "\r\n"


def test_held_the_cloudfront_function_holds_no_raw_markup_or_line_separators() -> None:
    text = "/a/:x https://example.org/:x?y=1&z=(2)#f\n/b/* /c/:splat 302\n/d /e/ 308\n"
    code = cloudfront.function_code(RuleSet(tuple(parse_redirects(text, "_redirects", "/"))))
    assert "</" not in code and "<!--" not in code
    assert "\u2028" not in code and "\u2029" not in code and "\\u" not in code


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> io.BytesIO:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info, body in members:
            info.size = len(body) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(body) if info.isreg() else None)
    raw.seek(0)
    return raw


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


MANIFEST = b'{"files": {}}'


@pytest.mark.parametrize(
    "members",
    [
        [(_member("out/x", tarfile.SYMTYPE, "/etc/passwd"), b"")],
        [(_member("out/x", tarfile.LNKTYPE, "manifest.json"), b"")],
        [(_member("out/x", tarfile.CHRTYPE), b"")],
        [(_member("out/x", tarfile.FIFOTYPE), b"")],
        [(_member("../x"), b"a")],
        [(_member("/tmp/x"), b"a")],
        [(_member("out/../../x"), b"a")],
        [(_member("out//x"), b"a")],
        [(_member("out\\..\\x"), b"a")],
        [(_member("out/a"), b"1"), (_member("out/a"), b"2")],
        [(_member("manifest.json"), MANIFEST), (_member("manifest.json"), MANIFEST)],
        [(_member("out/a", tarfile.DIRTYPE), b""), (_member("out/a"), b"x")],
        [(_member("out/extra.html"), b"x")],  # a file the manifest does not list
        [(_member("out/big"), b"x" * 2048)],  # over the limit
    ],
)
def test_held_hostile_cache_archives_are_refused(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]]
) -> None:
    if not any(info.name == "manifest.json" for info, _ in members):
        members = [(_member("manifest.json"), MANIFEST), *members]
    dest = tmp_path / "entry"
    dest.mkdir()
    with pytest.raises(BadEntry):
        unpack(_tar(members), dest, limit=1024)
    assert not (tmp_path / "x").exists() and not Path("/tmp/x").exists()


def test_found_a_shared_cache_entry_keeps_the_sites_redirects_and_headers(tmp_path: Path) -> None:
    """``_redirects``/``_headers`` leave ``out/`` when a site is built and live on as the
    entry's ``rules.json``: a packed entry without it deployed a site fetched from the shared
    cache with no redirects and none of its security headers (CSP, X-Frame-Options)."""
    from sitedeploy.cache.packing import pack
    from sitedeploy.redirects.release import site_rules, store_site_rules
    from sitedeploy.release.manifest import files, scan

    entry = tmp_path / "entry"
    (entry / "out" / "new").mkdir(parents=True)
    (entry / "out" / "new" / "index.html").write_text("<h1>new</h1>\n")
    rules = RuleSet(
        tuple(parse_redirects("/old/ /new/\n", "_redirects", "/")),
        tuple(parse_headers("/*\n  X-Frame-Options: DENY\n", "_headers", "/")),
    )
    store_site_rules(entry, rules)
    out = entry / "out"
    (entry / "manifest.json").write_bytes(scan(out, list(files(out))).to_json())
    packed = io.BytesIO()
    pack(entry, packed)
    packed.seek(0)
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    unpack(packed, fetched, limit=1024**2)
    assert site_rules(fetched / "out") == rules


@pytest.mark.parametrize(
    ("forge", "token"), [("github", "ghp_R3SECRETVALUE\n"), ("gitlab", "glpat-R3SECRET\r")]
)
def test_found_a_token_with_a_newline_is_not_quoted_in_the_forge_error(forge: str, token: str) -> None:
    """http.client refuses a header value with CR/LF and quotes it in its ValueError: the
    message (logged, shown on the status page) carried the whole token."""
    import sitedeploy.config  # noqa: F401 - the forge settings import through the config package
    from sitedeploy.forge.client import ForgeClient, PostFailed
    from sitedeploy.forge.settings import ForgeConfig

    cfg = ForgeConfig(type=forge, repository="o/r", token_env="T", api_url=f"http://127.0.0.1:{free_port()}")  # type: ignore[arg-type]
    with pytest.raises(PostFailed) as failed:
        ForgeClient(cfg, token).set_status("a" * 40, "success", "ok", None, "sitedeploy")
    assert "SECRET" not in str(failed.value)


@pytest.mark.parametrize(
    ("line", "mount"),
    [
        ("/.well-known/sitedeploy.json https://evil.example/marker.json", "/"),
        ("/.well-known/sitedeploy.json /", "/"),
        ("/.well-known/* https://evil.example/:splat", "/"),
        ("/:a/sitedeploy.json /", "/"),
        ("/.well-known/sitedeploy/rules.json /", "/"),
    ],
)
def test_found_a_rule_cannot_take_over_the_deploy_marker(line: str, mount: str) -> None:
    """On S3 an exact 301 becomes a redirect object at the marker's key (replacing it); on
    nginx a rule answers before the file; the agent's check (urllib) follows the 301 to
    whatever the content repo names, and reads a marker of its making."""
    with pytest.raises(RulesError):
        parse_redirects(line + "\n", "_redirects", mount)


def test_held_a_site_mounted_below_the_root_keeps_its_own_well_known() -> None:
    rules = parse_redirects("/.well-known/* /new/:splat\n", "_redirects", "/docs/")
    assert rules[0].source == "/docs/.well-known/*"


def test_held_the_marker_path_the_rules_protect_is_the_one_the_build_writes() -> None:
    from sitedeploy.build.release_tree import MARKER
    from sitedeploy.redirects.rules import MARKER_PATH

    assert MARKER_PATH == "/" + MARKER
