"""A USB HID (keyboard-wedge) scanner: real `struct input_event` records for a keymap.

With `--uinput` it creates a virtual keyboard through /dev/uinput (python-evdev's UInput), so
the agent reads a real /dev/input/eventN. Machines without /dev/uinput (containers, CI) use
`--fifo PATH`: the same records go into a FIFO that the agent's HID driver reads in its
simulation mode. `!unplug [SECONDS]` on stdin (or `--unplug-at N`) closes the FIFO, which the
driver sees as an unplug, and opens it again after SECONDS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import time
from pathlib import Path
from typing import Any

from drivers.scanners.hid_events import encode_text
from drivers.scanners.xkb import LayoutError, load_layout
from simulators.wire import add_payload_source, emit, payloads


class FifoKeyboard:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def plug(self) -> None:
        try:
            if not stat.S_ISFIFO(os.stat(self.path).st_mode):
                raise SystemExit(f"{self.path} exists and is not a FIFO")
        except FileNotFoundError:
            os.mkfifo(self.path, 0o660)
        self.fd = os.open(self.path, os.O_WRONLY)  # blocks until the agent opens it: "plugged in"

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def unplug(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class UinputKeyboard:
    """A virtual keyboard through /dev/uinput; needs the kernel module and permission."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ui: Any = None

    def plug(self) -> None:
        try:
            import evdev
        except ImportError:
            raise SystemExit(
                "edge-sim hid-scanner --uinput needs python-evdev: pip install 'dock-edge-agent[uinput]'"
            ) from None

        self.ui = evdev.UInput({evdev.ecodes.EV_KEY: list(range(1, 128))}, name=self.name)

    def write(self, data: bytes) -> None:
        from drivers.scanners.hid_events import InputEventParser

        assert self.ui is not None
        for event in InputEventParser().feed(data):
            self.ui.write(event.type, event.code, event.value)
            time.sleep(0.001)

    def unplug(self) -> None:
        if self.ui is not None:
            self.ui.close()
            self.ui = None


def run(args: argparse.Namespace) -> int:
    try:
        keymap = load_layout(args.keymap)
    except LayoutError as exc:
        raise SystemExit(f"edge-sim hid-scanner: {exc}") from None
    keyboard: FifoKeyboard | UinputKeyboard
    if args.uinput:
        keyboard = UinputKeyboard("edge-sim HID scanner")
    else:
        Path(args.fifo).parent.mkdir(parents=True, exist_ok=True)
        keyboard = FifoKeyboard(Path(args.fifo))
    emit("waiting", fifo=args.fifo, keymap=args.keymap)
    keyboard.plug()
    emit("ready", fifo=args.fifo, keymap=args.keymap)
    unplugs = {int(n) for n in args.unplug_at.split(",") if n} if args.unplug_at else set()
    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    count = 0
    try:
        for payload in payloads(args):
            if payload.startswith("!unplug"):
                _, _, rest = payload.partition(" ")
                keyboard.unplug()
                emit("unplugged")
                time.sleep(float(rest or args.unplug_s))
                keyboard.plug()
                emit("returned")
                continue
            count += 1
            if count in unplugs:
                keyboard.unplug()
                emit("unplugged")
                time.sleep(args.unplug_s)
                keyboard.plug()
                emit("returned")
            try:
                events = encode_text(keymap, payload, int(time.time() * 1_000_000), args.key_interval_us)
            except ValueError as exc:
                emit("error", message=str(exc), payload=payload)
                continue
            keyboard.write(b"".join(e.pack() for e in events))
            emit("sent", n=count, payload=payload)
            if interval:
                time.sleep(interval)
        emit("done", sent=count)
        if args.linger:
            time.sleep(args.linger)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        with contextlib.suppress(OSError):
            keyboard.unplug()
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--fifo", help="write input_event records into this FIFO (simulation mode)")
    target.add_argument("--uinput", action="store_true", help="create a virtual keyboard via /dev/uinput")
    p.add_argument("--keymap", default="us", help="any X keyboard layout: us, gb, de, de(nodeadkeys), ...")
    add_payload_source(p, rate=5.0)
    p.add_argument("--key-interval-us", type=int, default=1000, help="time between key events")
    p.add_argument("--unplug-at", default="", help="comma-separated payload numbers preceded by an unplug")
    p.add_argument("--unplug-s", type=float, default=1.0)
    p.add_argument("--linger", type=float, default=0.0)
    p.set_defaults(func=run)
