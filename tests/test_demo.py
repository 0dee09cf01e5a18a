"""The README's demo command, shortened: simulators + agent, scans decoded, clean stop."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import ROOT, sim_cmd


def test_demo_runs_scanners_and_agent(tmp_path: Path) -> None:
    config = (ROOT / "config" / "demo.yaml").read_text().replace("/tmp/edge-demo", str(tmp_path))
    config += "\n"
    path = tmp_path / "demo.yaml"
    path.write_text(config.replace("format: auto", "format: json"))
    result = subprocess.run(
        sim_cmd("demo", "-c", str(path), "--duration", "6", "--interval", "0.25", "--fresh"),
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    scans = [r for r in records if r["event"] == "scan.decoded"]
    assert len(scans) >= 10
    assert {s["scanner"] for s in scans} == {"s1", "s2"}
    assert {"return_label", "gs1", "tracking"} <= {s["kind"] for s in scans}
    assert any(not s["valid"] for s in scans)  # the demo includes bad reads
    assert records[-1]["event"] == "agent.stopped"
