"""What the template-phase tracking counts as a read of another page (:mod:`.mkdocs_tracking`),
on the real Page and File objects of a small site: a miss here would let a page be reused
whose template read something that changed."""

from __future__ import annotations

import copy
import datetime
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mkdocs.commands import build as mkdocs_build
from mkdocs.config import load_config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, get_files
from mkdocs.structure.nav import get_navigation
from mkdocs.structure.pages import Page

from sitedeploy.builders.mkdocs_incremental.keys import file_row, file_rows
from sitedeploy.builders.mkdocs_incremental.render_reads import ConfigReads, LinkLookups
from sitedeploy.builders.mkdocs_incremental.tracking import Reads, WatchedDate, rendering, watching
from tests.test_incremental_build import build_both, edit_text, make_site


class Pages:
    def __init__(self, root: Path) -> None:
        site = make_site(root, 21, pages=10)
        config = load_config(config_file=str(root / "mkdocs.yml"), site_dir=str(root / "out"))
        self.files = get_files(config)
        self.env = config.theme.get_env()
        self.nav = get_navigation(self.files, config)
        for file in self.files.documentation_pages():
            page = file.page or Page(None, file, config)
            mkdocs_build._populate_page(page, config, self.files)
        in_nav = {p for _, p in site.nav}
        docs = [f for f in self.files.documentation_pages() if f.page is not None]
        self.nav_pages = [f.page for f in docs if f.src_uri in in_nav and f.page is not None]
        self.others = [f.page for f in docs if f.src_uri not in in_nav and f.page is not None]
        self.untitled_nav_page = next(p for p in self.nav_pages if "title" not in vars(p))


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[Pages]:
    built = Pages(tmp_path / "site")
    with watching(list(built.files), built.nav.pages):
        yield built


def reads_of(page: Page, read: object) -> Reads:
    with rendering(page) as reads:
        assert callable(read)
        read()
        return reads


def test_navigation_pages_are_free_to_read(pages: Pages) -> None:
    current, nav_page = pages.others[0], pages.untitled_nav_page
    # `title` computes itself from the page's source and render: those reads are keyed with it
    reads = reads_of(current, lambda: [nav_page.title, nav_page.url, nav_page.meta, nav_page.file.url])
    assert (reads.others, reads.date) == (set(), False)


@pytest.mark.parametrize("name", ["content", "toc", "markdown", "present_anchor_ids"])
def test_a_navigation_pages_body_counts(pages: Pages, name: str) -> None:
    reads = reads_of(pages.others[0], lambda: getattr(pages.untitled_nav_page, name))
    assert reads.others == {f"page.{name}"}


@pytest.mark.parametrize("name", ["title", "url", "content"])
def test_any_read_of_a_page_outside_the_navigation_counts(pages: Pages, name: str) -> None:
    reads = reads_of(pages.others[0], lambda: getattr(pages.others[1], name))
    assert reads.others == {f"page.{name}"}


def test_reads_of_the_page_itself_are_free_but_its_date_counts(pages: Pages) -> None:
    page = pages.others[0]
    reads = reads_of(page, lambda: [page.content, page.toc, page.markdown, page.file.content_string])
    assert (reads.others, reads.date) == (set(), False)
    reads = reads_of(page, lambda: page.update_date)
    assert (reads.others, reads.date) == (set(), True)


def test_another_pages_date_counts_as_both(pages: Pages) -> None:
    reads = reads_of(pages.others[0], lambda: pages.nav_pages[0].update_date)
    assert (reads.others, reads.date) == ({"page.update_date"}, True)


def test_another_files_bytes_count_its_names_do_not(pages: Pages) -> None:
    other: File = pages.others[1].file
    assert reads_of(pages.others[0], lambda: [other.url, other.dest_uri, other.name]).others == set()
    assert reads_of(pages.others[0], lambda: other.content_bytes).others == {"file.content_bytes"}


