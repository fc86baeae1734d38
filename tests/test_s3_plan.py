"""The pure part of an S3 switch: which keys to write, how, in which order, what to keep."""

from __future__ import annotations

from sitedeploy.release.manifest import FileEntry, Manifest
from sitedeploy.targets.s3.headers import HeaderRules, ObjectHeaders, publish_group
from sitedeploy.targets.s3.live import LiveState, Stored, plan_switch

RULES = HeaderRules({}, ())


def manifest(files: dict[str, str]) -> Manifest:
    return Manifest({p: FileEntry(sha, 10, "text/html; charset=utf-8") for p, sha in files.items()})


def live(files: dict[str, str], **kw: object) -> LiveState:
    objects = {
        p: Stored(sha, f'"{sha}"', 10, RULES.headers_for(p, "text/html; charset=utf-8"))
        for p, sha in files.items()
    }
    return LiveState("r1", objects, **kw)  # type: ignore[arg-type]


def test_writes_assets_then_pages_then_indexes_and_keeps_replaced_bodies() -> None:
    state = live({"index.html": "a", "x.css": "b", "sitemap.xml": "c", "gone.html": "d"})
    switch = plan_switch(
        state, manifest({"index.html": "a2", "x.css": "b2", "sitemap.xml": "c2"}), RULES, local=True, retain=2
    )
    assert [[t.path for t in g] for g in switch.groups] == [["x.css"], ["index.html"], ["sitemap.xml"]]
    assert all(t.kind == "put" for t in switch.touches)
    assert switch.preserve == {"a": "index.html", "b": "x.css", "c": "sitemap.xml", "d": "gone.html"}
    assert switch.stale == {"gone.html": 1} and switch.deletes == []
    assert publish_group("search/search_index.json") == 2 and publish_group("a/b.png") == 0


def test_a_rollback_copies_from_an_untouched_key_or_the_object_area() -> None:
    state = live({"a.html": "s1", "b.html": "s2"})
    switch = plan_switch(
        state, manifest({"a.html": "s1", "b.html": "s1", "c.html": "s9"}), RULES, local=False, retain=2
    )
    by_path = {t.path: t for t in switch.touches}
    assert by_path["b.html"].kind == "copy" and by_path["b.html"].source == "a.html"
    assert by_path["c.html"].kind == "copy" and by_path["c.html"].source is None  # from objects/
    assert switch.preserve == {"s2": "b.html"}


def test_a_header_change_alone_is_a_meta_copy_and_stale_keys_go_after_retain_switches() -> None:
    state = live({"a.css": "s1"}, stale={"old.png": 1})
    rules = HeaderRules({"*.css": "no-cache"}, ())
    switch = plan_switch(state, manifest({"a.css": "s1"}), rules, local=True, retain=2)
    [touch] = switch.touches
    assert touch.kind == "meta" and touch.headers == ObjectHeaders("text/html; charset=utf-8", "no-cache")
    assert switch.preserve == {} and switch.deletes == ["old.png"] and switch.stale == {}


def test_keys_left_in_flux_by_a_dead_run_are_rewritten_even_if_the_record_matches() -> None:
    state = live({"a.html": "s1", "b.html": "s2"}, pending="r2", dirty={"a.html", "n.html"})
    switch = plan_switch(state, manifest({"a.html": "s1", "b.html": "s2"}), RULES, local=True, retain=2)
    assert [t.path for t in switch.touches] == ["a.html"]
    assert "n.html" in switch.stale  # written by the dead run, in no release: goes like any stale key
    round_trip = LiveState.from_json(state.to_json())
    assert round_trip == state
