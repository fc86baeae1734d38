"""A webhook request is accepted once: deliveries are remembered and generic ones carry a signed
timestamp (issue 11, item 6). No request — random headers, bodies, signatures, methods — breaks
the handler, gets a 5xx, or wakes the agent without a valid signature (issue 12, item 5)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitedeploy.agent import webhook as webhook_mod
from sitedeploy.agent.webhook import ReplayGuard, authentic, judge
from tests.security.webhook_helpers import SECRET, SECRET_ENV, generic, github, post, webhook

GITLAB = {"X-Gitlab-Token": SECRET}


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def test_a_github_delivery_is_accepted_once() -> None:
    a, b = b'{"after": "aaaa"}', b'{"after": "bbbb"}'
    with webhook() as hook:
        assert post(hook.port, a, github(a, "d-1")) == 202
        assert post(hook.port, a, github(a, "d-1")) == 409  # the very same request again
        assert post(hook.port, a, github(a, "d-2")) == 409  # same signed body, a new (unsigned) id
        assert post(hook.port, b, github(b, "d-1")) == 409  # a used id on another body
        assert post(hook.port, b, github(b)) == 202  # no id: the signed body alone counts
        assert post(hook.port, b, github(b)) == 409
    assert hook.pushes == ["webhook:github"] * 2
    assert [e["status"] for e in hook.events("webhook-refused")] == [409] * 4


def test_a_gitlab_event_is_accepted_once() -> None:
    a, b, c = b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'
    with webhook() as hook:
        assert post(hook.port, a, {**GITLAB, "X-Gitlab-Event-UUID": "u-1"}) == 202
        assert post(hook.port, b, {**GITLAB, "X-Gitlab-Event-UUID": "u-1"}) == 409
        assert post(hook.port, b, {**GITLAB, "Idempotency-Key": "k-1"}) == 202
        assert post(hook.port, c, {**GITLAB, "Idempotency-Key": "k-1"}) == 409  # GitLab's retry
        assert post(hook.port, a, GITLAB) == 409  # the body of an accepted event
        assert post(hook.port, c, {**GITLAB, "X-Gitlab-Event-UUID": "u-2"}) == 202
    assert hook.pushes == ["webhook:gitlab"] * 3


def test_a_generic_request_needs_a_fresh_signed_timestamp_and_is_accepted_once() -> None:
    body, now = b'{"ref": "refs/heads/main"}', time.time()
    with webhook() as hook:
        fresh = generic(body, delivery="g-1")
        assert post(hook.port, body, fresh) == 202
        assert post(hook.port, body, fresh) == 409
        assert post(hook.port, body, {**fresh, "X-Sitedeploy-Delivery": "g-2"}) == 409  # same signature
        assert post(hook.port, body, generic(body, ts=now - 7, delivery="g-1")) == 409  # used id
        assert post(hook.port, body, generic(body, ts=now - 7, delivery="g-3")) == 202

        moved = {**generic(body, ts=now - 20), "X-Sitedeploy-Timestamp": str(int(now) - 21)}
        assert post(hook.port, body, moved) == 401  # the timestamp is signed with the body
        assert post(hook.port, body, generic(body, ts=now - webhook_mod.WINDOW - 10)) == 401
        assert post(hook.port, body, generic(body, ts=now + webhook_mod.WINDOW + 10)) == 401
        unstamped = {"X-Sitedeploy-Signature": github(body)["X-Hub-Signature-256"]}
        assert post(hook.port, body, unstamped) == 401  # the old scheme: replayable for ever
        assert post(hook.port, body, {**unstamped, "X-Sitedeploy-Timestamp": str(int(now))}) == 401
    assert hook.pushes == ["webhook:generic"] * 2
    reasons = [e["reason"] for e in hook.events("webhook-refused") if e["status"] == 401]
    assert sum("off this machine's clock" in r for r in reasons) == 2
    assert sum("needs X-Sitedeploy-Timestamp" in r for r in reasons) == 1


def test_the_replay_memory_forgets_after_its_ttl_and_stays_bounded() -> None:
    assert webhook_mod.REPLAY_TTL >= 2 * webhook_mod.WINDOW  # a generic request never outlives it
    guard = ReplayGuard(ttl=10, size=3)
    assert guard.first_time(["a", "a2"], now=0) and not guard.first_time(["x", "a2"], now=9.9)
    assert guard.first_time(["a"], now=10.0)  # forgotten at its ttl
    for key in "bcd":
        assert guard.first_time([key], now=11)
    assert len(guard) == 3 and guard.first_time(["a"], now=12)  # the oldest made room


# --- random requests -------------------------------------------------------------------------

KNOWN = [
    "X-Hub-Signature-256", "X-GitHub-Delivery", "X-Gitlab-Token", "X-Gitlab-Event-UUID",
    "Idempotency-Key", "X-Sitedeploy-Signature", "X-Sitedeploy-Timestamp", "X-Sitedeploy-Delivery",
]  # fmt: skip
LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")  # header text
VALUES = st.text(LATIN1, max_size=80)
EXTRA_NAMES = st.from_regex(r"X-Extra-[A-Za-z0-9-]{1,16}", fullmatch=True)
WRONG_SECRETS = st.text(LATIN1, min_size=1, max_size=30).filter(lambda s: s != SECRET)
DELIVERY_HEADER = {
    "github": "X-GitHub-Delivery",
    "gitlab": "X-Gitlab-Event-UUID",
    "generic": "X-Sitedeploy-Delivery",
}


@dataclass
class Sent:
    method: str
    headers: dict[str, str]
    body: bytes
    length: bool
    signer: str | None  # who validly signed it (and in time), or None

    def keys(self) -> set[tuple[str, str]]:
        """The test's own model of what makes a delivery the same one (see the module docstring)."""
        assert self.signer is not None
        signed = self.body
        if self.signer == "generic":
            signed = self.headers["X-Sitedeploy-Timestamp"].encode() + b"." + self.body
        ids = {(self.signer, self.headers.get(DELIVERY_HEADER[self.signer], ""))} - {(self.signer, "")}
        return {(self.signer, hashlib.sha256(signed).hexdigest()), *ids}


