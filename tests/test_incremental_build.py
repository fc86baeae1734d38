"""Differential tests of the incremental MkDocs builder: after every edit of a random sequence,
its output must equal a fresh ``mkdocs build`` of the same tree, byte for byte, and it must
have taken the path (incremental or full) that the edit allows.

Both builds run MkDocs for real, in this process (a subprocess per build would make the 30+
steps take minutes); one test runs the command line as sitedeploy's build stage will.
"""

from __future__ import annotations

import json
import os
import posixpath
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mkdocs.commands.build import build as mkdocs_build
from mkdocs.config import load_config

from sitedeploy.builders.mkdocs_incremental.builder import Outcome, build_site

WORDS = ["river", "stone", "cloud", "maple", "copper", "lantern", "orbit", "meadow", "signal", "harbor"]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")  # bytes are enough

OVERRIDES = {
    "footer": '{% extends "base.html" %}\n'
    "{% block footer %}<p>Footer for {{ page.title }}</p>{% endblock %}\n",
    # Reads every page's title, also of pages outside the nav: a title edit changes every page.
    "all-titles": '{% extends "base.html" %}\n{% block content %}{{ super() }}<ul>'
    "{% for f in pages %}<li>{{ f.page.title }}</li>{% endfor %}</ul>{% endblock %}\n",
    # Reads the next page's body: an edit of that page changes this one.
    "next-body": '{% extends "base.html" %}\n{% block content %}{{ super() }}'
    "{% if page.next_page %}<p>{{ page.next_page.content|length }}</p>{% endif %}{% endblock %}\n",
}
HOOK = (
    "from pathlib import Path\n\n"
    "def on_page_markdown(markdown, page, config, files):\n"
    "    other = Path(config.docs_dir) / 'index.md'\n"
    "    return markdown + '\\n\\nIndex has %d bytes.\\n' % len(other.read_bytes())\n"
)


@dataclass
class Site:
    """A generated MkDocs site and the model its mkdocs.yml is written from."""

    root: Path
    rng: random.Random
    nav: list[tuple[str | None, str]] = field(default_factory=list)
    site_name: str = "Differential"
    override: str | None = None
    hook: bool = False
    theme: str = "mkdocs"
    extensions: tuple[str, ...] = ("toc", "tables", "fenced_code", "admonition")
    plugins: tuple[str, ...] = ("search",)
    epoch: int = 1_700_000_000
    future: list[str] = field(default_factory=list)  # pages linked to before they exist
    permalink: bool = True
    directory_urls: bool = True
    copyright: str = ""

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    def pages(self) -> list[str]:
        return sorted(p.relative_to(self.docs).as_posix() for p in self.docs.rglob("*.md"))

    def write_config(self) -> None:
        lines = [f"site_name: {self.site_name}", "site_url: https://docs.example.invalid/"]
        lines += [f"use_directory_urls: {str(self.directory_urls).lower()}"]
        lines += [f"copyright: {self.copyright}"] if self.copyright else []
        lines += ["theme:", f"  name: {self.theme}"]
        if self.override:
            lines.append("  custom_dir: overrides")
        lines.append("nav:")
        lines += [f"  - {t}: {p}" if t else f"  - {p}" for t, p in self.nav]
        lines += ["plugins:"] + [f"  - {p}" for p in self.plugins] + ["markdown_extensions:"]
        toc = f"  - toc:\n      permalink: {str(self.permalink).lower()}"
        lines += [(toc if e == "toc" else f"  - {e}") for e in self.extensions]
        lines += ["validation:", "  omitted_files: ignore", "  anchors: warn"]
        if self.hook:
            lines += ["hooks:", "  - hooks.py"]
        (self.root / "mkdocs.yml").write_text("\n".join(lines) + "\n")

    def write_page(self, path: str, title: str) -> None:
        rng, here = self.rng, posixpath.dirname(path)
        others = self.pages() or ["index.md"]
        body = [f"# {title}", "", _sentence(rng), ""]
        for n in range(rng.randint(1, 3)):
            target = rng.choice(others)
            link = posixpath.relpath(target, here or ".")
            body += [
                f"## {rng.choice(WORDS).title()} part {n}",
                "",
                _sentence(rng),
                f"See [{target}]({link}).",
                "",
            ]
        if rng.random() < 0.3:
            body += [f"![picture]({posixpath.relpath('img/pic-0.png', here or '.')})", ""]
        if rng.random() < 0.3:
            body += ["| a | b |", "|---|---|", f"| {rng.randint(0, 99)} | {rng.choice(WORDS)} |", ""]
        page = self.docs / path
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("\n".join(body))


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "."


