"""`edge-fleet`: one tool for fleet admins, over the same MQTT contract as the central system.

    edge-fleet ls [--site S] [--json]
    edge-fleet cmd SITE/DEVICE|SITE/*|--all NAME [ARGS-JSON] [--timeout S] [--json]
    edge-fleet config push SITE/DEVICE|SITE FILE [--timeout S] [--json]
    edge-fleet tail [SITE[/DEVICE]] [--json] [--count N]
    edge-fleet manifest push SITE FILE [--version N] [--base N] [--chunk N]
    edge-fleet release keygen -o KEY_FILE
    edge-fleet release build --version V --key KEY_FILE -o BUNDLE [--source DIR] [--wheels-from DIR]
    edge-fleet update SITE/DEVICE|SITE/* --version V --url URL --sha256 H --signature S [--canary N]

Broker options (`--host`, `--port`, `--username`, `--password`, `--ca`, `--cert`, `--key`) come
first; `EDGE_FLEET_HOST` and `EDGE_FLEET_PORT` set defaults.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_agent.fleetclient import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    Fleet,
    agents,
    config_push,
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


def cmd_release_keygen(_fleet: Fleet | None, args: argparse.Namespace) -> int:
    from edge_agent.update.build import keygen

    try:
        public = keygen(Path(args.output))
    except FileExistsError:
        print(f"edge-fleet: {args.output} exists; a release key is never overwritten", file=sys.stderr)
        return EXIT_USAGE
    print(f"private key: {args.output} (keep it off the docks)")
    print(f"public key:  {public}")
    print(f"in each agent's file:  update: {{public_keys: [{public}]}}")
    return EXIT_OK


def cmd_release_build(_fleet: Fleet | None, args: argparse.Namespace) -> int:
    from edge_agent.update.build import build
    from edge_agent.update.bundle import BundleError

    try:
        result = build(args.version, Path(args.key), Path(args.output),
                       Path(args.source) if args.source else None,
                       Path(args.wheels_from) if args.wheels_from else None)  # fmt: skip
    except BundleError as exc:
        print(f"edge-fleet: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(result))
    else:
        print(f"bundle     {result['bundle']} ({Path(result['bundle']).stat().st_size} bytes)")
        print(f"version    {result['version']}")
        print(f"sha256     {result['sha256']}")
        print(f"signature  {result['signature']}")
        print(f"public_key {result['public_key']}")
    return EXIT_OK


def cmd_update(fleet: Fleet | None, args: argparse.Namespace) -> int:
    from edge_agent.fleetupdate import update

    assert fleet is not None
    return update(fleet, args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edge-fleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--host", default=os.environ.get("EDGE_FLEET_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("EDGE_FLEET_PORT", "1883")))
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--key")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("ls", help="every agent with a retained state")
    ls.add_argument("--site")
    ls.add_argument("--wait", type=float, default=1.5, help="seconds to gather retained states")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_ls)
    c = sub.add_parser("cmd", help="send a command to an agent, a site (SITE/*) or every site (--all)")
    c.add_argument("target", metavar="SITE/DEVICE|SITE/*")
    c.add_argument("name", nargs="?")
    c.add_argument("args", nargs="?", help="command arguments, a JSON object")
    c.add_argument("--all", action="store_true", help="every agent of every site: cmd --all NAME [ARGS]")
    c.add_argument("--timeout", type=float, default=10.0, help="seconds, one deadline for the whole fan-out")
    c.add_argument("--wait", type=float, default=3.0, help="longest wait for the retained states, seconds")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_cmd)
    cfg = sub.add_parser("config", help="desired configuration").add_subparsers(dest="action", required=True)
    push = cfg.add_parser("push", help="push a partial configuration file and wait for reported")
    push.add_argument("target", metavar="SITE/DEVICE|SITE")
    push.add_argument("file")
    push.add_argument("--timeout", type=float, default=15.0)
    push.add_argument("--wait", type=float, default=1.5)
    push.add_argument("--json", action="store_true")
    push.set_defaults(func=config_push)
    t = sub.add_parser("tail", help="scan, print and alert events as they happen")
    t.add_argument("target", nargs="?", metavar="SITE[/DEVICE]")
    t.add_argument("--json", action="store_true")
    t.add_argument("--count", type=int, default=0, help="stop after N events (0: until Ctrl-C)")
    t.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    t.set_defaults(func=cmd_tail)
    m = sub.add_parser("manifest", help="expected returns").add_subparsers(dest="action", required=True)
    mp = m.add_parser("push", help="send a CSV or JSON of returns as a chunked snapshot (or delta)")
    mp.add_argument("site")
    mp.add_argument("file")
    mp.add_argument("--version", type=int, help="manifest version (default: the time)")
    mp.add_argument("--base", type=int, help="send as a delta from this version")
    mp.add_argument("--chunk", type=int, default=3000, help="returns per message")
    mp.add_argument("--progress", action="store_true", help="progress bar even when not on a terminal")
    mp.set_defaults(func=cmd_manifest_push)
    r = sub.add_parser("release", help="release bundles: keys and builds").add_subparsers(
        dest="action", required=True
    )
    kg = r.add_parser("keygen", help="make an Ed25519 release key; prints its public key")
    kg.add_argument("-o", "--output", required=True, help="the private key file to write (PEM, mode 600)")
    kg.set_defaults(func=cmd_release_keygen, offline=True)
    rb = r.add_parser("build", help="build and sign a release bundle from this checkout")
    rb.add_argument("--version", required=True, help="the release version (set in the built wheel)")
    rb.add_argument("--key", required=True, help="Ed25519 private key file (PEM, or the 32-byte seed in hex)")
    rb.add_argument("-o", "--output", required=True, help="the bundle to write (.tar.gz)")
    rb.add_argument("--source", help="the checkout (default: the one around the working directory)")
    rb.add_argument("--wheels-from", help="take dependencies from this folder of wheels, not a package index")
    rb.add_argument("--json", action="store_true")
    rb.set_defaults(func=cmd_release_build, offline=True)
    u = sub.add_parser("update", help="send a release to an agent or a site (a canary first) and follow it")
    u.add_argument("target", metavar="SITE/DEVICE|SITE/*")
    u.add_argument("--version", required=True)
    u.add_argument("--url", required=True, help="where the agents fetch the bundle (http, https or file)")
    u.add_argument("--sha256", required=True)
    u.add_argument("--signature", required=True)
    u.add_argument(
        "--canary", type=int, default=0, help="update N agents first, the rest only if all are healthy"
    )
    u.add_argument("--timeout", type=float, default=900.0, help="seconds per phase (canary, rest)")
    u.add_argument("--wait", type=float, default=3.0, help="longest wait for the retained states, seconds")
    u.add_argument("--json", action="store_true")
    u.set_defaults(func=cmd_update)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "offline", False):  # release commands need no broker
        code: int = args.func(None, args)
        return code
    fleet = Fleet(args)
    try:
        code = args.func(fleet, args)
        return code
    finally:
        fleet.close()


if __name__ == "__main__":
    sys.exit(main())
