"""CUPS's own IPP Everywhere printer, `ippeveprinter` (Debian cups-ipp-utils), as a process on a
free port: the office printer of the tests. It registers itself over DNS-SD and will not start
without it, so the system D-Bus and Avahi are started first where they are not running (tests
run as root in CI; the README's test command installs both)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.broker import free_port


def ensure_dns_sd() -> None:
    if subprocess.run(["avahi-daemon", "--check"], capture_output=True).returncode == 0:
        return
    if not Path("/run/dbus/system_bus_socket").exists():
        Path("/run/dbus").mkdir(parents=True, exist_ok=True)
        subprocess.run(["dbus-daemon", "--system", "--fork"], check=True, capture_output=True)
    subprocess.run(["avahi-daemon", "-D", "--no-drop-root", "--no-chroot"], capture_output=True)
    deadline = time.monotonic() + 10
    while subprocess.run(["avahi-daemon", "--check"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("avahi-daemon did not start")
        time.sleep(0.1)


class IppEvePrinter:
    def __init__(self, folder: Path, name: str = "DockOffice") -> None:
        assert shutil.which("ippeveprinter"), "ippeveprinter is in Debian's cups-ipp-utils"
        ensure_dns_sd()
        self.port = free_port()
        self.spool = folder / "ipp-spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.url = f"ipp://localhost:{self.port}/ipp/print"
        self._log = open(folder / "ippeveprinter.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["ippeveprinter", "-n", "localhost", "-p", str(self.port), "-f", "application/pdf", "-d", str(self.spool),
             "-k", "-s", "60", f"{name}-{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
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

    def documents(self) -> list[bytes]:
        """What it received, oldest first."""
        files = sorted(self.spool.rglob("*.pdf"), key=lambda p: p.stat().st_mtime)
        return [p.read_bytes() for p in files]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        os.sync()
