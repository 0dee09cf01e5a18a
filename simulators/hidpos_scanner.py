"""A USB HID POS scanner (usage page 0x8C): real 64-byte input reports in Honeywell's layout.

The reports go into a FIFO (`--fifo PATH`) that the agent's `hidpos` driver reads in its
simulation mode, as it would read /dev/hidrawN. A payload longer than 56 bytes is split over
several reports with the "more follows" bit set. A payload that starts with an AIM symbology
identifier (`]C1...`) sends it in the report's symbology field; others get `--symbology`.
`--escapes` reads `\\xHH` in payloads as that byte, so GS, RS, EOT and any byte can be sent.

Faults, as payload lines (arguments, `--file` or standard input):
`!unplug [SECONDS]` closes the FIFO (an unplug) and opens it again after SECONDS;
`!empty` sends a report with no data; `!foreign` sends a report with another report id
(a trigger report); `!partial` sends the first report of a long payload and then unplugs.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from pathlib import Path

from drivers.scanners.hidpos_reports import HONEYWELL, make_reports
from simulators.hid_scanner import FifoKeyboard
from simulators.wire import add_payload_source, emit, payloads

_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})|\\\\")
_AIM = re.compile(rb"\][A-Za-z][0-9A-Za-z]")


def payload_bytes(text: str, escapes: bool) -> bytes:
    data = text.encode("utf-8")
    if escapes:
        data = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]) if m.group(1) else b"\\", data)
    return data


def reports_for(data: bytes, default_aim: bytes) -> list[bytes]:
    aim = default_aim
    if _AIM.match(data):
        aim, data = data[:3], data[3:]
    return make_reports(data, HONEYWELL, aim)


def run(args: argparse.Namespace) -> int:
    Path(args.fifo).parent.mkdir(parents=True, exist_ok=True)
    device = FifoKeyboard(Path(args.fifo))
    emit("waiting", fifo=args.fifo)
    device.plug()
    emit("ready", fifo=args.fifo)
    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    default_aim = args.symbology.encode("ascii")
    count = 0

    def replug(seconds: float) -> None:
        device.unplug()
        emit("unplugged")
        time.sleep(seconds)
        device.plug()
        emit("returned")

    try:
        for payload in payloads(args):
            word, _, rest = payload.partition(" ")
            if word == "!unplug":
                replug(float(rest or args.unplug_s))
                continue
            if word == "!empty":
                device.write(make_reports(b"", HONEYWELL, default_aim)[0])
                emit("sent_empty")
                continue
            if word == "!foreign":
                trigger = bytearray(HONEYWELL.size)
                trigger[0], trigger[1] = 0x04, 0x01  # a trigger report, not scanned data
                device.write(bytes(trigger))
                emit("sent_foreign")
                continue
            if word == "!partial":
                device.write(reports_for(payload_bytes(rest or "x" * 100, args.escapes), default_aim)[0])
                emit("sent_partial")
                replug(args.unplug_s)
                continue
            count += 1
            reports = reports_for(payload_bytes(payload, args.escapes), default_aim)
            device.write(b"".join(reports))
            emit("sent", n=count, payload=payload, reports=len(reports))
            if interval:
                time.sleep(interval)
        emit("done", sent=count)
        if args.linger:
            time.sleep(args.linger)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        with contextlib.suppress(OSError):
            device.unplug()
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fifo", required=True, help="write 64-byte HID POS input reports into this FIFO")
    add_payload_source(p, rate=5.0)
    p.add_argument("--symbology", default="]C0", help="AIM identifier for payloads that carry none")
    p.add_argument("--escapes", action="store_true", help=r"read \xHH in payloads as that byte")
    p.add_argument("--unplug-s", type=float, default=1.0)
    p.add_argument("--linger", type=float, default=0.0)
    p.set_defaults(func=run)
