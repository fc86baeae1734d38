"""A safe incremental ``mkdocs build``: re-render only what can differ, reuse the rest.

Run it where ``mkdocs build`` would run (the site's own environment)::

    python -m sitedeploy.builders.mkdocs_incremental --config-file mkdocs.yml \\
        --site-dir OUT --cache DIR [--full] [--strict]

It is MkDocs' own build (``mkdocs.commands.build.build``) step by step — config loading,
plugin events, theme, Jinja templates, ``_populate_page``/``_build_page`` — with two steps
able to take a cached result instead of running:

1. a page's Markdown render, if its *render key* is unchanged (its source, its own file, the
   site key) and what it read then is the same now: every path its links looked up in the
   file set finds the same file (or none), every setting of ``mkdocs.yml`` it read has the
   same value. The page object then holds exactly what a render would have set (content,
   toc, title, anchors) and the logs it emitted are replayed. So a page added, removed or
   renamed re-renders only itself and the pages whose links looked up its path, and an edit
   of ``copyright`` or ``nav:`` re-renders no page's Markdown;
2. a page's template render, if its *template key* is unchanged (its render, title, metadata,
   every setting, the file set, the navigation with all titles) plus whatever else the
   template was seen to read (the build date, where a template uses it rather than just names
   it; other pages' bodies: :mod:`.tracking`); its HTML file is then hard-linked from
   the cache and its search entries are added in its place.

A page whose template is rendered again still takes its search entries from the cache when
its render, title and URL are unchanged (parsing its HTML for them is a fifth of a full
build). Renders and search entries are chunks of one pack file (:mod:`.cache`,
:mod:`.pack`): the old one is read once at the start, the new one written as pages are
done and put in place at the end.

Static files, theme and extra templates (sitemap, 404), anchor validation and the search index
run as in a full build, from the (restored) page objects. Keys: :mod:`.keys`.

A full build is made — and said why — on ``--full``, without a usable cache (none, damaged,
or of an older format), when a site-key component changed (installed packages, theme
overrides, MkDocs, this builder), or a local module changed. A site with hooks, a plugin or
Markdown extension that is not allow-listed, or config values that are arbitrary code gets a
plain ``mkdocs build`` and no cache. The last stdout line is ``sitedeploy-build:
incremental: …`` or ``… full: <reason>``; ``DIR/last-build.json`` says the same as JSON.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mkdocs import utils
from mkdocs.commands import build as mkdocs_build
from mkdocs.config import load_config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import Abort, BuildError
from mkdocs.structure.files import File, Files, InclusionLevel, get_files, set_exclusions
from mkdocs.structure.nav import Navigation, get_navigation
from mkdocs.structure.pages import Page

from .cache import Cache, PageRecord, SearchEntries, State
from .keys import (
    COMPONENT_REASONS,
    NotIncremental,
    changed_code,
    check_supported,
    config_settings,
    digest,
    file_rows,
    local_code,
    nav_digest,
    render_id,
    render_inputs,
    render_key,
    search_key,
    site_components,
    template_inputs,
    template_key,
)
from .logs import capturing, replay
from .render_reads import ConfigReads, LinkLookups
from .tracking import rendering, watching

log = logging.getLogger("mkdocs.commands.build")
PREFIX = "sitedeploy-build: "


@dataclass(frozen=True)
class Outcome:
    mode: str  # "incremental" or "full"
    reason: str
    pages: int = 0
    rendered: int = 0
    templated: int = 0
    seconds: float = 0.0

    @property
    def summary(self) -> str:
        if self.mode == "full":
            return f"full: {self.reason}"
        return (
            f"incremental: markdown {self.rendered}/{self.pages} pages, "
            f"templates {self.templated}/{self.pages}, search index"
        )


def build_site(
    config_file: Path, site_dir: Path, cache_dir: Path, *, full: bool = False, strict: bool = False
) -> Outcome:
    """Build the site of ``config_file`` into ``site_dir``, reusing ``cache_dir`` where safe."""
    start = time.monotonic()
    config = load_config(
        config_file=str(config_file), site_dir=str(site_dir.absolute()), strict=True if strict else None
    )
    cache = Cache(cache_dir)
    config.plugins.on_startup(command="build", dirty=False)
    try:
        with cache.locked():
            outcome = _build(config, cache, full)
            outcome = replace(outcome, seconds=round(time.monotonic() - start, 3))
            cache.write_report({"summary": outcome.summary, **outcome.__dict__})
    finally:
        config.plugins.on_shutdown()
    return outcome


def _build(config: MkDocsConfig, cache: Cache, full: bool) -> Outcome:
    try:
        check_supported(config)
        site = site_components(config)
        settings = config_settings(config)
    except NotIncremental as e:
        cache.clear()  # nothing built now may be reused later
        mkdocs_build.build(config)
        return Outcome("full", str(e))
    state, reason = (None, "--full") if full else cache.load()
    if state is not None:
        reason = _stale_reason(state, site)
    cache.start(fresh=bool(reason))
    run = _Run(config, cache, site, settings, None if reason else state)
    run.build()
    if reason:
        return Outcome("full", reason, run.pages, run.rendered, run.templated)
    return Outcome("incremental", "", run.pages, run.rendered, run.templated)


def _stale_reason(state: State, site: dict[str, str]) -> str:
    for component, value in site.items():
        if state.site.get(component) != value:
            return COMPONENT_REASONS[component]
    path = changed_code(state.local_code)
    return f"local module {path} changed" if path else ""


class _Run:
    """One build, mirroring ``mkdocs.commands.build.build`` step for step."""

    def __init__(
        self,
        config: MkDocsConfig,
        cache: Cache,
        site: dict[str, str],
        settings: dict[str, str],
        old: State | None,
    ) -> None:
        self.config, self.cache, self.site, self.old = config, cache, site, old
        self.site_key, self.settings = digest(site), settings
        # Templates and search entries see every setting (nav: is keyed with the navigation);
        # a render that used more than single settings depends on all of them.
        self.config_key = digest({k: v for k, v in settings.items() if k != "nav"})
        self.all_settings = digest(settings)
        self.records: dict[str, PageRecord] = {}
        self.pages = self.rendered = self.templated = 0

    def build(self) -> None:
        counter = utils.CountHandler()
        counter.setLevel(logging.WARNING)
        if self.config.strict:
            logging.getLogger("mkdocs").addHandler(counter)
        try:
            self._steps()
            if counts := counter.get_counts():
                msg = ", ".join(f"{v} {k.lower()}s" for k, v in counts)
                raise Abort(f"Aborted with {msg} in strict mode!")
        except Exception as e:
            self.config.plugins.on_build_error(error=e)
            if isinstance(e, BuildError):
                log.error(str(e))
                raise Abort("Aborted with a BuildError!") from e
            raise
        finally:
            logging.getLogger("mkdocs").removeHandler(counter)

    def _steps(self) -> None:
        start = time.monotonic()
        config = self.config = self.config.plugins.on_config(self.config)
        config.plugins.on_pre_build(config=config)
        log.info("Cleaning site directory")
        utils.clean_directory(config.site_dir)
        log.info(f"Building documentation to directory: {config.site_dir}")
        files = get_files(config)
        env = config.theme.get_env()
        files.add_files_from_theme(env, config)
        files = config.plugins.on_files(files, config=config)
        set_exclusions(files, config)
        nav = get_navigation(files, config)
        nav = config.plugins.on_nav(nav, config=config, files=files)
        rows = file_rows(files)
        files_key = digest(list(rows.values()))
        for file in files.documentation_pages(inclusion=InclusionLevel.is_included):
            if file.page is None and file.inclusion.is_not_in_nav():  # type: ignore[no-untyped-call]
                Page(None, file, config)
            assert file.page is not None
            self._populate(file.page, files, rows, files_key)
        env = config.plugins.on_env(env, config=config, files=files)
        files.copy_static_files(dirty=False, inclusion=InclusionLevel.is_included)
        for template in config.theme.static_templates:
            mkdocs_build._build_theme_template(template, env, files, config, nav)
        for template in config.extra_templates:
            mkdocs_build._build_extra_template(template, files, config, nav)
        doc_files = files.documentation_pages(inclusion=InclusionLevel.is_included)
        self._templates(files, files_key, doc_files, nav, env)
        for file in doc_files:
            assert file.page is not None
            file.page.validate_anchor_links(files=files, log_level=config.validation.links.anchors)
        config.plugins.on_post_build(config=config)
        self.cache.save(State(self.site, local_code(), self.records))
        log.info(f"Documentation built in {time.monotonic() - start:.2f} seconds")

    # ------------------------------------------------------------------ Markdown

    def _populate(self, page: Page, files: Files, rows: dict[str, list[str]], files_key: str) -> None:
        uri = page.file.src_uri
        self.config._current_page = page
        try:
            page.read_source(self.config)
        finally:
            self.config._current_page = None
        rkey = render_key(self.site_key, page)
        self.pages += 1
        stored = self.cache.stored_render(rkey)
        if stored is not None and self._reads_alike(stored["inputs"], files, rows, files_key):
            replay(self.cache.reuse_render(rkey, stored, page, files))
            rid = render_id(rkey, stored["inputs"])
        else:
            links, config = LinkLookups(files, rows), ConfigReads(self.config)
            with capturing() as logs, _read_once(page, self.config):
                mkdocs_build._populate_page(page, config, links)  # type: ignore[arg-type]
            self.rendered += 1
            inputs = render_inputs(
                links.found,
                files_key if links.whole else None,
                {name: self.settings.get(name, "") for name in config.read},  # "": site_dir
                self.all_settings if config.whole else None,
            )
            self.cache.put_render(rkey, page, logs, inputs)
            rid = render_id(rkey, inputs)
        old = self.old.pages.get(uri) if self.old else None
        self.records[uri] = old if old is not None and old.rkey == rid else PageRecord(rid)

    def _reads_alike(
        self, inputs: dict[str, Any], files: Files, rows: dict[str, list[str]], files_key: str
    ) -> bool:
        """Whether what a stored render read (:func:`.render_inputs`) is the same now."""
        if inputs["files"] not in (None, files_key) or inputs["config"] not in (None, self.all_settings):
            return False
        if any(self.settings.get(name, "") != value for name, value in inputs["settings"]):
            return False
        for path, row in inputs["links"]:
            file = files.get_file_from_path(path)
            if (None if file is None else rows[file.src_uri]) != row:
                return False
        return True

    # ------------------------------------------------------------------ templates

    def _templates(
        self, files: Files, files_key: str, doc_files: Sequence[File], nav: Navigation, env: Any
    ) -> None:
        nav_key = digest(nav_digest(nav), self.settings.get("nav"))
        pages = [f.page for f in doc_files if f.page is not None]
        every_page = digest([[p.file.src_uri, self.records[p.file.src_uri].rkey, p.title] for p in pages])
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        search = SearchEntries(self.config)
        with watching(list(files), nav.pages):
            for page in pages:
                record = self.records[page.file.src_uri]
                base = template_inputs(self.site_key, self.config_key, files_key, nav_key, record.rkey, page)
                old = self.old.pages.get(page.file.src_uri) if self.old else None
                if old is not None and self._reusable(old, base, epoch, every_page):
                    entries = self.cache.search_entries(old.search_key)
                    if entries is not None:
                        self._reuse(page, old, record, search, entries)
                        continue
                self._render(page, record, base, (epoch, every_page), doc_files, nav, env, search)

    def _reusable(self, old: PageRecord, base: tuple[object, ...], epoch: str, every_page: str) -> bool:
        tkey = _full_key(base, old.reads_date, old.reads_others, epoch, every_page)
        return old.stored and old.tkey == tkey and (not old.html or self.cache.has_html(old.html_name))

    def _reuse(
        self, page: Page, old: PageRecord, record: PageRecord, search: SearchEntries, entries: list[Any]
    ) -> None:
        if old.html:
            self.cache.place_html(old.html_name, page.file.abs_dest_path)
        search.add(entries)
        if old.content_after is not None:  # what on_page_context left in page.content
            page.content = old.content_after
        replay(old.template_logs)
        _copy_template_fields(old, record)

    def _render(
        self,
        page: Page,
        record: PageRecord,
        base: tuple[object, ...],
        inputs: tuple[str, str],
        doc_files: Sequence[File],
        nav: Navigation,
        env: Any,
        search: SearchEntries,
    ) -> None:
        before, mark = page.content, search.mark()
        skey = search_key(record.rkey, self.config_key, page)
        cached = self.cache.search_entries(skey) if self.old is not None else None
        with rendering(page) as reads, capturing() as logs, search.reusing(cached):
            mkdocs_build._build_page(page, self.config, doc_files, nav, env)
        self.templated += 1
        record.reads_date, record.reads_others = reads.date, bool(reads.others)
        record.tkey = _full_key(base, reads.date, record.reads_others, *inputs)
        # A page showing the build date changes with every commit (SOURCE_DATE_EPOCH is the
        # last commit's time): storing it would cost two file operations per page per build
        # for a copy that a later build could use only for the very same commit. Whether the
        # template wrote a file (MkDocs skips empty output) matters only for a stored page.
        record.stored = not reads.date
        record.html = record.stored and os.path.isfile(page.file.abs_dest_path)
        if record.html and record.stored:
            self.cache.put_html(record.html_name, page.file.abs_dest_path)
        if cached is None:
            self.cache.put_search(skey, search.since(mark))
        record.search_key = skey
        record.content_after = None if page.content == before else page.content
        record.template_logs = logs


def _full_key(
    base: tuple[object, ...], reads_date: bool, reads_others: bool, epoch: str, every_page: str
) -> str:
    return template_key(base, epoch if reads_date else None, every_page if reads_others else None)


@contextmanager
def _read_once(page: Page, config: MkDocsConfig) -> Iterator[None]:
    """While MkDocs populates ``page``, its ``read_source`` does nothing: the builder read the
    source to key it, and a second read would cost time and could see a file changed since
    (a render not matching its key). Only when no plugin acts before the read (``on_pre_page``,
    none of the allow-listed ones), so the page is as the second read would leave it."""
    if config.plugins.events["pre_page"]:
        yield
        return
    page.read_source = _no_read  # type: ignore[method-assign]
    try:
        yield
    finally:
        del page.read_source


def _no_read(config: MkDocsConfig) -> None:
    return None


def _copy_template_fields(old: PageRecord, new: PageRecord) -> None:
    new.tkey, new.html, new.search_key = old.tkey, old.html, old.search_key
    new.stored = old.stored
    new.reads_date, new.reads_others = old.reads_date, old.reads_others
    new.content_after, new.template_logs = old.content_after, old.template_logs