def make_site(root: Path, seed: int, pages: int = 40, **settings: object) -> Site:
    site = Site(root, random.Random(seed), **settings)  # type: ignore[arg-type]
    (site.docs / "img").mkdir(parents=True)
    (site.docs / "img" / "pic-0.png").write_bytes(PNG + b"0")
    site.write_page("index.md", "Home page")
    for i in range(1, pages):
        site.write_page(f"part-{i % 4}/{'deep/' if i % 7 == 0 else ''}page-{i:02d}.md", f"Page {i}")
    nav_pages = ["index.md", *site.rng.sample(site.pages()[1:], min(8, pages // 2))]
    site.nav = [(f"Nav {i}" if i % 2 else None, p) for i, p in enumerate(nav_pages)]
    site.write_config()
    return site


# ---------------------------------------------------------------------------- edits


def _pick(site: Site) -> Path:
    return site.docs / site.rng.choice(site.pages())


def edit_text(site: Site) -> str:
    page = _pick(site)
    page.write_text(page.read_text() + f"\n{_sentence(site.rng)}\n")
    return "incremental"


def edit_title(site: Site) -> str:
    page = _pick(site)
    lines = page.read_text().split("\n")
    lines[0] = f"# {_sentence(site.rng)[:-1]}"
    page.write_text("\n".join(lines))
    return "incremental"


def edit_front_matter_title(site: Site) -> str:
    page = _pick(site)
    text = page.read_text().split("---\n", 2)[-1]
    page.write_text(f"---\ntitle: {site.rng.choice(WORDS)} meta\n---\n{text}")
    return "incremental"


def edit_heading(site: Site) -> str:
    page = _pick(site)
    text = page.read_text()
    if "## " in text:
        text = text.replace("## ", f"## {site.rng.choice(WORDS)} ", 1)
    page.write_text(text)
    return "incremental"


def edit_link(site: Site) -> str:
    page = _pick(site)
    here = posixpath.dirname(page.relative_to(site.docs).as_posix())
    target = site.rng.choice(site.pages())
    anchor = site.rng.choice(["", "#river-part-0", "#missing-anchor"])
    link = posixpath.relpath(target, here or ".") + anchor
    page.write_text(page.read_text() + f"\nAlso [this]({link}).\n")
    return "incremental"


def link_to_future_page(site: Site) -> str:
    """A link to a page that does not exist yet (a warning now, a link once it is added), in
    the forms MkDocs resolves differently: a source path, a folder, an extensionless path."""
    page = _pick(site)
    here = posixpath.dirname(page.relative_to(site.docs).as_posix())
    future = f"part-{site.rng.randint(0, 3)}/future-{site.rng.randint(0, 99)}.md"
    site.future.append(future)
    link = posixpath.relpath(future, here or ".")
    link = site.rng.choice([link, link[: -len(".md")], link[: -len(".md")] + "/"])
    page.write_text(page.read_text() + f"\nSoon [there]({link}).\n")
    return "incremental"


def edit_image(site: Site) -> str:
    (site.docs / "img" / "pic-0.png").write_bytes(PNG + os.urandom(8))
    return "incremental"  # same file set: pages render the same, the new bytes are copied


def add_image(site: Site) -> str:
    (site.docs / "img" / f"pic-{site.rng.randint(1, 999)}.png").write_bytes(PNG)
    return "incremental"


def add_page(site: Site) -> str:
    path = f"part-{site.rng.randint(0, 3)}/new-{site.rng.randint(0, 9999)}.md"
    if site.future and site.rng.random() < 0.7:  # one that other pages already link to
        path = site.future.pop(site.rng.randrange(len(site.future)))
    site.write_page(path, "A new page")
    if site.rng.random() < 0.5:  # nav: in mkdocs.yml is an input of the templates only
        site.nav.append((None, path))
        site.write_config()
    return "incremental"  # the pages whose links looked up its path render again


def remove_page(site: Site) -> str:
    path = site.rng.choice(site.pages()[1:])
    (site.docs / path).unlink()
    site.nav = [(t, p) for t, p in site.nav if p != path]
    site.write_config()
    return "incremental"


def rename_page(site: Site) -> str:
    path = site.rng.choice(site.pages()[1:])
    new = posixpath.join(posixpath.dirname(path), f"renamed-{site.rng.randint(0, 9999)}.md")
    (site.docs / path).rename(site.docs / new)
    site.nav = [(t, new if p == path else p) for t, p in site.nav]
    site.write_config()
    return "incremental"


def reorder_nav(site: Site) -> str:
    site.rng.shuffle(site.nav)
    site.write_config()
    return "incremental"


def retitle_in_nav(site: Site) -> str:
    n = site.rng.randrange(len(site.nav))
    site.nav[n] = (f"Nav {site.rng.choice(WORDS)}", site.nav[n][1])
    site.write_config()
    return "incremental"


def edit_config(site: Site) -> str:
    """Settings that only templates show: no page's Markdown is rendered again."""
    if site.rng.random() < 0.5:
        site.site_name = f"Docs {site.rng.randint(0, 999)}"
    else:
        site.copyright = f"Copyright {site.rng.randint(1990, 2030)}"
    site.write_config()
    return "incremental"


def edit_render_config(site: Site) -> str:
    """Settings that page renders read: every page's Markdown is rendered again."""
    if site.rng.random() < 0.5:
        site.permalink = not site.permalink  # mdx_configs
    else:
        site.directory_urls = not site.directory_urls  # every link and URL
    site.write_config()
    return "incremental"


def edit_override(site: Site) -> str:
    before, site.override = site.override, site.rng.choice(sorted(OVERRIDES))
    (site.root / "overrides").mkdir(exist_ok=True)
    (site.root / "overrides" / "main.html").write_text(OVERRIDES[site.override])
    site.write_config()
    return "full" if site.override != before else "incremental"


def toggle_hook(site: Site) -> str:
    site.hook = not site.hook
    (site.root / "hooks.py").write_text(HOOK)
    site.write_config()
    return "full"


def no_change(site: Site) -> str:
    return "incremental"


def new_commit(site: Site) -> str:
    site.epoch += 3600
    return "incremental"


EDITS: list[Callable[[Site], str]] = [
    edit_text,
    edit_text,
    edit_title,
    edit_front_matter_title,
    edit_heading,
    edit_link,
    link_to_future_page,
    link_to_future_page,
    edit_image,
    add_image,
    add_page,
    add_page,
    remove_page,
    rename_page,
    reorder_nav,
    retitle_in_nav,
    edit_config,
    edit_render_config,
    edit_override,
    toggle_hook,
    no_change,
    new_commit,
]


# ---------------------------------------------------------------------------- builds


def plain_build(site: Site, out: Path) -> None:
    """What ``mkdocs build`` does (``mkdocs.__main__.build_command``)."""
    config = load_config(config_file=str(site.root / "mkdocs.yml"), site_dir=str(out))
    config.plugins.on_startup(command="build", dirty=False)
    try:
        mkdocs_build(config)
    finally:
        config.plugins.on_shutdown()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_tree(expected: Path, actual: Path, step: str) -> None:
    want, got = tree(expected), tree(actual)
    assert sorted(want) == sorted(got), f"{step}: file lists differ"
    differing = [name for name in want if want[name] != got[name]]
    assert not differing, f"{step}: {len(differing)} files differ, e.g. {differing[:5]}"


def build_both(site: Site, tmp: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(site.epoch))
    outcome = build_site(site.root / "mkdocs.yml", tmp / f"inc-{n}", tmp / "cache")
    plain_build(site, tmp / f"ref-{n}")
    assert_same_tree(tmp / f"ref-{n}", tmp / f"inc-{n}", f"step {n}")
    return outcome


def run_sequence(site: Site, tmp: Path, steps: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    assert build_both(site, tmp, 0, monkeypatch).mode == "full"
    log = []
    for n in range(1, steps + 1):
        # A hook site is never cached: one build with the hook, then it goes again, so the
        # sequence keeps testing the cache.
        edit = toggle_hook if site.hook else site.rng.choice(EDITS)
        expected = edit(site)
        outcome = build_both(site, tmp, n, monkeypatch)
        log.append(f"{edit.__name__}: {outcome.summary}")
        if site.hook or edit is toggle_hook:
            expected = "full"  # a hook site is never cached; the build after one has no cache
        assert outcome.mode == expected, "\n".join(log)
    return log


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", [1, 2])
def test_random_edits_match_a_full_build_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    site = make_site(tmp_path / "site", seed)
    run_sequence(site, tmp_path, 40, monkeypatch)
    if site.hook:
        toggle_hook(site)
        build_both(site, tmp_path, 100, monkeypatch)
    edit_text(site)
    outcome = build_both(site, tmp_path, 101, monkeypatch)
    assert (outcome.mode, outcome.rendered) == ("incremental", 1), outcome.summary


def test_adding_a_page_re_renders_only_the_pages_that_link_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path / "site", 11, pages=30)
    linkers = site.pages()[3:6]
    for n, page in enumerate(linkers):  # a source path, an extensionless path, a folder
        link = posixpath.relpath("part-2/coming.md", posixpath.dirname(page) or ".")
        link = [link, link[: -len(".md")], link[: -len(".md")] + "/"][n]
        (site.docs / page).write_text((site.docs / page).read_text() + f"\n[Coming]({link})\n")
    build_both(site, tmp_path, 0, monkeypatch)
    site.write_page("part-2/coming.md", "Coming")
    outcome = build_both(site, tmp_path, 1, monkeypatch)  # not in the nav: mkdocs.yml unchanged
    assert (outcome.mode, outcome.rendered) == ("incremental", 1 + len(linkers)), outcome.summary
    (site.docs / "part-2" / "coming.md").unlink()
    outcome = build_both(site, tmp_path, 2, monkeypatch)
    assert (outcome.mode, outcome.rendered) == ("incremental", len(linkers)), outcome.summary


def test_template_that_reads_other_pages_is_rendered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path / "site", 7)
    for n, variant in enumerate(["all-titles", "next-body"]):
        site.override = variant
        (site.root / "overrides").mkdir(exist_ok=True)
        (site.root / "overrides" / "main.html").write_text(OVERRIDES[variant])
        site.write_config()
        build_both(site, tmp_path / variant, 0, monkeypatch)
        for step in range(1, 4):
            # Edit a page outside the nav: only templates that read it can change.
            outside = [p for p in site.pages() if p not in {q for _, q in site.nav}]
            page = site.docs / outside[(n + step) % len(outside)]
            page.write_text(f"# Changed {step}\n\n{_sentence(site.rng)} {step}\n")
            outcome = build_both(site, tmp_path / variant, step, monkeypatch)
            assert outcome.mode == "incremental" and outcome.rendered == 1, outcome.summary


def test_hook_site_always_builds_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(tmp_path / "site", 3, hook=True)
    (site.root / "hooks.py").write_text(HOOK)
    site.write_config()
    for n in range(3):
        edit_text(site)  # index.md feeds every page through the hook
        outcome = build_both(site, tmp_path, n, monkeypatch)
        assert outcome.summary.startswith("full: hooks in mkdocs.yml"), outcome.summary
    assert not (tmp_path / "cache" / "state.json").exists()


def test_material_with_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extensions = ("toc", "tables", "admonition", "pymdownx.superfences", "pymdownx.details", "attr_list")
    site = make_site(tmp_path / "site", 5, pages=12, theme="material", extensions=extensions)
    log = run_sequence(site, tmp_path, 5, monkeypatch)
    site.override, site.hook = None, False  # the test overrides read other pages on purpose
    site.write_config()
    build_both(site, tmp_path, 98, monkeypatch)
    edit_text(site)
    outcome = build_both(site, tmp_path, 99, monkeypatch)
    # Material's templates do not show the build date: a text edit changes that page's HTML
    # (and pages whose navigation shows its title, when it is a nav page), not all of them.
    assert (outcome.rendered, outcome.mode) == (1, "incremental"), log
    assert outcome.templated < outcome.pages / 2, outcome.summary


def test_unknown_plugin_builds_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(tmp_path / "site", 4, pages=10, theme="material", plugins=("search", "material/tags"))
    for n in range(2):
        outcome = build_both(site, tmp_path, n, monkeypatch)
        assert (
            outcome.summary == "full: plugin 'material/tags' is not known to be safe to build incrementally"
        )


def test_command_line_reports_the_path_taken(tmp_path: Path) -> None:
    site = make_site(tmp_path / "site", 6, pages=12)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}

    def run(*extra: str) -> str:
        cmd = [sys.executable, "-m", "sitedeploy.builders.mkdocs_incremental", "--config-file", "mkdocs.yml"]
        cmd += ["--site-dir", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), *extra]
        proc = subprocess.run(cmd, cwd=site.root, env=env, capture_output=True, text=True, check=True)
        return proc.stdout.strip().splitlines()[-1]

    assert run() == "sitedeploy-build: full: no previous build in the cache"
    edit_text(site)
    assert run().startswith("sitedeploy-build: incremental: markdown 1/12 pages")
    assert run("--full") == "sitedeploy-build: full: --full"
    report = json.loads((tmp_path / "cache" / "last-build.json").read_text())
    assert (report["mode"], report["reason"], report["pages"]) == ("full", "--full", 12)


