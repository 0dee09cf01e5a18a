"""A dock scale speaking one of four wire protocols, byte for byte (../shared/reference/scales.md).

- `--protocol sics`: Mettler Toledo MT-SICS on a pty. Answers `SI` (`S S`/`S D` with the
  10-character weight field), `S` (the stable weight, or `S I` when it cannot settle), `@` and
  power-on (`I4 A "..."`), `S +` / `S -` when overloaded or with the pan off, `ES` otherwise.
- `--protocol toledo8217`: the scanner-scale protocol on a pty. `W` gets `<STX>01.234<CR>` (kg,
  three decimals; `--unit lb`: two) when stable, else `<STX>?<status><CR>` with the motion, over
  capacity or under zero bit; `E`/`F` echo on and off; anything else the status.
- `--protocol continuous`: a line every `--interval` seconds on a pty, `ST,GS,+  1.234kg`
  (`US` in motion, `OL` overloaded).
- `--protocol hid`: 6-byte HID POS scale data reports written into a FIFO (`--fifo`), as a Dymo
  or Mettler PS60 sends them through hidraw: report 3, status, unit g, exponent 0, weight.

Weights and faults arrive on stdin: `!weight 950` (grams, placed and settled after
`--settle-s`), `!motion [S]` (moving for S seconds, even if a weight is placed meanwhile; without S
until the next `!weight` settles), `!overload`,
`!underload`, `!unplug [S]` (the port or FIFO vanishes and comes back after S seconds). Each is
reported on stdout as a JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import select
import sys
import time
import tty
from pathlib import Path
from typing import Any

from simulators.wire import emit, point_link

STX, CR = b"\x02", b"\r"
UNTIL_PLACED = float("inf")  # `!motion` without seconds: moving until the next `!weight`


class Scale:
    def __init__(self, settle_s: float) -> None:
        self.grams = 0.0
        self.settle_s = settle_s
        self.moving_until = 0.0
        self.fault: str | None = None  # "overload" | "underload"

    def place(self, grams: float) -> None:
        self.grams = grams
        self.fault = None
        settled_at = time.monotonic() + self.settle_s
        # a timed `!motion` (the pan still swinging) outlasts a parcel put on during it; an untimed one
        # lasts only until this parcel
        timed = self.moving_until < UNTIL_PLACED
        self.moving_until = max(self.moving_until, settled_at) if timed else settled_at

    @property
    def moving(self) -> bool:
        return time.monotonic() < self.moving_until

    def reading(self) -> float:
        """What the load cell says now: off by a little while it settles."""
        return self.grams + (7.5 if self.moving else 0.0)


def sics_weight(status: str, grams: float, unit: str) -> bytes:
    value = grams / 1000.0 if unit == "kg" else grams
    field = f"{value:.3f}" if unit == "kg" else f"{value:.2f}"
    return f"S {status} {field:>10} {unit}\r\n".encode("ascii")


def sics_reply(scale: Scale, command: str, unit: str) -> bytes:
    if command == "@":
        return b'I4 A "SIM0000001"\r\n'
    if command not in ("S", "SI"):
        return b"ES\r\n"
    if scale.fault == "overload":
        return b"S +\r\n"
    if scale.fault == "underload":
        return b"S -\r\n"
    if scale.moving:
        return b"S I\r\n" if command == "S" else sics_weight("D", scale.reading(), unit)
    return sics_weight("S", scale.grams, unit)


def toledo_status(scale: Scale) -> bytes:
    bits = 0x40 | (0x01 if scale.moving else 0) | (0x02 if scale.fault == "overload" else 0)
    bits |= 0x04 if scale.fault == "underload" else 0
    return STX + b"?" + bytes([bits]) + CR


def toledo_reply(scale: Scale, command: bytes, unit: str) -> bytes:
    if command != b"W" or scale.moving or scale.fault:
        return toledo_status(scale)
    if unit == "lb":
        return STX + f"{scale.grams / 453.59237:05.2f}".encode() + CR
    return STX + f"{scale.grams / 1000.0:06.3f}".encode() + CR


def continuous_line(scale: Scale) -> bytes:
    if scale.fault == "overload":
        return b"OL,GS,+9999999E+19\r\n"
    head = "US" if scale.moving else "ST"
    grams = -abs(scale.grams) if scale.fault == "underload" else scale.reading()
    return f"{head},GS,{'+' if grams >= 0 else '-'}{abs(grams) / 1000.0:7.3f}kg\r\n".encode("ascii")


def hid_report(scale: Scale) -> bytes:
    status = 6 if scale.fault == "overload" else 5 if scale.fault == "underload" else 3 if scale.moving else 4
    raw = max(0, min(0xFFFF, round(scale.reading())))
    if status == 4 and raw == 0:
        status = 2  # stable at zero
    return bytes([3, status, 2, 0, raw & 0xFF, raw >> 8])


class Port:
    """A pty behind a symlink (the serial protocols) or a FIFO (hid), that can be unplugged."""

    def __init__(self, link: Path, fifo: bool) -> None:
        self.link = link
        self.fifo = fifo
        self.fd = -1

    def plug(self) -> None:
        if self.fifo:
            with contextlib.suppress(FileExistsError):
                os.mkfifo(self.link, 0o660)
            # read-write: opening never blocks and a reader that comes later still gets what is written
            self.fd = os.open(self.link, os.O_RDWR | os.O_NONBLOCK)
            return
        master, slave = pty.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.close(slave)
        # non-blocking: select reports the master readable while no slave is open (a hangup), and
        # a blocking read after the agent opened the port in that instant would wait for ever
        os.set_blocking(master, False)
        self.fd = master
        point_link(self.link, name)

    def unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def write(self, data: bytes) -> None:
        if self.fd >= 0:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self.fd, data)


def run(args: argparse.Namespace) -> int:
    fifo = args.protocol == "hid"
    path = Path(args.fifo if fifo else args.link)
    scale = Scale(args.settle_s)
    port = Port(path, fifo)
    port.plug()
    emit("ready", protocol=args.protocol, path=str(path))
    if args.protocol == "sics":
        port.write(b'I4 A "SIM0000001"\r\n')  # what a balance sends at power-on
    inbox = bytearray()
    echo = False
    replug_at = 0.0
    next_push = time.monotonic()
    try:
        stdin_open = True
        while True:
            now = time.monotonic()
            if port.fd < 0 and replug_at and now >= replug_at:
                port.plug()
                replug_at = 0.0
                emit("returned")
            if args.protocol in ("continuous", "hid") and port.fd >= 0 and now >= next_push:
                port.write(continuous_line(scale) if args.protocol == "continuous" else hid_report(scale))
                next_push = now + args.interval
            watch: list[Any] = [sys.stdin] if stdin_open else []
            if port.fd >= 0 and not fifo:
                watch.append(port.fd)
            ready, _, _ = select.select(watch, [], [], 0.02)
            if sys.stdin in ready:
                line = sys.stdin.readline()
                if not line:
                    stdin_open = False
                    if not args.stay:
                        break
                    continue
                words = line.split()
                if not words:
                    continue
                cmd = words[0]
                if cmd == "!weight" and len(words) > 1:
                    scale.place(float(words[1]))
                elif cmd == "!motion":
                    scale.moving_until = now + float(words[1]) if len(words) > 1 else UNTIL_PLACED
                elif cmd in ("!overload", "!underload"):
                    scale.fault = cmd[1:]
                elif cmd == "!unplug":
                    port.unplug()
                    replug_at = now + (float(words[1]) if len(words) > 1 else 2.0)
                else:
                    emit("error", message=f"unknown command {cmd!r}")
                    continue
                emit("done", command=line.strip(), grams=scale.grams, moving=scale.moving, fault=scale.fault)
            if port.fd >= 0 and port.fd in ready:
                try:
                    inbox += os.read(port.fd, 256)
                except OSError:  # nothing after all, or no reader on the slave side yet (EIO)
                    time.sleep(0.005)
                    continue
                if args.protocol == "sics":
                    while (end := inbox.find(b"\n")) >= 0:
                        command = inbox[:end].strip().decode("ascii", "replace")
                        del inbox[: end + 1]
                        if command:
                            port.write(sics_reply(scale, command, args.unit or "g"))
                elif args.protocol == "toledo8217":
                    for byte in bytes(inbox):
                        letter = bytes([byte])
                        if letter == b"E":
                            echo = True
                            port.write(STX + b"E" + CR)
                        elif letter == b"F":
                            echo = False
                            port.write(STX + b"F" + CR)
                        elif echo:
                            port.write(letter)
                        else:
                            port.write(toledo_reply(scale, letter, args.unit or "kg"))
                    inbox.clear()
                else:
                    inbox.clear()  # a continuous scale ignores what it is sent
    except KeyboardInterrupt:
        pass
    finally:
        port.unplug()  # the link goes with the scale: left, a later pty of that number would be read through it
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", choices=("sics", "toledo8217", "continuous", "hid"), required=True)
    p.add_argument("--link", help="symlink to the pty (serial protocols)")
    p.add_argument("--fifo", help="FIFO for the HID reports (--protocol hid)")
    p.add_argument("--unit", choices=("g", "kg", "lb"), help="sics: g (default) or kg; toledo8217: kg or lb")
    p.add_argument("--interval", type=float, default=0.1, help="continuous, hid: seconds between readings")
    p.add_argument(
        "--settle-s", type=float, default=0.3, help="how long a placed weight moves before it is stable"
    )
    p.add_argument("--stay", action="store_true", help="keep running when stdin closes")
    p.set_defaults(func=run)
