"""The broker-side commands of `edge-fleet`: ls, cmd, tail and manifest push (config push and
update live beside the client, in client.py and update.py)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_agent.fleetctl.client import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    Fleet,
    agents,
    fan_out,
    json_object,
    request,
    split_target,
)


def cmd_ls(fleet: Fleet, args: argparse.Namespace) -> int:
    found = agents(fleet, args.site, args.wait)
    rows = []
    for (site, device), entry in sorted(found.items()):
        state, tele = entry["state"], entry.get("telemetry") or {}
        rows.append({
            "site": site, "device": device, "online": bool(state.get("online")),
            "reason": state.get("reason"), "version": state.get("agent_version"),
            "config_version": state.get("config_version"), "outbox_depth": tele.get("outbox_depth"),
            "manifest_version": state.get("manifest_version"), "printers": entry["printers"],
        })  # fmt: skip
    if args.json:
        print(json.dumps(rows))
        return EXIT_OK
    header = f"{'SITE':8} {'DEVICE':12} {'ONLINE':7} {'VERSION':8} {'CONFIG':6} {'OUTBOX':6} {'MANIFEST':8} PRINTERS"
    print(header)
    for r in rows:
        online = "yes" if r["online"] else f"no ({r['reason'] or '?'})"
        printers = " ".join(f"{k}:{v}" for k, v in sorted(r["printers"].items())) or "-"
        outbox = "-" if r["outbox_depth"] is None else str(r["outbox_depth"])
        print(f"{r['site']:8} {r['device']:12} {online:7} {r['version'] or '-':8} {r['config_version']!s:6} "
              f"{outbox:6} {r['manifest_version']!s:8} {printers}")  # fmt: skip
    return EXIT_OK


def cmd_cmd(fleet: Fleet, args: argparse.Namespace) -> int:
    if args.all:  # `cmd --all NAME [ARGS]`: the positionals move one place left
        target, name, raw_args = "+/*", args.target, args.name
    else:
        target, name, raw_args = args.target, args.name, args.args
    if name is None:
        print("edge-fleet: cmd needs a command NAME", file=sys.stderr)
        return EXIT_USAGE
    site, device = split_target(target)
    if device is None:
        print("edge-fleet: cmd needs SITE/DEVICE, SITE/* or --all", file=sys.stderr)
        return EXIT_USAGE
    try:
        cmd_args = json.loads(raw_args) if raw_args else {}
    except ValueError as exc:
        print(f"edge-fleet: ARGS is not JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if device == "*":
        return fan_out(fleet, None if site == "+" else site, name, cmd_args, args)
    reply = request(fleet, site, device, name, cmd_args, args.timeout)
    if reply is None:
        print(f"edge-fleet: no reply from {site}/{device} within {args.timeout:g} s", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(reply) if args.json else json.dumps(reply.get("data") or reply.get("error"), indent=2))
    return EXIT_OK if reply.get("status") == "ok" else EXIT_ERROR


def _describe(topic: str, data: dict[str, Any]) -> str:
    parts = topic.split("/")
    who = f"{parts[2]}/{parts[3]}"
    if parts[-1] == "scan":
        ret = data.get("return") or {}
        order = f" order {ret.get('order_number')}" if ret.get("order_number") else ""
        return (f"{data.get('ts', '')} {who} scan #{data.get('seq')} {data.get('scanner')} {data.get('outcome')} "
                f"{data.get('decoded', {}).get('raw', '')!r}{order}")  # fmt: skip
    if parts[-1] == "print":
        return f"{data.get('ts', '')} {who} print {data.get('job_id')} on {data.get('printer')}: {data.get('state')}"
    return f"{data.get('ts', '')} {who} alert {data.get('kind')}: {data}"


def cmd_tail(fleet: Fleet, args: argparse.Namespace) -> int:
    site, device = split_target(args.target or "+")
    root = f"dock/v1/{site}/{device or '+'}"
    fleet.subscribe(f"{root}/event/scan", f"{root}/event/print", f"{root}/event/alert")
    shown = 0
    deadline = time.monotonic() + args.seconds if args.seconds else None
    try:
        while args.count == 0 or shown < args.count:
            if deadline is not None and time.monotonic() > deadline:
                break
            with fleet.arrived:
                if len(fleet.messages) <= shown:
                    fleet.arrived.wait(0.5)
                new = fleet.messages[shown:]
            for topic, payload, _ in new:
                data = json_object(payload)
                print(
                    json.dumps({"topic": topic, **data}) if args.json else _describe(topic, data), flush=True
                )
                shown += 1
                if args.count and shown >= args.count:
                    break
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _read_returns(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                keys = {k: row[k] for k in ("tracking_number", "sscc") if row.get(k)}
                items = json.loads(row["items"]) if row.get("items") else []
                yield {"return_id": row["return_id"], "order_number": row.get("order_number") or None, "keys": keys,
                       "customer": {"name": row["customer_name"]} if row.get("customer_name") else None,
                       "items": items}  # fmt: skip
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    yield from data["returns"] if isinstance(data, dict) else data


def cmd_manifest_push(fleet: Fleet, args: argparse.Namespace) -> int:
    returns = list(_read_returns(Path(args.file)))
    version = args.version or int(time.time())
    chunks = max(1, -(-len(returns) // args.chunk))
    topic = f"dock/v1/{args.site}/manifest"
    for n in range(chunks):
        part = returns[n * args.chunk : (n + 1) * args.chunk]
        body = {"version": version, "base_version": args.base, "chunk": n + 1, "chunks": chunks,
                "upserts": part, "deletes": []}  # fmt: skip
        fleet.publish(topic, json.dumps(body, separators=(",", ":")).encode())
        if sys.stderr.isatty() or args.progress:
            done = (n + 1) * 30 // chunks
            print(
                f"\r[{'#' * done}{'.' * (30 - done)}] chunk {n + 1}/{chunks}",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if sys.stderr.isatty() or args.progress:
        print(file=sys.stderr)
    kind = "snapshot" if args.base is None else f"delta from {args.base}"
    print(f"{args.site}: manifest version {version} ({kind}), {len(returns)} returns in {chunks} chunks")
    return EXIT_OK