def test_warnings_of_reused_pages_are_logged_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A reused page logs what its render logged, so `strict: true` counts the same warnings."""
    site = make_site(tmp_path / "site", 8, pages=10)
    (site.docs / "index.md").write_text("# Home\n\n[broken](no-such-page.md)\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    build_site(site.root / "mkdocs.yml", tmp_path / "a", tmp_path / "cache")
    other = site.docs / site.pages()[3]
    other.write_text(other.read_text() + "\nmore\n")
    caplog.clear()
    outcome = build_site(site.root / "mkdocs.yml", tmp_path / "b", tmp_path / "cache")
    assert outcome.rendered == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("no-such-page.md" in w and "index.md" in w for w in warnings), warnings


@pytest.mark.parametrize(
    ("extension", "reason"),
    [
        (
            "pymdownx.snippets",
            "full: markdown extension 'pymdownx.snippets' is not known to read only its page",
        ),
        (
            "toc:\n      slugify: !!python/name:posixpath.join",
            "full: config value 'mdx_configs.toc.slugify' refers to code 'posixpath.join'",
        ),
    ],
)
def test_unkeyable_markdown_builds_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extension: str, reason: str
) -> None:
    site = make_site(tmp_path / "site", 9, pages=6, extensions=("tables", extension))
    for n in range(2):
        outcome = build_both(site, tmp_path, n, monkeypatch)
        assert outcome.summary.startswith(reason), outcome.summary
