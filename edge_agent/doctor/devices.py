"""Scanners, printers and scales: there, allowed, not held by a stranger, and answering."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from drivers.scales import scale_for
from edge_agent.config import AgentConfig
from edge_agent.doctor.access import Who, command_of, group_of, holders, may
from edge_agent.doctor.model import Check, fail, ok, warn
from edge_agent.printing.worker import driver_for as printer_driver

ANSWER_S = 3.0
"""How long a printer or scale has to answer, seconds."""
UDEV_DIR = "/dev/edge-agent/"


def _missing(name: str, key: str, path: str, what: str) -> Check:
    if path.startswith(UDEV_DIR):
        return fail(name, f"{path} does not exist: the udev rule did not apply",
                    f"put the {what}'s vendor, product and serial into systemd/99-edge-agent.rules in "
                    f"/etc/udev/rules.d/, then run `udevadm control --reload && udevadm trigger`")  # fmt: skip
    if os.path.islink(path):
        return fail(name, f"{path} points at {os.readlink(path)}, which is gone",
                    f"plug the {what} in again, or set {key} to where it is now")  # fmt: skip
    return fail(name, f"{path} does not exist",
                f"plug the {what} in, or set {key} to its device (ls /dev/serial/by-id/ /dev/input/by-id/)")  # fmt: skip


def _kind(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a FIFO (a simulator)"
    if stat.S_ISCHR(mode):
        return "a character device"
    return "not a device"


def presence(name: str, key: str, path: str, what: str, who: Who, agents: list[int],
             write: bool) -> tuple[list[Check], bool]:  # fmt: skip
    """The rows for a device file, and whether the doctor may open it now (nobody holds it)."""
    p = Path(path)
    if not p.exists():
        return [_missing(name, key, path, what)], False
    rows = []
    kind = _kind(p)
    if kind == "not a device":
        return [
            fail(name, f"{path} is {kind}", f"set {key} to the {what}'s device, not a regular file")
        ], False
    if not may(who, p, read=True, write=write):
        group = group_of(p)
        rights = "read and write" if write else "read"
        user = who.name if who.service else f"{who.name} (no user edge-agent here)"
        rows.append(fail(name, f"{path} ({kind}, group {group}) is not open to {user} for {rights}",
                         f"add the user edge-agent to group {group} or install systemd/99-edge-agent.rules"))  # fmt: skip
    held = holders(p)
    ours = [pid for pid in held if pid in agents]
    # a FIFO's other end is the simulated device itself, not a program in the agent's way
    strangers = [] if kind.startswith("a FIFO") else [pid for pid in held if pid not in agents]
    if strangers:
        pid = strangers[0]
        rows.append(warn(name, f"{path} is open in pid {pid} ({command_of(pid)[:80]})",
                         "stop that program (ModemManager and serial consoles take serial ports), "
                         "or give the agent a device of its own"))  # fmt: skip
    if ours:
        rows.append(ok(name, f"{path}: {kind}, in use by the running agent (pid {ours[0]}); not opened"))
    return rows, not rows  # a permission, a stranger or the agent itself: not opened


async def scanner_rows(config: AgentConfig, who: Who, agents: list[int]) -> list[Check]:
    out: list[Check] = []
    for i, sc in enumerate(config.scanners):
        name = f"scanner {sc.id}"
        path = getattr(sc, "port", None) or sc.device  # type: ignore[union-attr]
        key = f"scanners[{i}].{'port' if sc.type == 'serial' else 'device'}"
        rows, free = presence(name, key, path, "scanner", who, agents, write=sc.type == "hidpos")
        out.extend(rows)
        if free:
            out.append(_opens(name, path, sc.type == "hidpos",
                              "opens; a scanner speaks only when it scans: scan a label to see it"))  # fmt: skip
    return out


def _opens(name: str, path: str, write: bool, detail: str) -> Check:
    flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_NONBLOCK | os.O_NOCTTY
    try:
        fd = os.open(path, flags)  # no TIOCEXCL, no flush: a later open by the agent is unaffected
    except OSError as exc:
        return fail(name, f"{path} cannot be opened: {exc.strerror}",
                    "unplug and replug the device; if it stays, check `dmesg` for USB errors")  # fmt: skip
    os.close(fd)
    return ok(name, f"{path}: {detail}")


async def printer_rows(config: AgentConfig, who: Who, agents: list[int]) -> list[Check]:
    async def one(i: int, cfg: Any) -> list[Check]:
        name = f"printer {cfg.id}"
        if cfg.transport in ("serial", "device"):
            path = cfg.port if cfg.transport == "serial" else cfg.path
            key = f"printers[{i}].{'port' if cfg.transport == 'serial' else 'path'}"
            rows, free = presence(name, key, path, "printer", who, agents, write=True)
            if not free:
                return rows
        elif cfg.transport == "file":
            folder = Path(cfg.path).parent
            if not folder.is_dir() or not may(who, folder, read=True, write=True):
                return [
                    fail(name, f"{folder} is not a writable folder", f"create it or set printers[{i}].path")
                ]
            return [ok(name, f"writes jobs to files in {folder}")]
        driver = printer_driver(cfg, ANSWER_S)
        try:
            await driver.open()
            status = await driver.status()
        except Exception as exc:
            return [
                fail(name, f"cannot be asked for its status: {exc}", "check the printer's cable and power")
            ]
        finally:
            with contextlib.suppress(Exception):
                await driver.close()
        where = _where(cfg)
        if status.state == "ready":
            return [ok(name, f"{where}: answers, ready")]
        if status.state == "offline":
            fix = (f"check that the printer is on and that printers[{i}].host/port are right "
                   "(a raw printer listens on 9100)" if cfg.transport == "tcp"
                   else f"check the printer's power and printers[{i}].url" if cfg.transport in ("ipp", "cups")
                   else "check the printer's power and cable")  # fmt: skip
            return [fail(name, f"{where}: {status.detail or 'no answer'}", fix)]
        return [warn(name, f"{where}: answers, {status.state}" + (f" ({status.detail})" if status.detail else ""),
                     "see to the printer (paper, ribbon, head closed), then it prints what waits")]  # fmt: skip

    results = await asyncio.gather(*(one(i, p) for i, p in enumerate(config.printers)))
    return [row for rows in results for row in rows]


def _where(cfg: Any) -> str:
    if cfg.transport == "tcp":
        return f"{cfg.host}:{cfg.port}"
    if cfg.transport in ("ipp", "cups"):
        return str(cfg.ipp_url())
    return str(cfg.port if cfg.transport == "serial" else cfg.path)


async def scale_rows(config: AgentConfig, who: Who, agents: list[int]) -> list[Check]:
    async def one(i: int, cfg: Any) -> list[Check]:
        name = f"scale {cfg.id}"
        path = cfg.port if cfg.type == "serial" else cfg.device
        key = f"scales[{i}].{'port' if cfg.type == 'serial' else 'device'}"
        rows, free = presence(name, key, path, "scale", who, agents, write=cfg.type == "serial")
        if not free:
            return rows
        driver = scale_for(cfg.type, cfg.id, **{**cfg.driver_options(), "reopen_max_s": ANSWER_S})
        try:
            await driver.open()
            async with asyncio.timeout(ANSWER_S):
                async for reading in driver.readings():
                    if reading.state != "offline":
                        grams = "" if reading.grams is None else f" {reading.grams:g} g"
                        return [ok(name, f"{path}: answers, {reading.state}{grams}")]
        except TimeoutError:
            pass
        except Exception as exc:
            return [fail(name, f"{path}: {exc}", "check the scale's cable and power")]
        finally:
            with contextlib.suppress(Exception):
                await driver.close()
        settings = (f"scales[{i}].protocol ({cfg.protocol}) and baudrate ({cfg.baudrate})"
                    if cfg.type == "serial" else "that it is a USB HID POS scale")  # fmt: skip
        return [fail(name, f"{path}: no reading within {ANSWER_S:g} s",
                     f"switch the scale on and check {settings}")]  # fmt: skip

    results = await asyncio.gather(*(one(i, s) for i, s in enumerate(config.scales)))
    return [row for rows in results for row in rows]
