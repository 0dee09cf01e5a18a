"""A snapshot of 1,000,000 returns applied while scans go on, and scans matched all along."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from simulators.central import Central, labels_of, make_return, snapshot_messages
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT, sim_cmd
from tests.harness import type_payloads, wait_until

MILLION = 1_000_000


@pytest.mark.slow
def test_million_return_snapshot_while_scanning(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    central.generate(100)
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}])
    agent = agents(config)
    agent.wait_for("manifest.applied", version=1)
    central.serve_requests = False
    old_labels = [labels_of(r)[i % 3] for i, r in enumerate(central.returns)]
    payload_file = tmp_path / "old.txt"
    payload_file.write_text("\n".join(old_labels * 30) + "\n")
    scanner = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--file", str(payload_file),
                                       "--rate", "25"), cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    published = threading.Event()

    def publish() -> None:
        returns = (make_return(i) for i in range(1, MILLION + 1))
        for body in snapshot_messages(2, returns, MILLION, 3000):  # under 1 MiB a chunk, items and all
            central.client.publish("dock/v1/hel1/manifest", body, qos=1).wait_for_publish(60)
        published.set()

    t0 = time.monotonic()
    threading.Thread(target=publish, daemon=True).start()
    applied = agent.wait_for("manifest.applied", timeout=600, version=2)
    elapsed = time.monotonic() - t0
    assert applied["rows"] == MILLION and published.is_set()
    scanner.terminate()  # SIGTERM: the simulator unplugs (removes its link) before it goes
    scanner.wait()
    wait_until(lambda: agent.records() and True, what="log")
    stored = [r for r in agent.records() if r.get("event") == "scan.stored"]
    applied_at = applied["timestamp"]
    during = [r for r in stored if r["timestamp"] < applied_at and r["timestamp"] > stored[0]["timestamp"]]
    assert len(during) > 20, "scans did not keep flowing during the snapshot"
    assert all(r["outcome"] in ("expected", "duplicate") for r in during), {r["outcome"] for r in during}
    latencies = sorted(r["latency_us"] for r in during)
    print(f"snapshot of {MILLION} applied in {elapsed:.1f} s; {len(during)} scans during it, "
          f"latency p50 {latencies[len(latencies) // 2]} us, max {latencies[-1]} us")  # fmt: skip
    # after the swap, a return only the new snapshot has is matched
    type_payloads(link, [labels_of(make_return(MILLION - 1))[0]])
    wait_until(lambda: [r for r in agent.records() if r.get("event") == "scan.stored"][-1].get("return_id")
               == f"R{MILLION - 1:07d}", what="a return of the new snapshot matched")  # fmt: skip
