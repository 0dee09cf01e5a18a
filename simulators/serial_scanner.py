"""A serial barcode scanner on a real pty.

It opens a pseudo-terminal, keeps a stable symlink (`--link`) pointing at the pty's slave like a
udev rule keeps `/dev/edge-agent/scanner-s1`, and types payloads into it, each followed by its
terminator. Faults, scheduled by flags or typed on stdin as `!command` lines:

- `!noise`: a burst of line noise (control bytes) ending in CR;
- `!split PAYLOAD`: the payload written in three pieces with pauses between them;
- `!hangup [SECONDS]`: half of the next frame is written, the pty is closed (the reader sees EIO,
  as on an unplug), and after SECONDS a new pty appears behind the same symlink.

Every action is reported on stdout as a JSON line (`ready`, `sent`, `hangup`, `returned`, `noise`)
so a test knows exactly which payloads were sent whole.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import random
import select
import struct
import termios
import time
import tty
from pathlib import Path

from simulators.wire import add_payload_source, emit, payloads, point_link

UNCONFIGURED = termios.B50

TERMINATORS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}


class PtyScanner:
    def __init__(
        self, link: Path, terminator: bytes, prefix: bytes, suffix: bytes, wait_reader: bool
    ) -> None:
        self.link = link
        self.terminator = terminator
        self.prefix = prefix
        self.suffix = suffix
        self.wait_reader = wait_reader
        self.master = -1
        self.slave_name = ""
        self.sent = 0

    def plug(self) -> None:
        master, slave = pty.openpty()
        tty.setraw(slave)  # no echo, no line editing: the bytes go through as a UART's would
        # A line speed no reader asks for: when it changes, the reader has set the port up (and
        # pyserial flushes the input right after), so typing may begin.
        attrs = termios.tcgetattr(slave)
        attrs[4] = attrs[5] = UNCONFIGURED
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.slave_name = os.ttyname(slave)
        os.close(slave)
        self.master = master
        point_link(self.link, self.slave_name)

    def unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def reader_present(self) -> bool:
        poller = select.poll()
        poller.register(self.master, select.POLLOUT)
        return not any(ev & select.POLLHUP for _, ev in poller.poll(0))

    def wait_for_reader(self, timeout: float = 60.0) -> bool:
        if self.reader_present():
            return True
        deadline = time.monotonic() + timeout
        while not self.reader_present():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        # The reader has just opened the port; pyserial flushes its input after setting the port
        # up, so bytes typed before then would vanish (a person cannot scan that fast anyway). A
        # loaded machine can take longer than any fixed pause: wait for the reader's line speed.
        deadline = time.monotonic() + 5.0
        while termios.tcgetattr(self.master)[4] == UNCONFIGURED and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        return True

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until the reader has taken every byte typed so far."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline and quiet < 3:
            try:
                fd = os.open(self.slave_name, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                return
            try:
                pending = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
            finally:
                os.close(fd)
            quiet = quiet + 1 if pending == 0 else 0
            time.sleep(0.02)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.master, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            view = view[n:]

    def frame(self, payload: str) -> bytes:
        return self.prefix + payload.encode("utf-8") + self.suffix + self.terminator

    def send(self, payload: str, split: bool = False) -> None:
        if self.wait_reader:
            self.wait_for_reader()
        data = self.frame(payload)
        if split and len(data) >= 3:
            a, b = len(data) // 3, 2 * len(data) // 3
            for piece in (data[:a], data[a:b], data[b:]):
                self.write(piece)
                time.sleep(0.03)
        else:
            self.write(data)
        self.sent += 1
        emit("sent", n=self.sent, payload=payload, whole=True, split=split)

    def noise(self, rng: random.Random) -> None:
        if self.wait_reader:
            self.wait_for_reader()
        junk = bytes(rng.choice(b"\x00\x01\x02\x07\x08\x15\x7f\xff") for _ in range(rng.randint(1, 12)))
        self.write(junk + b"\r")
        emit("noise", bytes=junk.hex())

    def hangup(self, next_payload: str | None, seconds: float) -> None:
        if self.wait_reader:
            self.wait_for_reader()
        if next_payload is not None:
            data = self.frame(next_payload)
            self.write(data[: max(1, len(data) // 2)])
            emit("sent", n=None, payload=next_payload, whole=False, split=False)
        self.drain()
        self.unplug()
        emit("hangup", seconds=seconds)
        time.sleep(seconds)
        self.plug()
        emit("returned", pty=self.slave_name, link=str(self.link))


def run(args: argparse.Namespace) -> int:
    terminator = TERMINATORS[args.terminator]
    scanner = PtyScanner(
        Path(args.link), terminator, args.prefix.encode(), args.suffix.encode(), not args.no_wait
    )
    scanner.link.parent.mkdir(parents=True, exist_ok=True)
    scanner.plug()
    emit("ready", pty=scanner.slave_name, link=str(scanner.link))
    rng = random.Random(args.seed)
    hangups = {int(n) for n in args.hangup_at.split(",") if n} if args.hangup_at else set()
    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    count = 0
    try:
        source = payloads(args)
        for payload in source:
            if payload.startswith("!"):
                command, _, rest = payload[1:].partition(" ")
                if command == "noise":
                    scanner.noise(rng)
                elif command == "split":
                    scanner.send(rest, split=True)
                elif command == "hangup":
                    scanner.hangup(None, float(rest or args.hangup_s))
                else:
                    emit("error", message=f"unknown command {command!r}")
                continue
            count += 1
            if count in hangups:
                scanner.hangup(payload, args.hangup_s)
                continue
            if args.noise_every and count % args.noise_every == 0:
                scanner.noise(rng)
            scanner.send(payload, split=bool(args.split_every and count % args.split_every == 0))
            if interval:
                time.sleep(interval)
        scanner.drain()
        emit("done", sent=scanner.sent)
        if args.linger:
            time.sleep(args.linger)
    except KeyboardInterrupt:
        pass
    finally:
        scanner.unplug()
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--link", required=True, help="stable path (symlink) to the scanner's pty")
    add_payload_source(p, rate=10.0)
    p.add_argument("--terminator", choices=sorted(TERMINATORS), default="crlf")
    p.add_argument("--prefix", default="", help="characters sent before each payload")
    p.add_argument("--suffix", default="", help="characters sent after each payload, before the terminator")
    p.add_argument("--noise-every", type=int, default=0, help="line noise before every Nth payload")
    p.add_argument("--split-every", type=int, default=0, help="write every Nth payload in pieces")
    p.add_argument("--hangup-at", default="", help="comma-separated payload numbers cut by a hang-up")
    p.add_argument("--hangup-s", type=float, default=1.0, help="seconds the scanner stays unplugged")
    p.add_argument("--no-wait", action="store_true", help="type even when nobody has the port open")
    p.add_argument("--linger", type=float, default=0.0, help="seconds to keep the pty open at the end")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=run)