def test_an_attribute_set_during_the_phase_is_watched(pages: Pages) -> None:
    """Code that stores something on one page while it renders (a plugin, say) and a later
    page's template that reads it: that read counts, though the name did not exist before."""
    first, second = pages.others[0], pages.others[1]
    reads_of(first, lambda: setattr(first, "summary_for_later", "computed from its content"))
    reads = reads_of(second, lambda: first.summary_for_later)  # type: ignore[attr-defined]
    assert reads.others == {"page.summary_for_later"}
    with pytest.raises(AttributeError):  # a missing attribute stays missing
        reads_of(second, lambda: pages.others[2].summary_for_later)  # type: ignore[attr-defined]


def test_writes_and_values_are_those_of_the_unwatched_page(pages: Pages) -> None:
    page, other = pages.others[0], pages.others[1]
    before = other.content
    reads_of(page, lambda: setattr(other, "content", "<p>changed</p>"))
    assert other.content == "<p>changed</p>" and vars(other)["content"] == "<p>changed</p>"
    other.content = before
    other.active = True  # a property with a setter on the base class
    assert other.active is True and vars(other)["_Page__active"] is True
    other.active = False


def test_pages_and_files_get_their_classes_back(tmp_path: Path) -> None:
    built = Pages(tmp_path / "site")
    page = built.others[0]
    shown, shown_page = [repr(f.page) for f in built.files] + [repr(f) for f in built.files], repr(page)
    with watching(list(built.files), built.nav.pages):
        assert type(page) is not Page
        # a template printing `{{ page }}` shows the same as in a full build
        assert shown == [repr(f.page) for f in built.files] + [repr(f) for f in built.files]
        with rendering(page):
            assert repr(page) == shown_page
    assert {type(f.page) for f in built.files if f.page} == {Page}
    assert {type(f) for f in built.files} == {File}


def test_pages_of_different_roles_compare_and_stay_pages(pages: Pages) -> None:
    """Page.__eq__ asks isinstance(other, type(self)); the watched classes must keep their own
    ABC caches, or a negative answer for one class would be remembered for Page itself."""
    nav_page, other = pages.nav_pages[0], pages.others[0]
    assert nav_page != other and other != nav_page
    assert isinstance(other, Page) and isinstance(nav_page, Page)
    with rendering(other):
        assert nav_page != other and other != nav_page
        assert isinstance(other, Page) and isinstance(nav_page, Page)
    assert isinstance(other.file, File)


def test_a_theme_that_prints_and_compares_pages_builds_as_mkdocs_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path / "site", 22, pages=8)
    site.override = "prints pages"
    (site.root / "overrides").mkdir()
    (site.root / "overrides" / "main.html").write_text(
        '{% extends "base.html" %}{% block content %}{{ super() }}'
        "<p>{{ page }} {{ page.next_page }} {{ page == page.next_page }} {{ page.parent }}</p>"
        "{% endblock %}\n"
    )
    site.write_config()
    build_both(site, tmp_path, 0, monkeypatch)
    edit_text(site)
    assert build_both(site, tmp_path, 1, monkeypatch).mode == "incremental"


# ---------------------------------------------------------------------------- the build date

DATE = datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)
USES: dict[str, Callable[[datetime.datetime], object]] = {
    "str": str,
    "repr": repr,
    "format": lambda d: f"{d:%Y-%m-%d}",
    "percent": lambda d: "%s" % d,  # noqa: UP031 (the old formatting path: str())
    "attribute": lambda d: d.year,
    "method": lambda d: d.strftime("%c"),
    "class": lambda d: d.__class__,
    "hash": hash,
    "compare": lambda d: d < DATE + datetime.timedelta(days=1),
    "reflected compare": lambda d: DATE > d,  # noqa: SIM300 (the plain value on the left)
    "add": lambda d: d + datetime.timedelta(days=1),
    "reflected add": lambda d: datetime.timedelta(days=1) + d,
    "subtract": lambda d: d - DATE,
    "reflected subtract": lambda d: DATE - d,
    "replace": lambda d: d.replace(year=2000),
    "pickle": lambda d: pickle.loads(pickle.dumps(d)),
    "deepcopy": copy.deepcopy,
}