@st.composite
def requests(draw: st.DrawFn) -> Sent:
    body = draw(st.binary(max_size=600))
    kind = draw(st.sampled_from(["github", "gitlab", "generic", "stale", "forged", "garbage", "none"]))
    delivery = draw(st.sampled_from(["", "d1", "d2", "d3"])) or None  # few ids: replays happen
    if kind == "github":
        headers = github(body, delivery)
    elif kind == "gitlab":
        headers = {**GITLAB, **({"X-Gitlab-Event-UUID": delivery} if delivery else {})}
    elif kind == "generic":
        headers = generic(body, ts=time.time() + draw(st.integers(-240, 240)), delivery=delivery)
    elif kind == "stale":
        off = draw(st.integers(webhook_mod.WINDOW + 60, 10**9)) * draw(st.sampled_from([-1, 1]))
        headers = generic(body, ts=max(0, time.time() + off), delivery=delivery)
    elif kind == "forged":
        wrong = draw(WRONG_SECRETS)
        headers = draw(st.sampled_from([github(body, delivery, secret=wrong), {"X-Gitlab-Token": wrong}]))
    else:
        headers = (
            draw(st.dictionaries(st.sampled_from(KNOWN), VALUES, max_size=4)) if kind == "garbage" else {}
        )
    headers = {**draw(st.dictionaries(EXTRA_NAMES, VALUES, max_size=4)), **headers}
    method = "POST" if draw(st.integers(0, 9)) < 8 else draw(st.sampled_from(["GET", "PUT", "DELETE"]))
    length = draw(st.integers(0, 9)) > 0
    valid = kind in ("github", "gitlab", "generic") and method == "POST" and length
    return Sent(method, headers, body, length, kind if valid else None)


def test_random_requests_get_an_answer_and_only_valid_new_ones_wake_the_agent() -> None:
    seen: set[tuple[str, str]] = set()
    answered: set[int] = set()
    with webhook(max_body=512) as hook:

        @settings(max_examples=300, deadline=None, database=None)
        @given(sent=requests())
        def one(sent: Sent) -> None:
            pushes = len(hook.pushes)
            status = post(hook.port, sent.body, sent.headers, method=sent.method, length=sent.length)
            answered.add(status)
            assert 200 <= status < 500
            assert len(hook.pushes) - pushes == (status == 202)
            if sent.signer is None or len(sent.body) > 512:
                assert status in (401, 405, 411, 413)
                return
            new = not (sent.keys() & seen)
            assert status == (202 if new else 409)
            if new:  # only an accepted delivery is remembered (a replay's other ids are not)
                seen.update(sent.keys())

        one()
        assert post(hook.port, b"{}", github(b"{}", "after-the-storm")) == 202
    print(f"\nanswers seen: {sorted(answered)}; accepted {len(hook.pushes)}")
    assert hook.events("webhook-internal-error") == []
    assert SECRET not in hook.log.getvalue()


HEADER_MAPS = st.dictionaries(
    st.one_of(st.sampled_from([k.lower() for k in KNOWN]), st.text(max_size=20)),
    st.text(max_size=100),
    max_size=6,
)


SIGNATURE_HEADERS = ("x-hub-signature-256", "x-gitlab-token", "x-sitedeploy-signature")


def _sign(headers: dict[str, str], signer: str, body: bytes, stamp: int) -> dict[str, str]:
    """``headers`` without any other signature, plus ``signer``'s valid one."""
    kept = {k: v for k, v in headers.items() if k not in SIGNATURE_HEADERS}
    if signer == "gitlab":
        return {**kept, "x-gitlab-token": SECRET}
    if signer == "github":
        return {**kept, "x-hub-signature-256": github(body)["X-Hub-Signature-256"]}
    signed = generic(body, ts=stamp)
    return {**kept, **{k.lower(): v for k, v in signed.items()}}


@settings(max_examples=300, deadline=None, database=None)
@given(
    headers=HEADER_MAPS,
    body=st.binary(max_size=300),
    now=st.integers(10**6, 4 * 10**9),
    signer=st.sampled_from([None, "github", "gitlab", "generic"]),
    skew=st.integers(-2 * int(webhook_mod.WINDOW), 2 * int(webhook_mod.WINDOW)),
)
def test_judge_never_raises_and_accepts_exactly_the_valid_fresh_requests(
    headers: dict[str, str], body: bytes, now: int, signer: str | None, skew: int
) -> None:
    if signer is not None:
        headers = _sign(headers, signer, body, now + skew)
    verdict = judge(headers, body, SECRET.encode(), "X-Sitedeploy-Signature", ReplayGuard(), now)
    fresh = signer != "generic" or abs(skew) <= webhook_mod.WINDOW
    assert verdict.code == (202 if signer is not None and fresh else 401), verdict
    assert verdict.sender == (signer if verdict.code == 202 or signer == "generic" else None)
    assert authentic(headers, body, SECRET.encode(), "X-Sitedeploy-Signature") == signer
