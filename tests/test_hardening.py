"""Hardening against what arrives over MQTT: the alert rate limit, cheap rejection of bombs, and the
remote configuration allowlist (mqtt.md, "Bad input" and "Config")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import parse_config
from edge_agent.errors import ConfigError
from edge_agent.sync.desired import effective_config
from edge_agent.sync.models import parse_json
from edge_agent.sync.ratelimit import AlertLimiter
from edge_agent.sync.topics import Topics
from tests.conftest import ROOT

BASE: dict[str, Any] = {"device": {"id": "dock-07", "site": "hel1"}, "mqtt": {"host": "127.0.0.1"},
                        "storage": {"path": "/tmp/x"}}  # fmt: skip


def test_limiter_reports_ten_a_minute_per_filter_then_one_summary() -> None:
    limiter = AlertLimiter(limit=10, window_s=60)
    decisions = [limiter.admit("a", 100.0 + i * 0.01) for i in range(25)]
    assert [d[0] for d in decisions] == [True] * 10 + [False] * 15
    assert [d[1] for d in decisions if d[1] is not None] == [160.0]  # one summary scheduled
    assert limiter.admit("b", 101.0) == (True, None)  # another filter has its own budget
    assert limiter.summaries(159.0) == []
    assert limiter.summaries(161.5) == [("a", 15)]  # "b" opened at 101 and ends at 161, with none held back
    assert limiter.counts() == {"bad_message_alerts": 11, "bad_messages_suppressed": 15}
    # a new minute: ten more reported
    assert [limiter.admit("a", 170.0 + i)[0] for i in range(11)] == [True] * 10 + [False]


def test_limiter_summary_names_the_count_once() -> None:
    limiter = AlertLimiter(limit=2, window_s=10)
    for i in range(7):
        limiter.admit("t", float(i))
    assert limiter.summaries(10.0) == [("t", 5)]
    assert limiter.summaries(20.0) == []


def test_topic_filters() -> None:
    topics = Topics("hel1", "dock-07")
    assert topics.filter_of("dock/v1/hel1/dock-07/cmd/status") == "dock/v1/hel1/dock-07/cmd/+"
    assert topics.filter_of("dock/v1/hel1/dock-07/job/print") == "dock/v1/hel1/dock-07/job/print"
    assert topics.filter_of("dock/v1/hel1/manifest") == "dock/v1/hel1/manifest"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nested deeper"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested deeper"),
        (b"\xff\xfe", "UTF-8"),
        (b"not json", "Expecting value"),
    ],
)
def test_bad_json_is_refused_cheaply(payload: bytes, needle: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=needle):
        parse_json(payload)
    assert time.perf_counter() - t0 < 5  # a bomb is no denial of service (generous: shared CI cores)


def test_normal_json_with_many_brackets_still_parses() -> None:
    manifest = {"upserts": [{"keys": {"a": [1, 2]}, "items": [{"x": [3]}]} for _ in range(2000)]}
    assert parse_json(json.dumps(manifest).encode()) == manifest


def _file(**extra: Any) -> dict[str, Any]:
    return {**BASE, **extra}


@pytest.mark.parametrize("key", ["feedback", "labels", "mqtt", "storage", "device", "log", "remote_config"])
def test_desired_keys_outside_the_default_allowlist_are_refused_naming_them(key: str) -> None:
    overlay = {key: {}, "telemetry_interval_s": 5}
    with pytest.raises(ConfigError) as info:
        effective_config(_file(), overlay)
    assert [p for p, _ in info.value.problems] == [key]
    assert "remote_config.allow" in info.value.problems[0][1]


def test_allowed_keys_apply() -> None:
    new = effective_config(_file(), {"printers": [{"id": "p1", "language": "zpl", "transport": "tcp",
                                                   "host": "10.0.0.21"}], "telemetry_interval_s": 5})  # fmt: skip
    assert [p.id for p in new.printers] == ["p1"] and new.telemetry_interval_s == 5


def test_a_site_may_allow_feedback_in_its_own_file() -> None:
    file = _file(remote_config={"allow": ["feedback", "printers"]})
    new = effective_config(file, {"feedback": {"expected": [{"type": "command", "argv": ["/bin/true"]}]}})
    assert new.feedback.actions("expected")
    with pytest.raises(ConfigError):
        effective_config(file, {"scanners": []})  # not in this site's list


def test_remote_config_cannot_allow_itself_or_unknown_keys() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_file(remote_config={"allow": ["printers", "remote_config", "colour"]}))
    problems = dict(info.value.problems)
    assert "itself" in problems["remote_config.allow[1]"]
    assert "'colour'" in problems["remote_config.allow[2]"]


def test_check_config_documents_the_allowlist(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("device: {id: d, site: s}\nmqtt: {host: h}\nstorage: {path: /tmp/x}\n"
                    "remote_config: {allow: [printers, feedback]}\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "edge_agent.cli", "check-config", "-c", str(path)],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0 and out.stdout == "ok\n"
    assert "remote_config.allow" in out.stderr and "'feedback'" in out.stderr and "programs" in out.stderr


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_station_page_beyond_loopback_needs_its_token(tmp_path: Path, agents: Any) -> None:
    from tests.agentproc import write_config
    from tests.broker import free_port

    port = free_port()
    token = "kiosk-7-0123456789abcdef"
    config = write_config(tmp_path, 1, display_port=port)  # no broker needed for the page
    config.write_text(config.read_text().replace(f"display: {{port: {port}}}",
                                                 f"display: {{port: {port}, host: 0.0.0.0, token: {token}}}"))  # fmt: skip
    agent = agents(config)
    served = agent.wait_for("display.serving")
    assert served["token_required"] is True and token not in (tmp_path / "agent.log").read_text()
    base = f"http://127.0.0.1:{port}"
    assert _get(f"{base}/") == 401
    assert _get(f"{base}/api/state") == 401
    assert _get(f"{base}/events") == 401
    assert _get(f"{base}/?token=wrong-token-0123456789") == 401
    assert _get(f"{base}/?token={token}") == 200
    assert _get(f"{base}/display.js?token={token}") == 200
    assert _get(f"{base}/api/state", {"Authorization": f"Bearer {token}"}) == 200
    refused = [r for r in agent.records() if r.get("event") == "display.refused"]
    assert len(refused) == 4 and all(token not in json.dumps(r) for r in refused)


def test_station_page_on_loopback_needs_no_token_and_check_config_warns_for_lan(
    tmp_path: Path, agents: Any
) -> None:
    from tests.agentproc import write_config
    from tests.broker import free_port

    port = free_port()
    config = write_config(tmp_path, 1, display_port=port)
    agent = agents(config)
    assert agent.wait_for("display.serving")["token_required"] is False
    assert _get(f"http://127.0.0.1:{port}/api/state") == 200
    agent.kill()
    lan = tmp_path / "lan.yaml"
    lan.write_text("device: {id: d, site: s}\nmqtt: {host: h}\nstorage: {path: /tmp/x}\n"
                   "display: {host: 0.0.0.0}\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "edge_agent.cli", "check-config", "-c", str(lan)],
                         capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0 and out.stdout == "ok\n"
    assert "display.host 0.0.0.0" in out.stderr and "display.token" in out.stderr
