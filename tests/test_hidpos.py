"""USB HID POS scanners: the pure report parser (whole, byte by byte, with trailing bytes), the
report descriptor reader, and the driver over a real FIFO fed by the simulator process. The
hidraw ioctls (HIDIOCGRDESC, HIDIOCSFEATURE) of a physical scanner cannot run here (no
/dev/hidraw on this machine): one test mocks `fcntl.ioctl` for them and says so."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from drivers.scanners.hidpos import HIDIOCGRDESC, HIDIOCGRDESCSIZE, HidPosScanner
from drivers.scanners.hidpos_reports import (
    HONEYWELL,
    ReportLayout,
    ReportSplitter,
    ScanAssembler,
    layout_from_descriptor,
    make_reports,
)
from edge_agent.decode import Decoder
from simulators.samples import EOT, GS, RS, gtin14, sscc
from tests.conftest import ROOT, sim_cmd
from tests.harness import collect_scans, wait_until

# A report descriptor in the shape the reference gives for a scanner firmware (reference/hid-pos.md:
# REPORT_ID 2, a byte count, 3 symbology-id usages, 56 decoded-data usages, 2 vendor bytes, a
# 1-bit "continued" flag), written out item by item.
SCANNER_DESCRIPTOR = bytes(
    [
        0x05, 0x8C,        # Usage Page (Bar Code Scanner)
        0x09, 0x02,        # Usage (Bar Code Scanner)
        0xA1, 0x01,        # Collection (Application)
        0x09, 0x12,        #   Usage (Scanned Data Report)
        0xA1, 0x02,        #   Collection (Logical)
        0x85, 0x02,        #     Report ID (2)
        0x15, 0x00,        #     Logical Minimum (0)
        0x26, 0xFF, 0x00,  #     Logical Maximum (255)
        0x75, 0x08,        #     Report Size (8)
        0x95, 0x01,        #     Report Count (1)
        0x06, 0x66, 0xFF,  #     Usage Page (vendor 0xFF66)
        0x09, 0x01,        #     Usage (byte count)
        0x81, 0x02,        #     Input (Data, Var, Abs)
        0x05, 0x8C,        #     Usage Page (Bar Code Scanner)
        0x09, 0xFB,        #     Usage (Symbology Identifier 1)
        0x09, 0xFC,        #     Usage (Symbology Identifier 2)
        0x09, 0xFD,        #     Usage (Symbology Identifier 3)
        0x95, 0x03,        #     Report Count (3)
        0x81, 0x02,        #     Input (Data, Var, Abs)
        0x09, 0xFE,        #     Usage (Decoded Data)
        0x95, 0x38,        #     Report Count (56)
        0x82, 0x02, 0x01,  #     Input (Data, Var, Abs, Buffered Bytes)
        0x06, 0x66, 0xFF,  #     Usage Page (vendor)
        0x09, 0x02,        #     Usage (Code ID)
        0x09, 0x03,        #     Usage (reserved)
        0x95, 0x02,        #     Report Count (2)
        0x81, 0x02,        #     Input (Data, Var, Abs)
        0x05, 0x8C,        #     Usage Page (Bar Code Scanner)
        0x09, 0xFF,        #     Usage (Decode Data Continued)
        0x25, 0x01,        #     Logical Maximum (1)
        0x75, 0x01,        #     Report Size (1)
        0x95, 0x01,        #     Report Count (1)
        0x81, 0x02,        #     Input (Data, Var, Abs)
        0x75, 0x07,        #     Report Size (7)
        0x81, 0x03,        #     Input (Const) padding
        0xC0,              #   End Collection
        0x85, 0x04,        #   Report ID (4): trigger, an output report
        0x09, 0x14,        #   Usage (Trigger Report)
        0x75, 0x08,
        0x95, 0x01,
        0x91, 0x02,        #   Output (Data, Var, Abs)
        0xC0,              # End Collection
    ]
)  # fmt: skip

GS1_DATAMATRIX_300 = (
    "01" + gtin14(7) + "17271231" + "10" + "LOT-2026-A" + GS + "21" + "S" * 19 + GS
    + "91" + "X" * 90 + GS + "92" + "Y" * 90 + GS + "93" + "Z" * 53
)  # fmt: skip


def _assemble(reports: list[bytes], layout: ReportLayout = HONEYWELL) -> list[bytes]:
    assembler = ScanAssembler(layout)
    return [p for r in reports if (p := assembler.feed(r)) is not None]


def test_the_descriptor_locates_the_honeywell_layout() -> None:
    assert layout_from_descriptor(SCANNER_DESCRIPTOR) == HONEYWELL


def test_a_descriptor_without_aim_bytes_or_byte_count() -> None:
    # A Newland-like layout: data at bytes 2-57 (after the id and a vendor byte), no AIM, no count.
    desc = bytes([0x05, 0x8C, 0x09, 0x02, 0xA1, 0x01, 0x85, 0x03, 0x75, 0x08, 0x95, 0x01, 0x06, 0x66, 0xFF,
                  0x09, 0x05, 0x81, 0x02, 0x05, 0x8C, 0x09, 0xFE, 0x95, 0x38, 0x81, 0x02, 0xC0])  # fmt: skip
    layout = layout_from_descriptor(desc)
    assert layout == ReportLayout(3, 58, 1, None, 2, 56, None)
    assert layout_from_descriptor(bytes([0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0xC0])) is None  # a keyboard
    assert layout_from_descriptor(b"\xff\xff\x00") is None  # garbage


@pytest.mark.parametrize("size", [1, 55, 56, 57, 112, 113, 300])
def test_payload_lengths_round_trip(size: int) -> None:
    payload = bytes((i * 7 + 33) % 256 for i in range(size))
    reports = make_reports(payload, HONEYWELL, b"]d2")
    assert len(reports) == -(-size // 56)
    assert all(len(r) == 64 for r in reports)
    assert _assemble(reports) == [b"]d2" + payload]


def test_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    assert len(make_reports(GS1_DATAMATRIX_300.encode())) == 6
    payloads = [GS1_DATAMATRIX_300.encode(), b"x" * 56, b"y" * 57, f"{RS}{GS}{EOT}ÅÄÖ€".encode()]
    stream = b"".join(r for p in payloads for r in make_reports(p, HONEYWELL, b"]d2"))
    expected = [b"]d2" + p for p in payloads]
    splitter = ReportSplitter(64)
    assert _assemble(splitter.feed(stream)) == expected
    splitter, assembler, got = ReportSplitter(64), ScanAssembler(), []
    for b in stream:
        for report in splitter.feed(bytes([b])):
            if (p := assembler.feed(report)) is not None:
                got.append(p)
    assert got == expected
    # trailing bytes: a whole scan then the first 10 bytes of the next report wait for the rest
    splitter, assembler = ReportSplitter(64), ScanAssembler()
    tail = make_reports(b"NEXT", HONEYWELL, b"]C0")[0]
    first = [p for r in splitter.feed(stream[: 64 * 6] + tail[:10]) if (p := assembler.feed(r))]
    assert first == [expected[0]]
    second = [p for r in splitter.feed(tail[10:]) if (p := assembler.feed(r))]
    assert second == [b"]C0NEXT"]


def test_foreign_and_empty_reports_are_ignored_even_inside_a_long_scan() -> None:
    long = make_reports(b"A" * 100, HONEYWELL, b"]C0")
    empty = make_reports(b"", HONEYWELL, b"]C0")[0]
    foreign = bytes([0x04, 0x01]) + bytes(62)
    assembler = ScanAssembler()
    got = [assembler.feed(r) for r in [empty, long[0], foreign, long[1], empty, foreign]]
    assert got == [None, None, None, b"]C0" + b"A" * 100, None, None]
    assert assembler.ignored == 4


def test_access_is_example_from_the_reference() -> None:
    first = bytes([0x02, 0x38, 0x5D, 0x51, 0x30]) + b"Q" * 56 + bytes([0, 0, 0x01])
    second = bytes([0x02, 0x04, 0x5D, 0x51, 0x30]) + b"TAIL" + bytes(52) + bytes([0, 0, 0x00])
    assert _assemble([first, second]) == [b"]Q0" + b"Q" * 56 + b"TAIL"]


def test_decode_sees_the_symbology_as_from_a_serial_scanner() -> None:
    code = sscc(5)
    (payload,) = _assemble(make_reports(f"00{code}{GS}42000180".encode(), HONEYWELL, b"]C1"))
    d = Decoder().decode(payload)
    assert d.symbology == "]C1" and d.kind == "gs1" and d.keys == {"sscc": code}


def test_driver_reads_the_simulator_through_a_fifo_with_faults_and_unplug(tmp_path: Path) -> None:
    fifo = tmp_path / "s3.reports"
    lines = [
        "]d2" + GS1_DATAMATRIX_300,
        "]C0" + "5" * 56,
        "]C0" + "7" * 57,
        r"]d2[)>\x1e06\x1dKSO-1\x1e\x04",
        "]Q1ÅÄÖ ünïcödé €",
        "!empty",
        "!foreign",
        "!unplug 0.3",
        "]C0AFTER-UNPLUG",
        "!partial " + "P" * 80,
        "PLAIN",
    ]
    payload_file = tmp_path / "p.txt"
    payload_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sim = subprocess.Popen(
        sim_cmd("hidpos-scanner", "--fifo", str(fifo), "--file", str(payload_file), "--rate", "0",
                "--escapes", "--unplug-s", "0.3"),
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_until(fifo.exists, timeout=10, what="the simulator's FIFO")

    async def main() -> list[bytes]:
        driver = HidPosScanner("s3", str(fifo), reopen_max_s=0.2)
        await driver.open()
        return await collect_scans(driver, 7)

    got = asyncio.run(main())
    out, _ = sim.communicate(timeout=20)
    assert '"unplugged"' in out and '"returned"' in out and '"sent_foreign"' in out
    assert got == [
        b"]d2" + GS1_DATAMATRIX_300.encode(),
        b"]C0" + b"5" * 56,
        b"]C0" + b"7" * 57,
        b"]d2[)>\x1e06\x1dKSO-1\x1e\x04",
        "]Q1ÅÄÖ ünïcödé €".encode(),
        b"]C0AFTER-UNPLUG",
        b"]C0PLAIN",  # the partial scan cut by the unplug is dropped, not glued to the next
    ]
    assert len(GS1_DATAMATRIX_300) == 300
    d = Decoder().decode(got[0])
    assert d.kind == "gs1" and d.valid and d.symbology == "]d2" and d.keys == {"gtin": gtin14(7)}


def test_missing_device_is_retried_until_it_appears(tmp_path: Path) -> None:
    fifo = tmp_path / "later.reports"

    async def main() -> list[bytes]:
        driver = HidPosScanner("s3", str(fifo), reopen_max_s=0.2)
        await driver.open()  # logs unavailable, does not raise
        sim = await asyncio.create_subprocess_exec(
            *sim_cmd("hidpos-scanner", "--fifo", str(fifo), "--linger", "1", "LATE-1"), cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        got = await collect_scans(driver, 1)
        await sim.wait()
        return got

    assert asyncio.run(main()) == [b"]C0LATE-1"]


def test_hidraw_path_reads_the_descriptor_and_redirects_output(mocker: Any, tmp_path: Path) -> None:
    """A character device stands for /dev/hidraw0 (a pty's slave side: readable, sends nothing),
    and `fcntl.ioctl` is mocked because the hidraw ioctls need a real HID device."""
    calls: list[int] = []

    def fake_ioctl(fd: int, request: int, buf: bytearray) -> int:
        calls.append(request)
        if request == HIDIOCGRDESCSIZE:
            buf[:4] = len(SCANNER_DESCRIPTOR).to_bytes(4, "little")
        elif request == HIDIOCGRDESC:
            buf[4 : 4 + len(SCANNER_DESCRIPTOR)] = SCANNER_DESCRIPTOR
        else:
            assert bytes(buf) == b"\xfe\x01"  # Honeywell's output redirection
        return 0

    mocker.patch("drivers.scanners.hidpos.fcntl.ioctl", side_effect=fake_ioctl)

    master, slave = os.openpty()

    async def main() -> ReportLayout:
        driver = HidPosScanner("s3", os.ttyname(slave))
        await driver.open()
        assert driver.connected
        layout = driver._assembler.layout
        await driver.close()
        return layout

    try:
        assert asyncio.run(main()) == HONEYWELL
    finally:
        os.close(master)
        os.close(slave)
    assert calls[:2] == [HIDIOCGRDESCSIZE, HIDIOCGRDESC] and len(calls) == 3
