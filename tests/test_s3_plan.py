"""The pure part of an S3 switch: which keys to write, how, in which order, what to keep."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sitedeploy.release.manifest import FileEntry, Manifest
from sitedeploy.targets.s3.bodies import Listed, expired, live_homes, settle, unneeded
from sitedeploy.targets.s3.headers import HeaderRules, ObjectHeaders, publish_group
from sitedeploy.targets.s3.live import Home, LiveState, Stored, plan_switch

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


def test_keys_whose_time_is_up_stay_recorded_until_a_later_switch_has_deleted_them() -> None:
    """A commit keeps its deletes at 0 (a run stopped before deleting leaves keys the state
    owns, not drift); the next switch deletes those again before its commit (``confirm``)."""
    state = live({"a.css": "s1"}, stale={"old.png": 1, "gone.png": 0, "back.html": 0, "dead.js": 0})
    state.dirty = {"dead.js"}  # a dead run wrote it again: it waits its turn like any left key
    switch = plan_switch(state, manifest({"a.css": "s1", "back.html": "s2"}), RULES, local=True, retain=2)
    assert switch.deletes == ["old.png"] and switch.confirm == ["gone.png"]
    assert switch.stale == {"dead.js": 1}  # back.html is live again: neither deleted nor stale
    assert switch.recorded_stale(["gone.png"]) == {"dead.js": 1, "old.png": 0, "gone.png": 0}
    assert switch.recorded_stale([]) == {"dead.js": 1, "old.png": 0}


def test_keys_left_in_flux_by_a_dead_run_are_rewritten_even_if_the_record_matches() -> None:
    state = live({"a.html": "s1", "b.html": "s2"}, pending="r2", dirty={"a.html", "n.html"})
    switch = plan_switch(state, manifest({"a.html": "s1", "b.html": "s2"}), RULES, local=True, retain=2)
    assert [t.path for t in switch.touches] == ["a.html"]
    assert "n.html" in switch.stale  # written by the dead run, in no release: goes like any stale key
    round_trip = LiveState.from_json(state.to_json())
    assert round_trip == state


# --- a versioned bucket: replaced bodies stay as versions (targets/s3/bodies.py) ---------------


def versioned(files: dict[str, str], **kw: object) -> LiveState:
    state = live(files, **kw)
    state.objects = {p: dataclasses.replace(s, version_id=f"v-{p}") for p, s in state.objects.items()}
    return state


def test_replaced_bodies_stay_as_versions_even_at_keys_a_dead_run_may_have_rewritten() -> None:
    state = versioned(
        {"a.html": "s1", "b.html": "s2", "gone.html": "s3", "same.html": "s4"}, dirty={"b.html"}
    )
    state.objects["old.html"] = Stored(
        "s5", '"s5"', 10, RULES.headers_for("x.html", "text/html")
    )  # no version
    wanted = manifest({"a.html": "s9", "b.html": "s8", "same.html": "s4", "c.html": "s4"})
    switch = plan_switch(state, wanted, RULES, local=True, retain=2)
    # a dead run may have written b.html, but the version recorded for it still holds s2
    assert switch.homes == {
        "s1": ("a.html", "v-a.html"),
        "s2": ("b.html", "v-b.html"),
        "s3": ("gone.html", "v-gone.html"),
    }
    assert switch.preserve == {"s5": "old.html"}  # written before the bucket kept versions: copied


def test_a_rollback_copies_from_a_live_key_then_a_version_then_the_object_area() -> None:
    state = versioned({"a.html": "s1"})
    state.homes = {"s2": Home("b.html", "vb", "r1")}
    switch = plan_switch(
        state,
        manifest({"a.html": "s1", "b.html": "s2", "c.html": "s3", "d.html": "s1"}),
        RULES,
        local=False,
        retain=2,
    )
    by_path = {t.path: t for t in switch.touches}
    assert (by_path["d.html"].source, by_path["d.html"].version) == ("a.html", None)
    assert (by_path["b.html"].source, by_path["b.html"].version) == ("b.html", "vb")
    assert (by_path["c.html"].source, by_path["c.html"].version) == (None, None)


def test_settle_keeps_one_version_per_body_and_never_deletes_what_readers_get() -> None:
    state = versioned({"a.html": "s1", "b.html": "s2", "c.css": "s3"}, stale={"old.html": 2, "went.html": 1})
    state.homes = {
        "s1": Home("x.html", "vx", "r1"),
        "s7": Home("old.html", "v-old", "r1"),
        "s6": Home("went.html", "v-went", "r1"),
    }
    wanted = manifest({"a.html": "s8", "b.html": "s9", "c.css": "s3"})
    switch = plan_switch(state, wanted, RULES, local=True, retain=2)
    switch.homes["s7"] = ("y.html", "vy")  # s7 and s6 left other keys too: newer versions keep them
    switch.homes["s6"] = ("z.html", "vz")
    objects = {"a.html": Stored("s8", "e", 1, RULES.headers_for("a.html", "t"), "new-a"), **switch.keep}
    homes, leftovers = settle(state, switch, objects, {"r1", "r2"})
    assert homes == {
        "s1": Home("a.html", "v-a.html", "r2"),  # the newest version, held until r2 is pruned
        "s2": Home("b.html", "v-b.html", "r2"),
        "s7": Home("y.html", "vy", "r2"),
        "s6": Home("z.html", "vz", "r2"),
    }
    # x.html's older copy of s1 goes; old.html is still served (stale), went.html is deleted by
    # this switch: their versions stay until a sweep finds them behind a delete marker
    assert switch.deletes == ["went.html"]
    assert leftovers == [("x.html", "vx")]
    assert not expired(homes["s1"], ["r2", "r3"]) and expired(homes["s1"], ["r3"])
    assert live_homes(homes, ["r3"]) == {}


def test_round_trip_of_the_state_and_states_written_before_versions_still_load() -> None:
    state = versioned({"a.html": "s1"})
    state.homes, state.switches = {"s2": Home("b.html", "vb", "r1")}, 7
    assert LiveState.from_json(state.to_json()) == state
    old = (
        b'{"version":1,"release":"r1","headers":[["text/html","x",null]],'
        b'"objects":{"a.html":["s1","e",3,0]},"stale":{}}'
    )
    loaded = LiveState.from_json(old)
    assert loaded.objects["a.html"].version_id is None and loaded.homes == {} and loaded.switches == 0


def listed(key: str, version: str, *, latest: bool = False, marker: bool = False, age: int = 0) -> Listed:
    return Listed(key, version, latest, marker, datetime(2026, 1, 1, tzinfo=UTC) - timedelta(minutes=age))


def test_a_sweep_deletes_old_versions_but_homes_and_never_uncovers_a_deleted_key() -> None:
    entries = [
        listed("p/a.html", "a3", latest=True),
        listed("p/a.html", "a2", age=1),  # a home
        listed("p/a.html", "a1", age=2),
        listed("p/gone.html", "m1", latest=True, marker=True),
        listed("p/gone.html", "g1", age=1),  # a home: the marker in front of it stays
        listed("p/went.html", "m2", latest=True, marker=True),
        listed("p/went.html", "w1", age=1),
        listed("p/went.html", "m0", marker=True, age=2),
        *(listed("p/.sitedeploy/live.json", f"s{i}", latest=i == 0, age=i) for i in range(9)),
        listed("p/.sitedeploy/lock.json", "l1", latest=True, marker=True),
        listed("p/2.0/.sitedeploy/live.json", "n1", latest=True),  # another target's folder
        listed("p/2.0/index.html", "n2", age=3),
        listed("p/1.0/.sitedeploy/live.json", "r2", latest=True, marker=True),  # a removed line
        listed("p/1.0/.sitedeploy/live.json", "r1", age=3),
    ]
    doomed = unneeded(entries, {("p/a.html", "a2"), ("p/gone.html", "g1")}, "p/")
    assert sorted(doomed) == sorted(
        [
            ("p/a.html", "a1"),
            ("p/went.html", "w1"),
            ("p/went.html", "m0"),
            ("p/went.html", "m2"),  # nothing left behind it
            ("p/.sitedeploy/live.json", "s6"),  # the newest five old states stay
            ("p/.sitedeploy/live.json", "s7"),
            ("p/.sitedeploy/live.json", "s8"),
            ("p/.sitedeploy/lock.json", "l1"),
            ("p/1.0/.sitedeploy/live.json", "r1"),
            ("p/1.0/.sitedeploy/live.json", "r2"),
        ]
    )
