"""What a print job carries: its stored form, the templates a configuration offers, and the data a
template is filled with (the job's own plus what the station knows)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.decode import ret1
from edge_agent.printing.templates import Template, with_site_templates
from edge_agent.sync.models import rfc3339


@dataclass(frozen=True, slots=True)
class StoredJob:
    job_id: str
    printer: str
    body: dict[str, Any]


def templates_of(config: AgentConfig) -> dict[str, Template]:
    return with_site_templates(config.templates)


def job_data(cfg: AgentConfig, mode: str, data: dict[str, Any]) -> dict[str, Any]:
    """The job's data plus what the agent knows: the signed RET1 payload, the warehouse, the
    items as lines, the station and its mode."""
    out: dict[str, Any] = {
        "warehouse_name": cfg.printing.warehouse_name,
        "warehouse_address": cfg.printing.warehouse_address,
        "carrier_message": cfg.printing.carrier_message,
        "station": cfg.device.id,
        "device": cfg.device.id,
        "mode": mode,
        "ts": rfc3339(),
        "agent_version": agent_version(),
        **data,
    }
    customer = out.get("customer")
    if isinstance(customer, dict):
        out.setdefault("customer_name", customer.get("name", ""))
        out.setdefault("customer_address", customer.get("address", ""))
    items = out.get("items")
    if isinstance(items, list):
        lines = [
            f"{i.get('qty', 1)} x {i.get('name') or i.get('sku', '')}" for i in items if isinstance(i, dict)
        ]
        out.setdefault("items_text", "; ".join(lines))
        for n, line in enumerate(lines[:4], start=1):
            out.setdefault(f"item_{n}", line)
        if len(lines) > 4:
            out.setdefault("more_items", f"... and {len(lines) - 4} more")
    kid = cfg.labels.sign_kid
    if kid and "ret1" not in out and out.get("return_id") and out.get("order_number"):
        # ids a RET1 label cannot carry: the label prints without its QR
        with contextlib.suppress(ValueError):
            out["ret1"] = ret1.make_label(
                cfg.labels.secrets()[kid], kid, str(out["return_id"]), str(out["order_number"])
            )
    return out


def receipt_slip_data(event: dict[str, Any]) -> dict[str, Any]:
    """A closed receipt as the `receipt_slip` template's fields: a text line per item."""
    lines = event.get("lines") or []
    verdict = (
        "CANCELLED"
        if event.get("closed_by") == "cancel"
        else "COMPLETE"
        if event.get("complete")
        else "CHECK"
    )
    data: dict[str, Any] = {
        "return_id": event.get("return_id"),
        "order_number": event.get("order_number") or "",
        "receipt_seq": event.get("receipt_seq"),
        "closed_by": event.get("closed_by"),
        "verdict": verdict,
        "received": sum(ln["received_qty"] for ln in lines),
        "expected": sum(ln["expected_qty"] for ln in lines),
        "extra_count": len(event.get("extra") or []),
    }
    texts = []
    for ln in lines:
        grades = " ".join(f"{g}:{n}" for g, n in sorted(ln["grades"].items()))
        texts.append(f"{ln['received_qty']}/{ln['expected_qty']} {ln['sku'] or ln['gtin'] or ''} "
                     f"{ln['name'] or ''} {grades} {ln['status']}".strip())  # fmt: skip
    for e in event.get("extra") or []:
        texts.append(f"EXTRA {e['qty']} x {e['raw']} ({e['reason']})")
    for n, text in enumerate(texts[:6], start=1):
        data[f"line_{n}"] = text
    if len(texts) > 6:
        data["more_lines"] = f"... and {len(texts) - 6} more"
    return data


def agent_version() -> str:
    from edge_agent import __version__

    return __version__
