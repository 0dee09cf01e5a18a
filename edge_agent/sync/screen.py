"""First look at every inbound message, in paho's network thread, before the event loop sees it.

Theory of operation: the event loop runs the scan path; a flood of bad messages must not queue
there in front of scans. So what can be judged from the message alone is judged here, where it
arrives: too large, not UTF-8, not JSON (a nesting bomb refused before any object is built), not
an object, no `job_id`, no integer `version`, a command request that is not one. Such a message
is acknowledged at once and never crosses into the loop; a command gets its error reply here
(QoS 0, not stored); every other bad message is counted, and only the few alerts the rate limit
admits go to the loop to be stored and sent. What passes goes to the loop's handlers, which
still check everything (a print job's template, a desired configuration's keys) and answer as
before.

`screen()` is pure (message in, verdict out); `Screen` holds the counters and the rate limiter
behind a lock, since paho's thread and the loop both touch them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from edge_agent.sync.models import CommandRequest, describe, parse_json
from edge_agent.sync.ratelimit import AlertLimiter
from edge_agent.sync.topics import Topics


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    error: str | None = None
    command: str | None = None
    """For a command topic: the command's name (its bad requests are answered, not alerted)."""
    request_id: str | None = None


PASS = Verdict(True)


def screen(topics: Topics, topic: str, payload: bytes, max_bytes: int) -> Verdict:
    """What can be said of a message from its topic and bytes alone."""
    name = topics.command_name(topic)
    if len(payload) > max_bytes:
        error = f"payload of {len(payload)} bytes exceeds max_payload_bytes {max_bytes}"
        return Verdict(False, error, name, None)
    if topic == topics.manifest:
        # Chunks are large (a megabyte) and read once, by SQLite in the manifest writer, which
        # bounds nesting itself: here only what costs nothing. Even a regex over a chunk held the
        # GIL in this thread long enough to hold scans up 200 ms (bench/manifest.py, py-spy --gil).
        head = payload.lstrip()[:1]
        if head != b"{":
            return Verdict(False, "manifest message is not a JSON object")
        return PASS
    try:
        raw = parse_json(payload)
    except ValueError as exc:
        return Verdict(False, f"payload is not JSON: {exc}", name)
    if name is not None:
        request_id = raw.get("request_id") if isinstance(raw, dict) else None
        rid = request_id if isinstance(request_id, str) else None
        try:
            CommandRequest.model_validate(raw)
        except ValidationError as exc:
            return Verdict(False, describe(exc), name, rid)
        return PASS
    if topic == topics.job_print:
        job_id = raw.get("job_id") if isinstance(raw, dict) else None
        if not isinstance(job_id, str) or not job_id:
            return Verdict(False, "print job has no job_id")
        return PASS
    if topic == topics.config_desired:
        version = raw.get("version") if isinstance(raw, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            return Verdict(False, "desired configuration has no integer version")
        return PASS
    return Verdict(False, "no handler for this topic")


class Screen:
    """Counters and alert admission shared by paho's thread and the event loop."""

    def __init__(self, limiter: AlertLimiter | None = None) -> None:
        self.limiter = limiter or AlertLimiter()
        self.replies = AlertLimiter()
        """The same budget for answers that no requester can match (no request id, no correlation)."""
        self._lock = threading.Lock()
        self.bad_messages = 0
        self.bad_requests = 0

    def bad(self, topics: Topics, topic: str) -> tuple[bool, float | None]:
        """Count a bad message; (report it as an alert?, when a summary falls due)."""
        with self._lock:
            self.bad_messages += 1
            return self.limiter.admit(topics.filter_of(topic), time.monotonic())

    def answer_unmatchable(self, topics: Topics, topic: str) -> bool:
        """Whether to answer a request nobody can match: 10 a minute per topic filter."""
        with self._lock:
            return self.replies.admit(topics.filter_of(topic), time.monotonic())[0]

    def bad_request(self) -> int:
        with self._lock:
            self.bad_requests += 1
            return self.bad_requests

    def summaries(self) -> list[tuple[str, int]]:
        with self._lock:
            return self.limiter.summaries(time.monotonic())

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {
                "bad_messages": self.bad_messages,
                "bad_requests": self.bad_requests,
                **self.limiter.counts(),
            }
