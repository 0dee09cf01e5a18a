"""`edge-agent status`: what storage holds, read-only, whether the daemon runs or not."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from edge_agent.store import receipts
from edge_agent.store.db import AGENT_DB, MANIFEST_DB, connect


def read_status(folder: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "storage": str(folder),
        "outbox_depth": 0,
        "oldest_unsent_s": None,
        "last_seq": 0,
        "mode": None,
        "last_scans": [],
        "jobs_by_state": {},
        "manifest_version": 0,
        "manifest_returns": 0,
        "config_version": 0,
    }
    agent_db = folder / AGENT_DB
    if agent_db.exists():
        conn = connect(agent_db, readonly=True)
        try:
            _agent_part(conn, report)
        finally:
            conn.close()
    manifest_db = folder / MANIFEST_DB
    if manifest_db.exists():
        conn = connect(manifest_db, readonly=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            report["manifest_version"] = int(meta.get("version") or 0)
            table = f"returns_{int(meta.get('active') or 0)}"
            report["manifest_returns"] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            if meta.get("staging_version"):
                report["manifest_staging_version"] = int(meta["staging_version"])
        except sqlite3.OperationalError as exc:
            report["manifest_error"] = str(exc)
        finally:
            conn.close()
    return report


def _agent_part(conn: sqlite3.Connection, report: dict[str, Any]) -> None:
    count, oldest = conn.execute(
        "SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL"
    ).fetchone()
    report["outbox_depth"] = count
    report["oldest_unsent_s"] = round(time.time() - oldest, 3) if oldest is not None else None
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    report["last_seq"] = int(meta.get("seq") or 0)
    report["mode"] = meta.get("mode")
    rows = conn.execute(
        "SELECT s.seq, s.ts, s.scanner, s.mode, s.kind, s.outcome, s.raw, s.return_id, s.order_number,"
        " s.latency_us, o.sent_at IS NOT NULL FROM scans s LEFT JOIN outbox o ON o.id = s.outbox_id"
        " ORDER BY s.seq DESC LIMIT 10"
    ).fetchall()
    keys = (
        "seq",
        "ts",
        "scanner",
        "mode",
        "kind",
        "outcome",
        "raw",
        "return_id",
        "order_number",
        "latency_us",
        "sent",
    )
    report["last_scans"] = [dict(zip(keys, r, strict=True)) for r in rows]
    for r in report["last_scans"]:
        r["sent"] = bool(r["sent"])
    report["jobs_by_state"] = dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    row = conn.execute("SELECT version FROM desired_config WHERE id = 1").fetchone()
    report["config_version"] = int(row[0]) if row else 0
    report["receipts"] = receipts.status(conn)


def render_status(report: dict[str, Any]) -> str:
    oldest = report["oldest_unsent_s"]
    lines = [
        f"storage          {report['storage']}",
        f"outbox           {report['outbox_depth']} unsent"
        + (f", oldest {oldest:.1f} s" if oldest is not None else ""),
        f"last seq         {report['last_seq']}",
        f"station mode     {report['mode'] or '(default)'}",
        f"manifest         version {report['manifest_version']}, {report['manifest_returns']} returns",
        f"config version   {report['config_version']}",
        "print jobs       "
        + (", ".join(f"{k}: {v}" for k, v in sorted(report["jobs_by_state"].items())) or "none"),
        *_receipt_lines(report.get("receipts") or {}),
        "last scans:",
    ]
    for s in report["last_scans"]:
        order = f" order {s['order_number']}" if s["order_number"] else ""
        lines.append(
            f"  #{s['seq']:<6} {s['ts']}  {s['scanner']:<4} {s['outcome']:<9} {s['kind']:<12} {s['raw']!r}{order}"
            f"  {'sent' if s['sent'] else 'UNSENT'}"
        )
    if not report["last_scans"]:
        lines.append("  (none)")
    return "\n".join(lines)


def _receipt_lines(part: dict[str, Any]) -> list[str]:
    opened = part.get("open")
    if opened is None:
        head = "open receipt     none"
    else:
        got = sum(ln["received_qty"] for ln in opened["lines"])
        want = sum(ln["expected_qty"] for ln in opened["lines"])
        head = (f"open receipt     return {opened['return_id']} (order {opened['order_number']}): "
                f"{got} of {want} items, {opened['extra']} extra, grade {opened['grade']}, "
                f"idle {opened['idle_s']:.0f} s")  # fmt: skip
    out = [head]
    if opened is not None:
        for ln in opened["lines"]:
            out.append(f"  {ln['received_qty']}/{ln['expected_qty']} {ln['sku'] or ln['gtin'] or ''} "
                       f"{ln['name'] or ''} [{ln['status']}]")  # fmt: skip
    out.append(f"receipts closed  {part.get('last_receipt_seq', 0)}")
    return out
