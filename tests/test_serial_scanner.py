"""The serial scanner driver against the simulator on a real pty (no mocks)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from drivers.scanners.serial import SerialScanner
from edge_agent.decode import Decoder
from simulators.samples import gs1_128_sscc, ret1_label, s10
from tests.conftest import KEY, ROOT, sim_cmd


def thousand_payloads() -> list[str]:
    out = []
    for i in range(1, 1001):
        r = i % 4
        if r == 0:
            out.append(gs1_128_sscc(i))  # GS1-128 with a GS inside
        elif r == 1:
            out.append(ret1_label(f"R{i:06d}", f"SO-{i}"))
        elif r == 2:
            out.append(s10(i))
        else:
            out.append(f"]C0ORDER-{i}")
    return out


def read_events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


async def collect(driver: SerialScanner, decoder: Decoder, sink: list[str]) -> None:
    async for raw in driver.scans():
        d = decoder.decode(raw.data)
        sink.append(d.raw)


async def _run_thousand(tmp_path: Path) -> tuple[list[str], list[dict]]:
    payload_file = tmp_path / "payloads.txt"
    payloads = thousand_payloads()
    payload_file.write_text("\n".join(payloads) + "\n")
    link = tmp_path / "scanner-s1"
    proc = subprocess.Popen(
        sim_cmd("serial-scanner", "--link", str(link), "--file", str(payload_file), "--rate", "0",
                "--hangup-at", "500", "--hangup-s", "0.5", "--noise-every", "97", "--split-every", "50"),
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    assert ready["event"] == "ready" and Path(ready["link"]) == link
    decoder = Decoder({"K1": KEY})
    got: list[str] = []
    driver = SerialScanner("s1", str(link), reopen_max_s=0.3)
    await driver.open()
    task = asyncio.create_task(collect(driver, decoder, got))
    out, _ = await asyncio.to_thread(proc.communicate, timeout=120)
    events = [ready, *read_events(out)]
    whole = [e["payload"] for e in events if e["event"] == "sent" and e["whole"]]
    deadline = time.monotonic() + 10
    while len(got) < len(whole) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # anything extra (a duplicate) would arrive now
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await driver.close()
    return got, events


def test_thousand_payloads_with_hangup_noise_and_split_frames(tmp_path: Path) -> None:
    got, events = asyncio.run(_run_thousand(tmp_path))
    whole = [e["payload"] for e in events if e["event"] == "sent" and e["whole"]]
    cut = [e["payload"] for e in events if e["event"] == "sent" and not e["whole"]]
    assert len(cut) == 1 and len(whole) == 999
    assert any(e["event"] == "hangup" for e in events) and any(e["event"] == "returned" for e in events)
    assert sum(e["event"] == "noise" for e in events) >= 10
    assert got == whole  # each payload sent whole decoded once, in order; the cut one never
    assert any("\x1d" in p for p in got) and any(p.startswith("RET1:") for p in got)


async def _late_port(tmp_path: Path) -> list[str]:
    link = tmp_path / "late"
    driver = SerialScanner("s1", str(link), reopen_max_s=0.2)
    await driver.open()  # not there yet: logged, not raised
    assert not driver.connected
    got: list[str] = []
    task = asyncio.create_task(collect(driver, Decoder(), got))
    await asyncio.sleep(0.5)
    proc = await asyncio.create_subprocess_exec(
        *sim_cmd("serial-scanner", "--link", str(link), "--rate", "0", "--linger", "1", "HELLO", "RR123456785SE"),
        stdout=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await driver.close()
    await proc.wait()
    return got


def test_port_missing_at_start_is_opened_when_it_appears(tmp_path: Path) -> None:
    assert asyncio.run(_late_port(tmp_path)) == ["HELLO", "RR123456785SE"]


def test_agent_run_logs_scans_from_both_scanner_types_and_stops_cleanly(tmp_path: Path) -> None:
    link, fifo = tmp_path / "s1", tmp_path / "s2.events"
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"""device: {{id: dock-07, site: hel1}}
mqtt: {{host: 127.0.0.1}}
storage: {{path: {tmp_path / "state"}}}
labels: {{keys: {{K1: "{KEY.hex()}"}}}}
scanners:
  - {{id: s1, type: serial, port: {link}}}
  - {{id: s2, type: hid, device: {fifo}, keymap: de}}
log: {{format: json}}
"""
    )
    label = ret1_label("R42", "SO-42")
    serial_sim = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--linger", "3", label), cwd=ROOT,
                                  stdout=subprocess.DEVNULL)  # fmt: skip
    hid_sim = subprocess.Popen(sim_cmd("hid-scanner", "--fifo", str(fifo), "--keymap", "de", "--linger", "3",
                                       gs1_128_sscc(7)), cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    agent = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "-c", str(config)],
                             stderr=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    assert agent.stderr is not None
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + 20
    os.set_blocking(agent.stderr.fileno(), True)
    while len(seen) < 2 and time.monotonic() < deadline:
        line = agent.stderr.readline()
        if not line:
            break
        record = json.loads(line)
        assert "component" in record
        if record["event"] == "scan.stored":
            seen[record["scanner"]] = record
    agent.send_signal(signal.SIGTERM)
    rest = agent.communicate(timeout=20)[1]
    serial_sim.wait(timeout=10)
    hid_sim.wait(timeout=10)
    assert agent.returncode == 0
    assert "agent.stopped" in rest
    assert seen["s1"]["kind"] == "return_label" and seen["s1"]["valid"] is True and seen["s1"]["raw"] == label
    assert seen["s1"]["outcome"] == "unknown"  # signed and valid, but no manifest here
    assert seen["s2"]["kind"] == "gs1" and seen["s2"]["raw"] == gs1_128_sscc(7)
    assert {seen["s1"]["seq"], seen["s2"]["seq"]} == {1, 2}


def test_a_scan_is_stamped_when_its_last_byte_is_read_not_when_it_is_framed(tmp_path: Path) -> None:
    """The latency clock starts at the read of the scan's last byte: time the loop spends on other
    work before the framing task runs (80 ms here) must count in it."""
    master, slave = os.openpty()
    link = tmp_path / "s1"
    link.symlink_to(os.ttyname(slave))

    async def main() -> tuple[int, int, bytes]:
        driver = SerialScanner("s1", str(link))
        await driver.open()
        scans = driver.scans()
        first = asyncio.ensure_future(anext(scans))
        await asyncio.sleep(0.05)  # the port is open and read
        os.write(master, b"]C0ORDER-1\r\n")
        assert (await first).data == b"]C0ORDER-1"
        # nobody waits for the next scan: the loop reads it, then is busy before it is framed
        os.write(master, b"]C0ORDER-2\r\n")
        await asyncio.sleep(0.05)
        time.sleep(0.08)
        busy_until = time.monotonic_ns()
        raw = await anext(scans)
        await driver.close()
        return raw.t_last_byte_ns, busy_until, raw.data

    try:
        stamped, busy_until, data = asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    assert data == b"]C0ORDER-2"
    assert busy_until - stamped >= 80_000_000, "stamped when framed, not when read"
