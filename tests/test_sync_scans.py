"""Scan events end to end: simulated scanner → agent process → real Mosquitto → simulated central."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from simulators.central import Central, labels_of
from simulators.samples import ret1_label
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT, sim_cmd
from tests.harness import type_payloads, wait_until

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def decode_json(config: Path, payloads: list[str]) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "edge_agent.cli", "decode", "--json", "-c", str(config), *payloads],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout  # fmt: skip
    return [json.loads(line) for line in out.splitlines()]


def test_scan_events_follow_the_contract(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    central.generate(20)
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    agent = agents(config)
    agent.wait_for("manifest.applied", version=1)
    r = central.returns
    forged = ret1_label(r[0]["return_id"], "SO-1")[:-2] + "AA"
    payloads = [
        labels_of(r[0])[0],  # RET1 → expected
        labels_of(r[0])[0],  # again → duplicate
        labels_of(r[1])[1],  # GS1-128 SSCC → expected
        labels_of(r[2])[2],  # S10 → expected
        r[3]["order_number"],  # a plain order number → expected, matched whole
        "NOPE-1",  # unknown
        forged,  # invalid
        "CMD:MODE:INSPECT",  # command
        labels_of(r[0])[0],  # same return, new mode → expected again
    ]
    type_payloads(link, payloads)
    wait_until(lambda: central.report().get("dock-07", {}).get("unique") == 9, what="9 scan events")
    events = central.devices["dock-07"].events
    assert [e["seq"] for e in events] == list(range(1, 10))
    assert [e["outcome"] for e in events] == [
        "expected", "duplicate", "expected", "expected", "expected", "unknown", "invalid", "command", "expected",
    ]  # fmt: skip
    assert [e["mode"] for e in events] == ["receive"] * 8 + ["inspect"]
    expected_decoded = decode_json(config, payloads)
    for event, decoded, payload in zip(events, expected_decoded, payloads, strict=True):
        assert event["v"] == 1 and event["device"] == "dock-07" and event["site"] == "hel1"
        assert TS.match(event["ts"])
        assert uuid.UUID(event["event_id"]).version == 7
        assert event["scanner"] == "s1"
        assert event["decoded"] == decoded, payload
        assert isinstance(event["latency_us"], int) and 0 < event["latency_us"] < 1_000_000
        assert isinstance(event["clock_synced"], bool)  # extra field: false before NTP sync
    assert events[0]["return"] == {"return_id": r[0]["return_id"], "order_number": r[0]["order_number"],
                                   "items": r[0]["items"], "customer": r[0]["customer"],
                                   "weight_g": r[0]["weight_g"]}  # fmt: skip
    assert events[5]["return"] is None and events[6]["return"] is None
    assert events[4]["return"]["return_id"] == r[3]["return_id"]
    state = central.states["dock-07"]
    assert state["online"] is True and state["manifest_version"] in (0, 1) and state["scanners"] == ["s1"]
    report = json.loads(subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "status", "-c", str(config), "--json"],
        capture_output=True, text=True, check=True, cwd=ROOT).stdout)  # fmt: skip
    assert report["last_seq"] == 9 and report["mode"] == "inspect" and report["manifest_version"] == 1
    assert report["last_scans"][0]["seq"] == 9
    wait_until(
        lambda: (
            json.loads(
                subprocess.run(
                    [sys.executable, "-m", "edge_agent.cli", "status", "-c", str(config), "--json"],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                ).stdout
            )["outbox_depth"]
            == 0
        ),
        what="empty outbox",
    )
    assert agent.terminate() == 0
    wait_until(lambda: central.states["dock-07"]["online"] is False, what="offline state")
    assert central.states["dock-07"]["reason"] == "shutdown"


def test_last_will_on_sigkill(tmp_path: Path, broker: Broker, central: Central, agents: Any) -> None:
    config = write_config(tmp_path, broker.port)
    agent = agents(config)
    wait_until(lambda: central.states.get("dock-07", {}).get("online") is True, what="online")
    boot_id = central.states["dock-07"]["boot_id"]
    agent.kill()
    wait_until(lambda: central.states["dock-07"].get("online") is False, timeout=30, what="last will")
    assert central.states["dock-07"]["reason"] == "lost" and central.states["dock-07"]["boot_id"] == boot_id
    agent.start()
    wait_until(lambda: central.states["dock-07"].get("online") is True, what="online again")
    assert central.states["dock-07"]["boot_id"] != boot_id


def test_broker_outage_loses_nothing_and_keeps_order(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    agent = agents(config)
    payloads = [f"ORDER-{i}" for i in range(300)]
    scanner = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--rate", "40", *payloads),
                               cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    wait_until(lambda: central.report().get("dock-07", {}).get("unique", 0) >= 50, what="first events")
    broker.stop()
    time.sleep(3)  # scans go on while the broker is away
    broker.start()
    scanner.wait(timeout=60)
    wait_until(
        lambda: central.report().get("dock-07", {}).get("unique") == 300, timeout=60, what="all events"
    )
    report = central.report()["dock-07"]
    assert report["missing"] == [] and report["conflicts"] == 0 and report["inexact_duplicates"] == 0
    assert report["out_of_order"] == 0
    raws = [e["decoded"]["raw"] for e in central.devices["dock-07"].events]
    assert raws == payloads
    assert any(r.get("event") == "mqtt.disconnected" for r in agent.records())
