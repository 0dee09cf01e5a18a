"""Scales end to end, one test per protocol: `edge-sim scale` on a real pty (MT-SICS, Toledo 8217,
continuous output) or FIFO (HID POS reports) → the agent process → real Mosquitto → the simulated
central system (mqtt.md "Scales"): the weight and its check in the scan event and the receipt, a
light parcel, a heavy one caught after the pan settled, no expected weight, overload, and an
unplugged scale's `offline` state and alert."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from simulators.central import Central
from tests.agentproc import write_config
from tests.broker import Broker
from tests.harness import type_payloads, wait_until
from tests.test_scale_simulator import command, scale

ITEMS = [{"sku": "SHOE-42", "name": "Shoes 42", "qty": 2, "gtin": "4006381333931", "weight_g": 180},
         {"sku": "BOX-1", "name": "Shoe box", "qty": 1, "gtin": "96385074", "weight_g": 400}]  # fmt: skip
RETURNS = [
    {"return_id": "R1", "order_number": "SO-1", "keys": {}, "weight_g": 950, "items": []},
    {"return_id": "R2", "order_number": "SO-2", "keys": {}, "items": ITEMS},  # 2 x 180 + 400 = 760 g
    {"return_id": "R3", "order_number": "SO-3", "keys": {}, "items": []},  # no weight on record
    {"return_id": "R4", "order_number": "SO-4", "keys": {}, "weight_g": 500, "items": []},
    {"return_id": "R5", "order_number": "SO-5", "keys": {}, "weight_g": 500, "items": []},
]
PROTOCOLS = {
    "sics": {"type": "serial", "protocol": "sics"},
    "toledo8217": {"type": "serial", "protocol": "toledo8217"},
    "continuous": {"type": "serial", "protocol": "continuous"},
    "hid": {"type": "hid"},
}


def station_scale(central: Central) -> dict[str, Any]:
    (state,) = central.command("dock-07", "status")["data"]["scales"]
    return state  # type: ignore[no-any-return]


def alerts(central: Central) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p in list(central.messages) if t.endswith("/event/alert")]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_parcels_are_weighed_and_checked(
    protocol: str, tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    central.returns, central.version = RETURNS, 1
    link = tmp_path / "s1"
    with scale(tmp_path, protocol) as (sim, path):
        where = {"device": str(path)} if protocol == "hid" else {"port": str(path)}
        extra = (
            f"scales:\n  - {json.dumps({'id': 'sc1', **PROTOCOLS[protocol], **where})}\n"
            "receiving: {weight_settle_ms: 8000}\n"
        )
        config = write_config(
            tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}], extra
        )
        agent = agents(config)
        agent.wait_for("manifest.applied", version=1)
        wait_until(lambda: central.states.get("dock-07", {}).get("scales") == ["sc1"], what="scales in state")

        def settle(grams: float) -> None:
            command(sim, f"!weight {grams}")
            wait_until(lambda: station_scale(central)["state"] == "ok" and station_scale(central)["grams"] == grams,
                       what=f"{grams} g stable at the agent")  # fmt: skip

        def scan(payloads: list[str], n: int) -> list[dict[str, Any]]:
            type_payloads(link, payloads)
            wait_until(lambda: central.report().get("dock-07", {}).get("unique", 0) >= n, what=f"{n} events")
            return central.devices["dock-07"].events

        settle(950)
        first = scan(["SO-1"], 1)[0]
        assert first["outcome"] == "expected"
        assert first["weight"] == {
            "grams": 950,
            "stable": True,
            "scale": "sc1",
            "expected_g": 950,
            "check": "ok",
        }

        settle(120)  # an empty box for a pair of shoes: light
        events = scan(["SO-2", "CMD:DONE"], 3)
        light = events[1]
        assert light["weight"]["check"] == "light" and light["weight"]["grams"] == 120
        assert light["weight"]["expected_g"] == 760  # from its items: 2 x 180 g + 400 g
        wait_until(lambda: central.receipts.get("dock-07") and central.receipts["dock-07"].receipts,
                   what="the receipt")  # fmt: skip
        (receipt,) = central.receipts["dock-07"].receipts
        assert receipt["return_id"] == "R2" and receipt["weight"] == light["weight"]

        settle(130)
        # the next parcel goes on while the scan is made: heavy, once settled. The pan moves long enough
        # (3 s) that a scan typed late on a loaded machine still comes before it settles
        command(sim, "!motion 3")
        command(sim, "!weight 900")
        heavy = scan(["SO-4"], 4)[3]
        assert heavy["weight"]["check"] == "heavy" and heavy["weight"]["stable"] is True
        assert heavy["weight"]["grams"] == 900 and heavy["weight"]["expected_g"] == 500
        weighed = agent.wait_for("scan.weighed", seq=heavy["seq"])
        assert weighed["waited_ms"] > 0  # the event waited for the pan; the scan was stored at once

        settle(700)
        unknown = scan(["SO-3"], 5)[4]
        assert unknown["weight"]["check"] == "unknown" and unknown["weight"]["expected_g"] is None
        assert unknown["weight"]["grams"] == 700 and unknown["weight"]["stable"] is True

        command(sim, "!overload")
        wait_until(lambda: station_scale(central)["state"] == "overload", what="overload")
        over = scan(["SO-5"], 6)[5]
        assert over["weight"]["check"] == "unknown" and over["weight"]["stable"] is False
        assert over["weight"]["detail"] == "the scale reports overload"

        command(sim, "!unplug 4")
        wait_until(lambda: station_scale(central)["state"] == "offline", what="offline")
        wait_until(lambda: {"kind": "scale", "scale": "sc1", "state": "offline"}.items()
                   <= next(iter(alerts(central)), {}).items(), what="the offline alert")  # fmt: skip
        settle(300)  # plugged back in: read again
        assert [e["seq"] for e in central.devices["dock-07"].events] == [1, 2, 3, 4, 5, 6]


def test_kill_9_while_a_parcel_waits_for_its_weight(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    """The scan is stored before its weight is waited for: killed in the wait, the agent sends it
    after the restart as stored, `unknown`, and a scan after it keeps its place behind it."""
    central.returns, central.version = RETURNS, 1
    link = tmp_path / "s1"
    with scale(tmp_path, "sics") as (sim, path):
        extra = (f"scales:\n  - {{id: sc1, type: serial, protocol: sics, port: {path}}}\n"
                 "receiving: {weight_settle_ms: 30000}\n")  # fmt: skip
        config = write_config(
            tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}], extra
        )
        agent = agents(config)
        agent.wait_for("manifest.applied", version=1)
        command(sim, "!motion 600")  # the pan never settles
        type_payloads(link, ["SO-1", "NOT-A-RETURN"])
        agent.wait_for("scan.stored", seq=2)
        time.sleep(0.5)  # time enough for both to arrive, were they not held
        assert "dock-07" not in central.report()  # the first is held, and the second behind it
        agent.kill()
        agents(config)
        wait_until(lambda: central.report().get("dock-07", {}).get("unique", 0) >= 2, what="both events")
        first, second = central.devices["dock-07"].events
        assert (first["seq"], second["seq"]) == (1, 2) and second["outcome"] == "unknown"
        assert first["weight"]["check"] == "unknown" and first["weight"]["stable"] is False
        assert first["weight"]["detail"] == "no stable weight within 30000 ms"
        assert first["weight"]["expected_g"] == 950


def test_a_light_or_heavy_parcel_is_an_outcome_for_the_stack_light(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    central.returns, central.version = RETURNS, 1
    out = tmp_path / "light.txt"
    record = [
        "sh",
        "-c",
        f'echo "$EDGE_SEQ $EDGE_OUTCOME $EDGE_WEIGHT_G $EDGE_EXPECTED_G $EDGE_WEIGHT_CHECK" >> {out}',
    ]
    link = tmp_path / "s1"
    with scale(tmp_path, "continuous") as (sim, path):
        extra = (f"scales:\n  - {{id: sc1, type: serial, protocol: continuous, port: {path}}}\n"
                 "feedback:\n"
                 f"  expected: [{{type: command, argv: {json.dumps(record)}}}]\n"
                 f"  weight_light: [{{type: command, argv: {json.dumps(record)}}}]\n"
                 f"  weight_heavy: [{{type: command, argv: {json.dumps(record)}}}]\n")  # fmt: skip
        config = write_config(
            tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}], extra
        )
        agent = agents(config)
        agent.wait_for("manifest.applied", version=1)
        for grams, payload in ((120, "SO-2"), (900, "SO-4"), (500, "SO-5")):
            command(sim, f"!weight {grams}")
            time.sleep(0.6)  # settled
            type_payloads(link, [payload])
        wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 5, what="five commands")
        lines = out.read_text().splitlines()
        # the outcome's own action runs at the scan: with the weight still to come (`unknown`), or with
        # it when the scale's next reading came in between the scan and its commit
        outcome_lines = [line.split() for line in lines[::2]]
        assert [words[:2] for words in outcome_lines] == [
            ["1", "expected"],
            ["2", "expected"],
            ["3", "expected"],
        ]
        checks = [words[-1] for words in outcome_lines]
        for check, later in zip(checks, ("light", "heavy", "ok"), strict=True):
            assert check in ("unknown", later)
        assert lines[1::2][:2] == ["1 weight_light 120 760 light", "2 weight_heavy 900 500 heavy"]
        assert len(lines) == 5  # 500 g for 500 g: nothing more
