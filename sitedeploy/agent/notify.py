"""Notifications on state changes only: deployed, failed, rolled back, drift found, recovered.

Each target is in one state: ``ok``, ``failed`` or ``drift``. Events that change what is live
(deployed, rolled back, repaired) always notify; ``failed`` and ``drift`` notify when they are
new (another commit, another error) and then at most every ``repeat_failure_after`` seconds
while they persist; ``recovered`` notifies only when leaving a bad state. What was last
notified is kept in the agent's memory file, so ``--once`` under cron behaves the same.

Payloads: ``format = "json"`` posts ``{"event", "target", "commit", "message", "at"}``,
signed with ``X-Sitedeploy-Signature: sha256=<hmac>`` when ``secret_env`` is set;
``format = "slack"`` posts ``{"text": message}`` (Slack, Mattermost, Rocket.Chat webhooks).
Messages are scrubbed before they leave (a token in ``source.repo`` quoted by an error), and a
channel's URL, whose path often is its secret, is only ever logged scrubbed.

A message quotes text a build chose (an error, a branch name, a commit subject), so what goes to
a chat service is escaped for it (:func:`chat_text`): Slack's ``&``, ``<`` and ``>`` (so
``<!channel>`` and ``<https://evil|docs>`` arrive as text, as Slack's formatting rules ask),
and for Mattermost and Rocket.Chat, which read the same payload as Markdown, ``@`` mentions
(``@channel``, ``@all``, ``@here``) and ``[text](url)`` links are broken with a zero-width
space. The JSON format carries the text as a JSON string; its reader decides how to show it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import NotifyConfig
from ..errors import scrub
from .log import EventLog

ALWAYS = ("deployed", "rolled back", "repaired")
PERSISTENT = {"failed": "failed", "drift": "drift", "rolled back": "failed"}
SIGNATURE_HEADER = "X-Sitedeploy-Signature"
_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MENTION = re.compile(r"@(?=\w)")
_MARKDOWN_LINK = re.compile(r"\]\s*\(")
ZWSP = "\u200b"


@dataclass(frozen=True)
class Notice:
    event: str
    target: str
    message: str
    commit: str | None = None
    key: str = ""
    """What makes a failure "the same" as the last one (commit and error kind)."""

    def payload(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "target": self.target,
            "commit": self.commit,
            "message": scrub(self.message),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


class Notifier:
    def __init__(
        self,
        channels: tuple[NotifyConfig, ...],
        memory: dict[str, dict[str, Any]],
        log: EventLog,
        *,
        repeat_after: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channels, self.memory, self.log = channels, memory, log
        self.repeat_after, self.clock = repeat_after, clock
        self.sent: list[Notice] = []

    def notify(self, notice: Notice) -> bool:
        """Send ``notice`` if it is a change worth telling; True when it was sent."""
        prev = self.memory.get(notice.target, {"state": "ok", "key": "", "at": 0.0})
        now = self.clock()
        new_state = PERSISTENT.get(notice.event, "ok")
        if notice.event in ALWAYS:
            send = True
        elif notice.event == "recovered":
            send = prev["state"] != "ok"
        else:
            same = prev["state"] == new_state and prev["key"] == notice.key
            send = not same or now - float(prev["at"]) >= self.repeat_after
        if notice.event == "repaired":
            new_state = "ok"
        at = now if send else float(prev["at"])
        self.memory[notice.target] = {"state": new_state, "key": notice.key, "at": at}
        if send:
            self._send(notice)
        return send

    def state(self, target: str) -> str:
        return str(self.memory.get(target, {}).get("state", "ok"))

    def _send(self, notice: Notice) -> None:
        self.sent.append(notice)
        self.log.event("notify", target=notice.target, notice=notice.event, channels=len(self.channels))
        for channel in self.channels:
            try:
                post(channel, notice)
            except (OSError, ValueError) as exc:  # URLError is an OSError
                self.log.warning(
                    "notify-failed", target=notice.target, url=scrub(channel.url), error=str(exc)
                )


def post(channel: NotifyConfig, notice: Notice, timeout: float = 10.0) -> None:
    import urllib.request  # only when something is worth telling

    if channel.format == "slack":
        body = json.dumps({"text": chat_text(scrub(f"sitedeploy: {notice.message}"))}).encode()
    else:
        body = json.dumps(notice.payload()).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "sitedeploy-agent"}
    secret = os.environ.get(channel.secret_env) if channel.secret_env else None
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers[SIGNATURE_HEADER] = f"sha256={digest}"
    if not channel.url.lower().startswith(("http://", "https://")):
        raise urllib.error.URLError(f"{channel.url.split(':', 1)[0]}: only http(s) notification URLs")
    request = urllib.request.Request(channel.url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310: scheme checked
        response.read()


def chat_text(text: str) -> str:
    """``text`` made inert for Slack-format webhooks: no mention, link or control sequence."""
    escaped = "".join(_SLACK_ESCAPES.get(c, c) for c in text)
    escaped = _MENTION.sub("@" + ZWSP, escaped)
    return _MARKDOWN_LINK.sub("]" + ZWSP + "(", escaped)
