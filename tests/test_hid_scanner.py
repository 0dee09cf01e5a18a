"""The HID scanner driver: simulation mode over a real FIFO fed by the simulator process, and the
event-device path on a real pty with only its evdev ioctls (EVIOCGVERSION, EVIOCGRAB) mocked,
since a physical input device cannot exist on this machine (no /dev/input, no /dev/uinput)."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import time
import tty
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import DeviceGone
from drivers.ioctl import EVIOCGRAB, EVIOCGVERSION, eviocgname
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


class InputDeviceIoctls:
    """Stands in for the kernel's evdev ioctls on a pty, which is a real character device that
    delivers the written `input_event` records but answers ENOTTY to EVIOCGVERSION/EVIOCGRAB:
    a physical input device cannot exist on this machine. Records each request."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, Any]] = []
        self.grabbed = False

    def __call__(self, fd: int, request: int, arg: Any = 0) -> int:
        self.calls.append((request, arg if isinstance(arg, int) else len(arg)))
        if request == EVIOCGVERSION:
            arg[:4] = (0x010001).to_bytes(4, "little")
        elif request == eviocgname(256):
            arg[: len(b"Honeywell Scanner\0")] = b"Honeywell Scanner\0"
        elif request == EVIOCGRAB:
            self.grabbed = bool(arg)
        else:
            raise OSError(25, "Inappropriate ioctl for device")
        return 0


def raw_pty() -> tuple[int, int, str]:
    master, slave = pty.openpty()
    tty.setraw(slave)  # bytes pass as they are, no echo, no line editing
    return master, slave, os.ttyname(slave)


def test_an_event_device_is_checked_grabbed_read_and_released(mocker: Any) -> None:
    ioctls = InputDeviceIoctls()
    mocker.patch("drivers.scanners.hid.fcntl.ioctl", side_effect=ioctls)
    data = b"".join(e.pack() for e in encode_text(load_layout("fi"), "]C1001234\x1d10X"))
    master, slave, path = raw_pty()

    async def main() -> list[bytes]:
        driver = HidScanner("s9", path, keymap="fi")
        await driver.open()
        assert ioctls.grabbed
        os.write(master, data)
        got = await collect_scans(driver, 1, timeout=5)
        assert not ioctls.grabbed
        return got

    try:
        assert asyncio.run(main()) == [b"]C1001234\x1d10X"]
    finally:
        os.close(master)
        os.close(slave)
    requests = [r for r, _ in ioctls.calls]
    assert requests == [EVIOCGVERSION, eviocgname(256), EVIOCGRAB, EVIOCGRAB]
    assert [a for r, a in ioctls.calls if r == EVIOCGRAB] == [1, 0]


def test_grab_false_reads_without_grabbing(mocker: Any) -> None:
    ioctls = InputDeviceIoctls()
    mocker.patch("drivers.scanners.hid.fcntl.ioctl", side_effect=ioctls)
    master, slave, path = raw_pty()

    async def main() -> list[bytes]:
        driver = HidScanner("s9", path, grab=False)
        await driver.open()
        os.write(master, b"".join(e.pack() for e in encode_text(load_layout("us"), "A1")))
        return await collect_scans(driver, 1, timeout=5)

    try:
        assert asyncio.run(main()) == [b"A1"]
    finally:
        os.close(master)
        os.close(slave)
    assert EVIOCGRAB not in [r for r, _ in ioctls.calls]


def test_a_character_device_that_is_not_an_event_device_is_named() -> None:
    """The real ioctl, on a real character device that is not an input device."""
    master, slave, path = raw_pty()
    try:
        driver = HidScanner("s9", path)
        with pytest.raises(DeviceGone, match=rf"{path} is not an input event device \(EVIOCGVERSION: "):
            driver._open_now()
        assert driver._fd is None
    finally:
        os.close(master)
        os.close(slave)


def test_the_ioctl_numbers_are_the_kernel_headers_own(tmp_path: Path) -> None:
    """Compiled against this machine's <linux/input.h> (gcc and linux-libc-dev)."""
    source = tmp_path / "ioctls.c"
    source.write_text(
        "#include <stdio.h>\n#include <linux/input.h>\n"
        'int main(void) { printf("%lu %lu %lu\\n", (unsigned long)EVIOCGVERSION, (unsigned long)EVIOCGRAB,'
        " (unsigned long)EVIOCGNAME(256)); return 0; }\n"
    )
    subprocess.run(["gcc", "-o", str(tmp_path / "ioctls"), str(source)], check=True)
    out = subprocess.run([str(tmp_path / "ioctls")], capture_output=True, text=True, check=True).stdout
    assert [int(n) for n in out.split()] == [EVIOCGVERSION, EVIOCGRAB, eviocgname(256)]
