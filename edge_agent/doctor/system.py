"""The machine: clock, storage, the station page's port."""

from __future__ import annotations

import errno
import http.client
import os
import shutil
import socket
from pathlib import Path

from edge_agent.clock import kernel_clock_synced
from edge_agent.config import AgentConfig
from edge_agent.doctor.access import Who, may
from edge_agent.doctor.model import Check, fail, ok, warn

MIN_FREE_MB = 50
"""Below this the agent will soon refuse to store scans: a failure, MB."""
LOW_FREE_MB = 500
"""Below this a person should look: a warning, MB."""


def clock_rows() -> list[Check]:
    if kernel_clock_synced():
        return [ok("clock", "synchronised (the kernel's NTP state)")]
    # the agent works on: its events carry clock_synced false and keep their order by seq
    return [warn("clock", "not synchronised: events are stamped clock_synced=false",
                 "the clock is not synchronised: enable systemd-timesyncd (timedatectl set-ntp true) "
                 "and let it reach an NTP server")]  # fmt: skip


def storage_rows(config: AgentConfig, who: Who) -> list[Check]:
    folder = Path(config.storage.path)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [fail("storage", f"{existing} is not a folder", "set storage.path to a folder")]
    if not may(who, existing, read=True, write=True) or not os.access(existing, os.W_OK):
        owner = "the user edge-agent" if who.service else who.name
        return [fail("storage", f"{existing} is not writable by {owner}",
                     f"give {owner} the folder: chown edge-agent: {existing} (systemd/install.sh does)")]  # fmt: skip
    rows = []
    usage = shutil.disk_usage(existing)
    free_mb = usage.free // (1024 * 1024)
    where = str(folder) if folder.exists() else f"{folder} (made at the first start, in {existing})"
    if free_mb < MIN_FREE_MB:
        rows.append(fail("storage", f"{where}: only {free_mb} MB free",
                         "free space on the card (old logs: journalctl --vacuum-size=100M) or use a larger one"))  # fmt: skip
    elif free_mb < LOW_FREE_MB:
        rows.append(warn("storage", f"{where}: {free_mb} MB free", "free space on the card before it fills"))
    else:
        rows.append(ok("storage", f"{where}: writable, {free_mb:,} MB free"))
    if folder.exists() and os.statvfs(folder).f_flag & os.ST_RDONLY:
        rows = [fail("storage", f"{folder} is on a read-only file system",
                     "the card was remounted read-only after errors: check `dmesg`, run fsck, or replace it")]  # fmt: skip
    return rows


def display_rows(config: AgentConfig, agents: list[int]) -> list[Check]:
    display = config.display
    if not display.enabled:
        return [ok("station page", "off (display.enabled: false)")]
    where = f"{display.host}:{display.port}"
    if agents:
        try:
            conn = http.client.HTTPConnection(display.host, display.port, timeout=3)
            conn.request("GET", "/")
            status = conn.getresponse().status
            conn.close()
        except OSError as exc:
            return [fail("station page", f"{where}: the running agent's page does not answer: {exc}",
                         "look at the agent's log (journalctl -u edge-agent) for display errors")]  # fmt: skip
        return [ok("station page", f"http://{where}/ answers (HTTP {status})")]
    family = socket.AF_INET6 if ":" in display.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((display.host, display.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return [fail("station page", f"port {display.port} on {display.host} is taken by another program",
                             f"set display.port to a free port, or stop what listens on {display.port} "
                             f"(ss -ltnp 'sport = :{display.port}')")]  # fmt: skip
            return [
                fail(
                    "station page",
                    f"{where}: {exc.strerror}",
                    "set display.host to an address of this machine",
                )
            ]
    return [ok("station page", f"port {display.port} on {display.host} is free for the page")]