@pytest.mark.parametrize("use", sorted(USES))
def test_every_use_of_the_build_date_counts_and_answers_as_a_datetime(pages: Pages, use: str) -> None:
    """The watched date gives exactly what the plain value gives (value and type), and any
    use of it marks the template as depending on the build date."""
    watched = WatchedDate.of(DATE)
    reads = reads_of(pages.others[0], lambda: USES[use](watched))
    assert reads.date
    with rendering(pages.others[0]):
        got = USES[use](watched)
    assert got == USES[use](DATE) and type(got) is type(USES[use](DATE))


def test_a_date_in_a_branch_not_taken_is_not_read(pages: Pages) -> None:
    """Jinja looks up every name a template mentions when it starts; only a use counts (the
    `mkdocs` theme shows the build date on the home page alone)."""
    template = pages.env.from_string("{% if page.is_homepage %}{{ build_date_utc }}{% endif %}x")
    watched = WatchedDate.of(DATE)
    page = pages.others[0]
    reads = reads_of(page, lambda: template.render(page=page, build_date_utc=watched))
    assert not reads.date
    home = next(p for p in pages.nav_pages if p.is_homepage)
    reads = reads_of(home, lambda: template.render(page=home, build_date_utc=watched))
    assert reads.date
    with rendering(home):
        assert template.render(page=home, build_date_utc=watched) == f"{DATE}x"


# ---------------------------------------------------------------------------- link lookups


def test_link_lookups_note_each_path_and_what_it_found(tmp_path: Path) -> None:
    built = Pages(tmp_path / "site")
    lookups = LinkLookups(built.files, file_rows(built.files))
    found = lookups.get_file_from_path("index.md")
    assert found is built.files.get_file_from_path("index.md") and found is not None
    assert lookups.get_file_from_path("part-9/nowhere.md") is None
    assert lookups.found == {"index.md": file_row(found), "part-9/nowhere.md": None}
    assert not lookups.whole


@pytest.mark.parametrize(
    "use",
    [
        lambda files: list(files),
        lambda files: len(files),
        lambda files: "index.md" in files,
        lambda files: files.documentation_pages(),
        lambda files: files.src_uris,
    ],
)
def test_any_other_use_of_the_file_set_makes_the_render_depend_on_all_of_it(
    tmp_path: Path, use: Callable[[object], object]
) -> None:
    built = Pages(tmp_path / "site")
    lookups = LinkLookups(built.files, file_rows(built.files))
    assert use(lookups) == use(built.files)
    assert lookups.whole


# ---------------------------------------------------------------------------- settings read


def _config(tmp_path: Path) -> MkDocsConfig:
    make_site(tmp_path / "site", 22, pages=3)
    return load_config(config_file=str(tmp_path / "site" / "mkdocs.yml"), site_dir=str(tmp_path / "out"))


def test_config_reads_note_each_setting_read(tmp_path: Path) -> None:
    config = _config(tmp_path)
    reads = ConfigReads(config)
    assert reads["markdown_extensions"] == config["markdown_extensions"]
    assert reads.use_directory_urls is config.use_directory_urls
    assert reads.validation.links.not_found == config.validation.links.not_found
    assert reads.get("mdx_configs") == config["mdx_configs"]
    reads._current_page = "page"  # type: ignore[assignment]  # as _populate_page sets it
    assert config._current_page == "page"
    assert reads.read == {"markdown_extensions", "use_directory_urls", "validation", "mdx_configs"}
    assert not reads.whole


@pytest.mark.parametrize(
    "use",
    [
        lambda config: list(config),
        lambda config: len(config),
        lambda config: config.items(),
        lambda config: config._current_page,
        lambda config: "no_such_setting" in config,
    ],
)
def test_any_other_use_of_the_config_makes_the_render_depend_on_all_of_it(
    tmp_path: Path, use: Callable[[object], object]
) -> None:
    config = _config(tmp_path)
    reads = ConfigReads(config)
    assert use(reads) == use(config)
    assert reads.whole
