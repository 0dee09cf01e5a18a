"""`edge-fleet update`: a release to one agent or a whole site, a canary first.

Each agent is sent `update` (mqtt.md, "Software update") and then followed on its retained
`{root}/software` until it says `healthy` on the version (or `rolled_back` / `failed`). With
`--canary N` the first N online agents (by name) go first; the rest are sent the update only when
every canary is healthy, and are otherwise reported `skipped`. One row per agent, with its final
software state; exit 0 only when every agent is healthy on the version.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

from edge_agent.fleetctl.client import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    Fleet,
    agents,
    command,
    json_object,
    split_target,
)

TERMINAL = ("healthy", "rolled_back", "failed")


def update(fleet: Fleet, args: argparse.Namespace) -> int:
    site, device = split_target(args.target)
    if device is None:
        print("edge-fleet: update needs SITE/DEVICE or SITE/*", file=sys.stderr)
        return EXIT_USAGE
    cmd_args = {"version": args.version, "url": args.url, "sha256": args.sha256, "signature": args.signature}
    found = agents(fleet, site, args.wait, quiet=0.3)
    if device != "*":
        found = {k: v for k, v in found.items() if k[1] == device} or {
            (site, device): {"state": {"online": True}}
        }
    rows: dict[str, dict[str, Any]] = {}
    online = []
    for (s, d), entry in sorted(found.items()):
        state = entry["state"]
        if state.get("online"):
            online.append(f"{s}/{d}")
        else:
            rows[f"{s}/{d}"] = _row(f"{s}/{d}", "offline", {"current": state.get("agent_version")},
                                    state.get("reason") or "offline")  # fmt: skip
    fleet.subscribe(*[f"dock/v1/{who}/software" for who in online])
    fleet.collect_until_quiet(0.3, 2.0)  # the retained states: what each runs now, not news
    canary = online[: args.canary] if args.canary else online
    rest = online[len(canary) :]
    rows.update(_phase(fleet, canary, cmd_args, args))
    if rest:
        bad = [who for who in canary if rows[who]["status"] != "healthy"]
        if bad:
            why = f"not sent: canary {', '.join(bad)} not healthy on {args.version}"
            rows.update({who: _row(who, "skipped", {}, why) for who in rest})
        else:
            rows.update(_phase(fleet, rest, cmd_args, args))
    ordered = [rows[k] for k in sorted(rows)]
    if args.json:
        print(json.dumps(ordered))
    else:
        for r in ordered:
            error = r["error"]
            detail = (
                f": {error.get('code')}: {error.get('message')}"
                if isinstance(error, dict)
                else f": {error}"
                if error
                else ""
            )
            print(f"{r['device']:24} {r['status']:12} current {r['current'] or '-'}{detail}")
    ok = ordered and all(r["status"] == "healthy" and r["current"] == args.version for r in ordered)
    return EXIT_OK if ok else EXIT_ERROR


def _row(who: str, status: str, software: dict[str, Any], error: Any) -> dict[str, Any]:
    return {"device": who, "status": status, "current": software.get("current"), "previous": software.get("previous"),
            "state": software.get("state"), "error": error, "software": software or None}  # fmt: skip


def _phase(
    fleet: Fleet, group: list[str], cmd_args: dict[str, Any], args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    if not group:
        return {}
    version = cmd_args["version"]
    started = time.monotonic()
    mark = len(fleet.messages)
    reply_topic = f"fleet/replies/{uuid.uuid4().hex}"
    fleet.subscribe(reply_topic)
    pending: dict[str, str] = {}
    for who in group:
        request_id, body, props = command(reply_topic, cmd_args)
        pending[request_id] = who
        fleet.publish(f"dock/v1/{who}/cmd/update", body, props=props)
    rows: dict[str, dict[str, Any]] = {}
    following: set[str] = set()
    deadline = started + args.timeout
    reply_deadline = started + min(args.timeout, 30.0)
    while time.monotonic() < deadline:
        with fleet.lock:
            new = fleet.messages[mark:]
        for topic, payload, _ in new:
            data = json_object(payload)
            if topic == reply_topic and data.get("request_id") in pending:
                who = pending.pop(str(data["request_id"]))
                error = data.get("error") or {}
                if data.get("status") == "ok":
                    following.add(who)
                elif error.get("code") == "already_current":
                    rows[who] = _row(who, "healthy", {"current": version, "state": "healthy"}, None)
                else:
                    rows[who] = _row(who, "error", {}, error)
            elif topic.endswith("/software"):
                who = topic[len("dock/v1/") : -len("/software")]
                if (
                    who in following
                    and data.get("state") in TERMINAL
                    and (data.get("target") == version or data.get("current") == version)
                ):
                    rows[who] = _row(who, str(data["state"]), data, data.get("error"))
                    following.discard(who)
        mark += len(new)
        if not pending and not following:
            break
        if pending and time.monotonic() > reply_deadline:
            for who in pending.values():
                rows[who] = _row(who, "timeout", {}, "no reply to update")
            pending.clear()
        with fleet.arrived:
            fleet.arrived.wait(0.2)
    for who in [*pending.values(), *following]:
        rows[who] = _row(who, "timeout", {}, f"not healthy, rolled back or failed within {args.timeout:g} s")
    return rows
