"""The README's demo command, shortened: broker + central + simulators + agent, clean stop."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.broker import free_port
from tests.conftest import ROOT, sim_cmd


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: the demo starts its own Mosquitto
    config = (ROOT / "config" / "demo.yaml").read_text().replace("/tmp/edge-demo", str(tmp_path))
    config = config.replace("port: 1883", f"port: {port}").replace("format: auto", "format: json")
    config = config.replace("port: 9100", f"port: {free_port()}")  # the demo starts its printer there
    path = tmp_path / "demo.yaml"
    path.write_text(config)
    result = subprocess.run(
        sim_cmd("demo", "-c", str(path), "--duration", "8", "--interval", "0.2", "--fresh"),
        capture_output=True, text=True, timeout=90, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    scans = [r for r in records if r["event"] == "scan.stored"]
    assert len(scans) >= 10
    assert {s["scanner"] for s in scans} == {"s1", "s2", "s3"}
    outcomes = {s["outcome"] for s in scans}
    assert {"expected", "unknown", "item"} <= outcomes, outcomes  # parcels unpacked item by item
    closes = [r for r in records if r["event"] == "receipt.closed"]
    assert any(r["closed_by"] == "done" and r["received"] > 0 for r in closes), closes
    assert "demo: receipts closed dock-07:" in result.stderr
    assert any(s["order_number"] for s in scans if s["outcome"] == "expected")
    assert any(r["event"] == "manifest.applied" for r in records)
    weighed = [r for r in records if r["event"] == "scan.weighed"]  # every parcel on the scale first
    assert {"ok", "light"} <= {r["check"] for r in weighed}, [
        (r["seq"], r["grams"], r["expected_g"], r["check"]) for r in weighed
    ]
    assert records[-1]["event"] == "agent.stopped"
    assert "started mosquitto" in result.stderr and "central received" in result.stderr
    final = [line for line in result.stderr.splitlines() if line.startswith("demo: central received")][-1]
    report = json.loads(final.split("received ", 1)[1])["dock-07"]
    assert report["missing"] == [] and report["unique"] >= len(scans) - 2
    slips = list((tmp_path / "printer-p1").glob("job-*"))  # routing slips of the expected returns
    assert slips and any("ROUTE TO" in f.read_text(errors="replace") or "Order" in f.read_text(errors="replace")
                         for f in slips)  # fmt: skip
