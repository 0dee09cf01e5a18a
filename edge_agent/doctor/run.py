"""All of the doctor's checks, in the order a person fixes things: the config first, then the
machine, the broker, the devices."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TextIO

from edge_agent.config import AgentConfig
from edge_agent.doctor.access import Who, running_agents, service_user
from edge_agent.doctor.broker import broker_rows
from edge_agent.doctor.devices import printer_rows, scale_rows, scanner_rows
from edge_agent.doctor.model import Report, ok
from edge_agent.doctor.system import clock_rows, display_rows, storage_rows


async def _devices(config: AgentConfig, report: Report, who: Who, agents: list[int]) -> None:
    broker = asyncio.create_task(asyncio.to_thread(broker_rows, config), name="doctor-broker")
    results = await asyncio.gather(
        scanner_rows(config, who, agents), printer_rows(config, who, agents), scale_rows(config, who, agents)
    )
    report.add(*await broker)
    for rows in results:
        report.add(*rows)


def run_doctor(path: Path, config: AgentConfig) -> Report:
    report = Report()
    devices = f"{len(config.scanners)} scanners, {len(config.printers)} printers, {len(config.scales)} scales"
    report.add(ok("config", f"{path}: valid ({devices})"))
    agents = running_agents(path)
    report.add(ok("agent", f"running (pid {agents[0]})" if agents else "not running"))
    who = service_user()
    if not who.service:
        report.add(ok("user", f"no user edge-agent here: permissions checked for {who.name}"))
    report.add(*storage_rows(config, who))
    report.add(*clock_rows())
    report.add(*display_rows(config, agents))
    asyncio.run(_devices(config, report, who, agents))
    return report


MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def print_report(report: Report, out: TextIO, as_json: bool) -> None:
    if as_json:
        out.write(
            json.dumps({"ok": not report.failed, "checks": [c.to_dict() for c in report.checks]}, indent=2)
        )
        out.write("\n")
        return
    width = max(len(c.check) for c in report.checks)
    for c in report.checks:
        out.write(f"{MARK[c.status]}  {c.check.ljust(width)}  {c.detail}\n")
        if c.fix:
            out.write(f"{' ' * (6 + width)}  → {c.fix}\n")
    fails = sum(c.status == "fail" for c in report.checks)
    warns = sum(c.status == "warn" for c in report.checks)
    out.write(f"{len(report.checks)} checks: {fails} failed, {warns} warnings\n")
