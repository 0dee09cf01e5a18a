"""CUPS's own IPP Everywhere printer, `ippeveprinter` (Debian cups-ipp-utils), as a process on a
free port: the office printer of the tests. `-r off` keeps it from registering over DNS-SD (the
agent is given the printer's URL, it never browses for one). Debian's build still opens an Avahi
client at start and aborts ("Unable to initialize DNS-SD") when there is no D-Bus system bus to
open it on, as on a CI container. So each printer gets a private `dbus-daemon` of its own, named
to it as the system bus: Avahi's client then waits for a daemon that never comes, and the
printer works. No root, no system services, nothing shared between tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.broker import free_port


class IppEvePrinter:
    def __init__(self, folder: Path, name: str = "DockOffice") -> None:
        assert shutil.which("ippeveprinter"), "ippeveprinter is in Debian's cups-ipp-utils"
        self.port = free_port()
        self.spool = folder / "ipp-spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.url = f"ipp://localhost:{self.port}/ipp/print"
        self._log = open(folder / "ippeveprinter.log", "ab")  # noqa: SIM115
        self.bus = _PrivateBus(folder)
        self.proc = subprocess.Popen(
            ["ippeveprinter", "-n", "localhost", "-p", str(self.port), "-f", "application/pdf", "-d", str(self.spool),
             "-r", "off", "-k", "-s", "60", f"{name}-{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus.address},
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"ippeveprinter did not start: {(folder / 'ippeveprinter.log').read_text()[-500:]}"
                )
            time.sleep(0.1)

    def answers(self) -> bool:
        test = self.spool.parent / "ipp-status.test"
        if not test.exists():
            from drivers.printers.ipp import STATUS_TEST

            test.write_text(STATUS_TEST)
        r = subprocess.run(["ipptool", "-T", "2", "-t", self.url, str(test)], capture_output=True, text=True)
        return r.returncode == 0

    def set_trays(self, main: int, bypass: int = -2) -> None:
        """Sheets in the main and the by-pass tray (-2: unknown), through ippeveprinter's own
        media form (a GET of /media); a tray at 0 makes it report `media-empty-report`."""
        query = urllib.parse.urlencode({"size1": "iso_a4_210x297mm", "type1": "stationery", "level1": main,
                                        "size3": "iso_dl_110x220mm", "type3": "envelope", "level3": bypass})  # fmt: skip
        with urllib.request.urlopen(f"http://localhost:{self.port}/media?{query}", timeout=10) as answer:
            answer.read()

    def documents(self) -> list[bytes]:
        """What it received, oldest first."""
        files = sorted(self.spool.rglob("*.pdf"), key=lambda p: p.stat().st_mtime)
        return [p.read_bytes() for p in files]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.bus.close()
        self._log.close()
        os.sync()


class _PrivateBus:
    """A `dbus-daemon` on a socket in the test's folder, for as long as the printer runs."""

    def __init__(self, folder: Path) -> None:
        assert shutil.which("dbus-daemon"), "dbus-daemon is in Debian's dbus-daemon"
        socket = folder / "dbus.sock"
        self.address = f"unix:path={socket}"
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address={self.address}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dbus-daemon did not start (exit {self.proc.poll()})")
            time.sleep(0.02)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class SwallowingProxy:
    """A TCP proxy in front of a printer's IPP port that passes every request through, except
    that while `swallow` is set it takes a Print-Job request in, answers nothing and keeps the
    connection open: a printer that hung, or a network that died, after the job had left. It
    counts the Print-Job requests it saw, swallowed or passed."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.swallow = threading.Event()
        self.print_jobs = 0
        self.swallowed = threading.Event()
        self._target = target_port
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/ipp/print") -> str:
        return f"ipp://localhost:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while (operation := _operation(head)) is None:
            chunk = client.recv(65536)
            if not chunk:
                client.close()
                return
            head += chunk
        if operation == 0x0002:  # Print-Job
            self.print_jobs += 1
            if self.swallow.is_set():
                self._held.append(client)  # read on, never answer
                self.swallowed.set()
                while client.recv(65536):
                    pass
                return
        upstream = socket.create_connection(("127.0.0.1", self._target))
        upstream.sendall(head)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def close(self) -> None:
        self._server.close()
        for held in self._held:
            held.close()


def _operation(request: bytes) -> int | None:
    """The IPP operation-id of an HTTP request's body once enough of it is in (bytes 2-3 of the
    IPP message, past a first chunk-size line when the body is chunked); None until then."""
    end = request.find(b"\r\n\r\n")
    if end < 0:
        return None
    body = request[end + 4 :]
    if b"chunked" in request[:end].lower():
        line = body.find(b"\r\n")
        if line < 0:
            return None
        body = body[line + 2 :]
    return int.from_bytes(body[2:4], "big") if len(body) >= 4 else None


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
