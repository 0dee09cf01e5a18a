"""Printer drivers against the printer simulator, a real process on real TCP sockets and ptys."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.printers import NotSent, PartlySent, printer_for
from tests.broker import free_port
from tests.harness import SimPrinter, wait_until_async


@pytest.fixture
def zebra(tmp_path: Path) -> Iterator[SimPrinter]:
    sim = SimPrinter("zpl", tmp_path)
    yield sim
    sim.close()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_zpl_tcp_status_follows_the_printer(zebra: SimPrinter) -> None:
    p = printer_for("tcp", "p1", "zpl", host="127.0.0.1", port=zebra.port, timeout_s=1.0)
    assert run(p.status()).state == "ready"
    zebra.control("head_open on")
    assert run(p.status()).state == "head_open"
    zebra.control("head_open off")
    zebra.control("paused on")
    assert run(p.status()).state == "paused"
    zebra.control("paused off")
    zebra.control("paper_out on")  # this Zebra stays silent when out of paper: never "ready"
    out = run(p.status())
    assert out.state == "offline" and "no status answer" in out.detail
    zebra.control("paper_out off")
    zebra.control("garbage on")
    assert run(p.status()).state == "error"
    zebra.control("garbage off")
    zebra.control("slow 2")
    assert run(p.status()).state == "offline"


def test_zpl_tcp_job_delivery_and_a_drop_mid_job(zebra: SimPrinter) -> None:
    p = printer_for("tcp", "p1", "zpl", host="127.0.0.1", port=zebra.port)
    label = b"^XA^FO50,50^A0N,40,40^FDhello^FS^XZ"
    run(p.send(label * 3))
    time.sleep(0.3)
    stats = zebra.control("stats")
    assert stats["jobs"] == 1 and stats["labels"] == 3 and stats["bytes"] == len(label) * 3
    zebra.control("drop_next 20")
    with pytest.raises(PartlySent):
        run(p.send(b"x" * 2_000_000))
    assert zebra.control("stats")["dropped"] == 1


def test_nothing_listening_is_not_sent_and_offline() -> None:
    p = printer_for("tcp", "p1", "zpl", host="127.0.0.1", port=free_port(), timeout_s=0.5)
    with pytest.raises(NotSent):
        run(p.send(b"^XA^XZ"))
    assert run(p.status()).state == "offline"


def test_escpos_tcp_status(tmp_path: Path) -> None:
    sim = SimPrinter("escpos", tmp_path)
    try:
        p = printer_for("tcp", "p2", "escpos", host="127.0.0.1", port=sim.port, timeout_s=1.0)
        assert run(p.status()).state == "ready"
        sim.control("paper_out on")
        assert run(p.status()).state == "paper_out"  # ESC/POS printers do answer when out of paper
        sim.control("paper_out off")
        sim.control("head_open on")
        assert run(p.status()).state == "head_open"
        sim.control("head_open off")
        run(p.send(b"\x1b@hello\n\x1dV\x00"))
        time.sleep(0.3)
        assert sim.control("stats")["jobs"] == 1
    finally:
        sim.close()


def test_serial_printer_on_a_pty(tmp_path: Path) -> None:
    link = tmp_path / "printer-tty"
    sim = SimPrinter("zpl", tmp_path, ("--pty", str(link), "--quiet-when-out", "off"))
    try:
        deadline = time.monotonic() + 10
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        p = printer_for("serial", "p3", "zpl", port=str(link), baudrate=19200, timeout_s=1.0)

        async def main() -> tuple[str, str]:
            first = (await p.status()).state
            await p.send(b"^XA^FDone^FS^XZ^XA^FDtwo^FS^XZ")
            sim.control("paper_out on")
            second = (await p.status()).state
            await p.close()
            return first, second

        assert run(main()) == ("ready", "paper_out")
        time.sleep(0.3)
        assert sim.control("stats")["labels"] == 2
    finally:
        sim.close()


def test_file_printer_writes_each_job(tmp_path: Path) -> None:
    p = printer_for("file", "lib", "zpl", path=str(tmp_path / "labels"))

    async def main() -> None:
        await p.open()
        assert (await p.status()).state == "ready"
        await p.send(b"^XA^XZ", name="J-1/../x")

    run(main())
    files = list((tmp_path / "labels").iterdir())
    assert len(files) == 1 and files[0].suffix == ".zpl" and files[0].read_bytes() == b"^XA^XZ"
    assert "/" not in files[0].name and ".." not in files[0].name.split("-J")[0]


def test_device_printer_on_a_character_device(tmp_path: Path) -> None:
    # A pty slave is a real character device, as /dev/usb/lp0 is.
    link = tmp_path / "lp0"
    sim = SimPrinter("escpos", tmp_path, ("--pty", str(link)))
    try:
        deadline = time.monotonic() + 10
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        p = printer_for("device", "p4", "escpos", path=str(link), timeout_s=1.0)

        async def main() -> tuple[str, str]:
            await p.open()
            first = (await p.status()).state
            await p.send(b"\x1b@receipt\n\x1dV\x00")
            sim.control("head_open on")
            second = (await p.status()).state
            await p.close()
            return first, second

        assert run(main()) == ("ready", "head_open")
        time.sleep(0.3)
        assert sim.control("stats")["jobs"] == 1
    finally:
        sim.close()
    missing = printer_for("device", "p5", "zpl", path=str(tmp_path / "nope"))
    assert run(missing.status()).state == "offline"


def test_a_printer_answering_only_dle_eot_1_is_read_from_that_answer() -> None:
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # the test closed the server: no more connections
            with conn:
                data = conn.recv(64)
                if data.startswith(b"\x10\x04\x01"):
                    conn.sendall(b"\x12")  # printer status only: online, no fault
                    conn.recv(64)

    threading.Thread(target=serve, daemon=True).start()
    p = printer_for("tcp", "p9", "escpos", host="127.0.0.1", port=port, timeout_s=3.0)
    assert run(p.status()).state == "ready"  # not "offline" for the answers it never sent
    server.close()


def test_a_prepared_tcp_connection_carries_the_next_job_or_is_dropped_unused(zebra: SimPrinter) -> None:
    """`prepare` connects at once, so that the printer has the connection before the job's bytes
    exist (the agent commits the job's claim meanwhile), and the job goes over that connection.
    A prepared connection no job uses is closed with nothing sent: by `unprepare`, by a status
    request and by `close` (a raw port serves one connection at a time)."""
    one, two = b"^XA^FDone^FS^XZ", b"^XA^FDtwo^FS^XZ"

    def stats() -> dict[str, Any]:
        return zebra.control("stats")

    async def main() -> None:
        p = printer_for("tcp", "p1", "zpl", host="127.0.0.1", port=zebra.port, timeout_s=2.0)
        p.prepare()
        p.prepare()  # once is enough: still one connection
        await wait_until_async(lambda: stats()["open_connections"] == 1, "the prepared connection accepted")
        assert stats()["connections"] == 1
        await p.send(one)
        await wait_until_async(lambda: stats()["open_connections"] == 0, "the job's connection closed")
        assert (stats()["connections"], stats()["jobs"], stats()["bytes"]) == (1, 1, len(one))

        p.prepare()
        await wait_until_async(lambda: stats()["open_connections"] == 1, "a second prepared connection")
        p.unprepare()
        await wait_until_async(lambda: stats()["open_connections"] == 0, "the unused connection closed")

        queries = stats()["status_queries"]
        p.prepare()
        await wait_until_async(lambda: stats()["connections"] == 3, "a third prepared connection")
        assert (await p.status()).state == "ready"
        await wait_until_async(
            lambda: stats()["open_connections"] == 0, "both closed after the status request"
        )
        assert stats()["connections"] == 4 and stats()["status_queries"] == queries + 1

        p.prepare()
        await wait_until_async(lambda: stats()["connections"] == 5, "a fourth prepared connection")
        await p.close()
        await wait_until_async(
            lambda: stats()["open_connections"] == 0, "the unused connection closed by close()"
        )

        p.prepare()
        p.unprepare()  # before the connection is even made: nothing left behind, no error
        await asyncio.sleep(0.1)
        await p.send(two)  # a send with nothing prepared connects itself

    run(main())
    time.sleep(0.2)
    final = stats()
    # the four unused connections (and the one cancelled before it was made, if it reached the
    # printer at all) carried nothing: the printer got the two jobs and nothing else
    assert (final["jobs"], final["bytes"], final["labels"]) == (2, len(one) + len(two), 2)
    assert final["connections"] in (6, 7) and final["open_connections"] == 0
