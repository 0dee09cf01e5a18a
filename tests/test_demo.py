"""The README's demo command, shortened: broker + central + simulators + agent, clean stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.broker import free_port
from tests.conftest import ROOT, sim_cmd
from tests.harness import descendants, wait_until


def _demo_config(tmp_path: Path) -> Path:
    """config/demo.yaml on free ports: nothing listens on the broker's, so the demo starts its own
    Mosquitto; it starts its printers on theirs."""
    config = (ROOT / "config" / "demo.yaml").read_text().replace("/tmp/edge-demo", str(tmp_path))
    config = config.replace("format: auto", "format: json")
    for fixed in ("port: 1883", "port: 9100", "port: 9101", "port: 8080"):
        config = config.replace(fixed, f"port: {free_port()}")
    path = tmp_path / "demo.yaml"
    path.write_text(config)
    return path


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    path = _demo_config(tmp_path)
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


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_demo_stops_all_its_children_on_sigterm_and_sighup(tmp_path: Path, signum: int) -> None:
    path = _demo_config(tmp_path)
    log = open(tmp_path / "demo.log", "w+")  # noqa: SIM115
    demo = subprocess.Popen(sim_cmd("demo", "-c", str(path), "--interval", "0.2", "--fresh"),
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
    try:
        wait_until(lambda: '"scan.stored"' in (tmp_path / "demo.log").read_text(), timeout=60, what="a scan")
        children = descendants(demo.pid)
        assert len(children) >= 6  # broker, agent, three scanners, printer, scale
        demo.send_signal(signum)
        assert demo.wait(timeout=40) == 0
        left = [pid for pid in children if _alive(pid)]
        assert left == [], (tmp_path / "demo.log").read_text()[-2000:]
        text = (tmp_path / "demo.log").read_text()
        assert '"agent.stopped"' in text and "demo: typed" in text
    finally:
        if demo.poll() is None:
            demo.kill()
        for pid in descendants(demo.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()


def test_demo_names_a_configuration_it_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = subprocess.run(sim_cmd("demo", "-c", str(missing)), capture_output=True, text=True, timeout=30,
                            cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert f"cannot read the demo's configuration {missing}" in result.stderr
    assert "Traceback" not in result.stderr
