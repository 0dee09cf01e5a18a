"""A label printer on raw TCP (port 9100) or on a pty, speaking ZPL or ESC/POS.

It keeps every job it receives (in memory, and as files with `--jobs-dir`), answers `~HS` and
`~HQES` (ZPL) or DLE EOT n (ESC/POS) from its current state, and takes faults on a control
channel (TCP `--control-port`, or stdin), one command per line, answered with a JSON line:

    paper_out on|off    head_open on|off    paused on|off    ribbon_out on|off
    drop_next N         close the next job's connection after N bytes of it
    slow SECONDS        answer status requests that late
    garbage on|off      answer status requests with garbage
    stats               jobs received, labels, bytes, jobs received while not ready, beeps,
                        TCP connections accepted and still open

A Zebra out of paper may stay silent on `~HS`; so does this one (`--quiet-when-out`, default on
for ZPL). Events go to stdout as JSON lines (`ready`, `job`, `state`, and `buzzer` when an ESC/POS
printer is sent ESC B n t alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pty
import socket
import stat
import struct
import sys
import tty
from pathlib import Path
from typing import Any

from drivers.printers.escpos_status import realtime_answer
from drivers.printers.zpl_status import host_status
from simulators.wire import emit, point_link


class PrinterState:
    def __init__(self, lang: str, jobs_dir: Path | None, quiet_when_out: bool) -> None:
        self.lang = lang
        self.jobs_dir = jobs_dir
        self.quiet_when_out = quiet_when_out
        self.flags = {
            "paper_out": False,
            "head_open": False,
            "paused": False,
            "ribbon_out": False,
            "garbage": False,
        }
        self.slow_s = 0.0
        self.drop_next: int | None = None
        self.jobs: list[bytes] = []
        self.labels = 0
        self.not_ready_jobs = 0
        self.status_queries = 0
        self.dropped = 0
        self.beeps = 0
        self.connections = 0
        self.open_connections = 0

    @property
    def ready(self) -> bool:
        return not any(self.flags[k] for k in ("paper_out", "head_open", "paused", "ribbon_out"))

    def status_answer(self, query: bytes) -> bytes | None:
        self.status_queries += 1
        if self.flags["garbage"]:
            if self.lang == "zpl":  # framed like an answer, but not one
                return b"\x02\xff\x00garbage\x03\x02,,\x03\x02??\x03\r\n"
            return b"\xff\x00garbage\x13\x37"
        if self.lang == "zpl":
            if self.quiet_when_out and self.flags["paper_out"]:
                return None
            if query == b"~HQES":
                errors = (1 if self.flags["paper_out"] else 0) | (4 if self.flags["head_open"] else 0)
                errors |= 2 if self.flags["ribbon_out"] else 0
                return (f"\x02\r\n PRINTER STATUS\r\n ERRORS: {int(bool(errors))} 00000000 {errors:08X}\r\n"
                        " WARNINGS: 0 00000000 00000000\r\n\x03\r\n").encode()  # fmt: skip
            return host_status(paper_out=self.flags["paper_out"], paused=self.flags["paused"],
                               head_open=self.flags["head_open"], ribbon_out=self.flags["ribbon_out"])  # fmt: skip
        n = query[2]
        return realtime_answer(n, cover_open=self.flags["head_open"], paper_out=self.flags["paper_out"])

    def split(self, data: bytes) -> tuple[bytes, list[bytes]]:
        """Job bytes without the status queries in them, and the queries in order."""
        queries: list[bytes] = []
        if self.lang == "zpl":
            for token in (b"~HQES", b"~HS"):
                while token in data:
                    queries.append(token)
                    data = data.replace(token, b"", 1)
            return data, queries
        out = bytearray()
        i = 0
        while i < len(data):
            if data[i : i + 2] == b"\x10\x04" and i + 2 < len(data):
                queries.append(data[i : i + 3])
                i += 3
            else:
                out.append(data[i])
                i += 1
        return bytes(out), queries

    def record(self, job: bytes, complete: bool = True) -> None:
        if not job.strip():
            return
        beeps = buzzer_only(job) if self.lang == "escpos" else None
        if beeps is not None:  # a buzzer between jobs sounds; no paper moves
            self.beeps += sum(n for n, _ in beeps)
            emit("buzzer", beeps=[n for n, _ in beeps], durations=[t for _, t in beeps], ready=self.ready)
            return
        if not complete:
            self.dropped += 1
        labels = job.count(b"^XZ") if self.lang == "zpl" else max(1, job.count(b"\x1dV"))
        if not self.ready:
            self.not_ready_jobs += 1
        self.jobs.append(job)
        self.labels += labels if complete else 0
        if self.jobs_dir is not None:
            (
                self.jobs_dir / f"job-{len(self.jobs):06d}.{'zpl' if self.lang == 'zpl' else 'bin'}"
            ).write_bytes(job)
        emit("job", n=len(self.jobs), bytes=len(job), labels=labels, complete=complete, ready=self.ready)

    def control(self, line: str) -> dict[str, Any]:
        words = line.split()
        if not words:
            return {"ok": False, "error": "empty command"}
        cmd, arg = words[0], (words[1] if len(words) > 1 else "")
        if cmd in self.flags:
            self.flags[cmd] = arg != "off"
            emit("state", **self.flags)
        elif cmd == "drop_next":
            self.drop_next = int(arg or 10)
        elif cmd == "slow":
            self.slow_s = float(arg or 0)
        elif cmd != "stats":
            return {"ok": False, "error": f"unknown command {cmd!r}"}
        return {"ok": True, "jobs": len(self.jobs), "labels": self.labels, "bytes": sum(map(len, self.jobs)),
                "not_ready_jobs": self.not_ready_jobs, "status_queries": self.status_queries, "dropped": self.dropped, "beeps": self.beeps,
                "connections": self.connections, "open_connections": self.open_connections, **self.flags}  # fmt: skip


def buzzer_only(data: bytes) -> list[tuple[int, int]] | None:
    """(beeps, duration) of each ESC B n t, when `data` holds nothing else."""
    if not data or len(data) % 4:
        return None
    out = []
    for i in range(0, len(data), 4):
        if data[i : i + 2] != b"\x1bB":
            return None
        out.append((data[i + 2], data[i + 3]))
    return out


async def serve_tcp(state: PrinterState, port: int) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        job = bytearray()
        drop_at: int | None = None
        state.connections += 1
        state.open_connections += 1
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data, queries = state.split(chunk)
                for q in queries:
                    if state.slow_s:
                        await asyncio.sleep(state.slow_s)
                    answer = state.status_answer(q)
                    if answer is not None:
                        writer.write(answer)
                        await writer.drain()
                job += data
                if job and drop_at is None and state.drop_next is not None:
                    drop_at, state.drop_next = state.drop_next, None  # the next job, not a status query
                if drop_at is not None and len(job) >= drop_at:
                    state.record(bytes(job[:drop_at]), complete=False)
                    sock = writer.get_extra_info("socket")
                    if sock is not None:  # a reset, as a printer losing power sends, not a polite close
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
            state.record(bytes(job))
        except (ConnectionError, OSError):
            state.record(bytes(job), complete=False)
        finally:
            state.open_connections -= 1
            with contextlib.suppress(OSError):
                writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def serve_pty(state: PrinterState, link: Path) -> None:
    master, slave = pty.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    point_link(link, name)
    emit("pty", pty=name, link=str(link))
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        with contextlib.suppress(OSError):
            queue.put_nowait(os.read(master, 65536))

    loop.add_reader(master, readable)
    try:
        await _take_jobs(state, queue, master)
    finally:  # the link goes with the printer (simulators/cli.py says why)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)


async def _take_jobs(state: PrinterState, queue: asyncio.Queue[bytes], master: int) -> None:
    pending = bytearray()
    end = b"^XZ" if state.lang == "zpl" else b"\x1dV"
    while True:
        data, queries = state.split(await queue.get())
        for q in queries:
            answer = state.status_answer(q)
            if answer is not None:
                os.write(master, answer)
        pending += data
        while True:
            if len(pending) >= 4 and buzzer_only(bytes(pending[:4])):
                cut = 4
            elif end in pending:
                cut = pending.index(end) + len(end) + (0 if state.lang == "zpl" else 1)
            else:
                break
            state.record(bytes(pending[:cut]))
            del pending[:cut]


async def serve_control(state: PrinterState, port: int | None) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write((json.dumps(state.control(line.decode().strip())) + "\n").encode())
            await writer.drain()
        writer.close()

    if port is not None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        emit("control", port=server.sockets[0].getsockname()[1])
    loop = asyncio.get_running_loop()
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if stat.S_ISFIFO(mode) or (stat.S_ISCHR(mode) and sys.stdin.isatty()):
        stdin = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
        while line := await stdin.readline():
            emit("control", reply=state.control(line.decode().strip()))
    await asyncio.Event().wait()


async def main(args: argparse.Namespace) -> None:
    jobs_dir = Path(args.jobs_dir) if args.jobs_dir else None
    if jobs_dir:
        jobs_dir.mkdir(parents=True, exist_ok=True)
    quiet = args.lang == "zpl" if args.quiet_when_out is None else args.quiet_when_out == "on"
    state = PrinterState(args.lang, jobs_dir, quiet)
    tasks = []
    if args.pty:
        tasks.append(asyncio.create_task(serve_pty(state, Path(args.pty))))
    else:
        server = await serve_tcp(state, args.port)
        emit("ready", port=server.sockets[0].getsockname()[1], lang=args.lang)
    tasks.append(asyncio.create_task(serve_control(state, args.control_port)))
    await asyncio.gather(*tasks)


def run(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args))
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", choices=("zpl", "escpos"), default="zpl")
    p.add_argument("--port", type=int, default=9100, help="raw TCP port (0: any free port)")
    p.add_argument("--pty", help="serve on a pty instead, behind this symlink")
    p.add_argument("--control-port", type=int, help="TCP port for fault commands (0: any free port)")
    p.add_argument("--jobs-dir", help="keep every job as a file here")
    p.add_argument("--quiet-when-out", choices=("on", "off"), help="no ~HS answer while out of paper")
    p.set_defaults(func=run)
