"""The HID scanner driver: simulation mode over a real FIFO fed by the simulator process, and the
evdev path with `evdev.InputDevice` mocked, since a physical input device and its EVIOCGRAB ioctl
cannot exist on this machine (no /dev/input, no /dev/uinput)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from drivers.scanners.hid import HidScanner
from drivers.scanners.hid_events import encode_text
from drivers.scanners.xkb import load_layout
from simulators.samples import gs1_128_sscc, ret1_label, s10
from tests.conftest import ROOT, sim_cmd
from tests.harness import collect_scans, wait_until


def test_fifo_simulation_with_unplug(tmp_path: Path) -> None:
    fifo = tmp_path / "s2.events"
    payloads = [p for i in range(1, 21) for p in (ret1_label(f"R{i}", f"SO-{i}"), gs1_128_sscc(i), s10(i))]
    payload_file = tmp_path / "p.txt"
    payload_file.write_text("\n".join(payloads) + "\n")
    sim = subprocess.Popen(
        sim_cmd("hid-scanner", "--fifo", str(fifo), "--keymap", "fr", "--file", str(payload_file),
                "--rate", "0", "--unplug-at", "30", "--unplug-s", "0.3"),
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_until(fifo.exists, timeout=10, what="the simulator's FIFO")

    async def main() -> list[bytes]:
        driver = HidScanner("s2", str(fifo), keymap="fr", reopen_max_s=0.2)
        await driver.open()
        return await collect_scans(driver, len(payloads))

    got = asyncio.run(main())
    out, _ = sim.communicate(timeout=20)
    assert '"unplugged"' in out and '"returned"' in out
    assert [g.decode() for g in got] == payloads


def test_missing_device_is_retried(tmp_path: Path) -> None:
    fifo = tmp_path / "later.events"

    async def main() -> list[bytes]:
        driver = HidScanner("s2", str(fifo), keymap="us", reopen_max_s=0.2)
        await driver.open()
        assert not driver.connected
        collecting = asyncio.create_task(collect_scans(driver, 1, timeout=10))
        await asyncio.sleep(0.4)
        proc = await asyncio.create_subprocess_exec(
            *sim_cmd("hid-scanner", "--fifo", str(fifo), "--linger", "1", "LATE-1"), cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        got = await collecting
        await proc.wait()
        return got

    assert asyncio.run(main()) == [b"LATE-1"]


def test_scan_without_enter_ends_after_the_gap(tmp_path: Path) -> None:
    fifo = tmp_path / "noenter"
    os.mkfifo(fifo)
    events = encode_text(load_layout("us"), "NOENTER", int(time.time() * 1e6))[
        :-4
    ]  # drop Enter press/release

    async def main() -> list[bytes]:
        driver = HidScanner("s2", str(fifo), inter_key_timeout_ms=50)
        await driver.open()
        fd = os.open(fifo, os.O_WRONLY)
        os.write(fd, b"".join(e.pack() for e in events))
        try:
            return await collect_scans(driver, 1, timeout=5)
        finally:
            os.close(fd)

    assert asyncio.run(main()) == [b"NOENTER"]


class FakeInputDevice:
    """Stands in for evdev.InputDevice: its fd is a pipe, grab/ungrab are recorded."""

    instances: list[FakeInputDevice] = []

    def __init__(self, path: str) -> None:
        self.path = path
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.fd = self.read_fd
        self.grabbed = False
        self.closed = False
        FakeInputDevice.instances.append(self)

    def grab(self) -> None:
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def close(self) -> None:
        self.closed = True
        os.close(self.read_fd)


def test_real_device_path_grabs_and_reads_evdev(mocker: Any) -> None:
    FakeInputDevice.instances.clear()
    mocker.patch("evdev.InputDevice", FakeInputDevice)
    data = b"".join(e.pack() for e in encode_text(load_layout("fi"), "]C1001234\x1d10X"))

    async def main() -> list[bytes]:
        driver = HidScanner("s9", "/dev/null", keymap="fi")  # a real character device node
        await driver.open()
        device = FakeInputDevice.instances[0]
        assert device.grabbed and device.path == "/dev/null"
        os.write(device.write_fd, data)
        got = await collect_scans(driver, 1, timeout=5)
        assert device.closed and not device.grabbed
        return got

    assert asyncio.run(main()) == [b"]C1001234\x1d10X"]
