"""A real Mosquitto broker per test, on a free port, that the test can stop and start again."""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(
        self, folder: Path, port: int | None = None, extra_conf: str = "", persistence: bool = True
    ) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"persistence {'true' if persistence else 'false'}\n"
            f"persistence_location {folder}/\n"
            "autosave_interval 1\n"
            f"user {getpass.getuser()}\n"  # as root, mosquitto would otherwise drop to a user that cannot write here
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            f"{extra_conf}"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(folder / "mosquitto.log", "ab")  # noqa: SIM115 (closed in close())

    def start(self) -> Broker:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        """A clean stop: the broker saves its sessions and queued messages first."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
            self.proc = None

    def kill(self) -> None:
        """A crash: no goodbye to anyone, nothing saved since the last autosave."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.log.close()
