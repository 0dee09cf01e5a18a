"""`edge-fleet`: one tool for fleet admins, over the same MQTT contract as the central system.

    edge-fleet ls [--site S] [--json]
    edge-fleet cmd SITE/DEVICE|SITE/*|--all NAME [ARGS-JSON] [--timeout S] [--json]
    edge-fleet config push SITE/DEVICE|SITE FILE [--timeout S] [--json]
    edge-fleet tail [SITE[/DEVICE]] [--json] [--count N]
    edge-fleet manifest push SITE FILE [--version N] [--base N] [--chunk N]
    edge-fleet release keygen -o KEY_FILE
    edge-fleet release build --version V --key KEY_FILE -o BUNDLE [--platform linux_aarch64|linux_x86_64]
                             [--python 3.11] [--wheels-from DIR [--no-index]] [--source DIR]
    edge-fleet release inspect BUNDLE [--signature S] [--public-key K] [-c FILE] [--json]
    edge-fleet release wheel REQUIREMENT [--platform P] [--python 3.11]
    edge-fleet update SITE/DEVICE|SITE/* --version V --url URL --sha256 H --signature S [--canary N]

Broker options (`--host`, `--port`, `--username`, `--password`, `--ca`, `--cert`, `--key`) come
first; `EDGE_FLEET_HOST` and `EDGE_FLEET_PORT` set defaults.
"""

from __future__ import annotations

import argparse
import os
import signal

from edge_agent.fleetctl.client import Fleet, config_push
from edge_agent.fleetctl.commands import cmd_cmd, cmd_ls, cmd_manifest_push, cmd_tail
from edge_agent.fleetctl.release import add_parsers


def cmd_update(fleet: Fleet | None, args: argparse.Namespace) -> int:
    from edge_agent.fleetctl.update import update

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
    add_parsers(sub)
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
    # `edge-fleet ... | head` ends quietly, as a Unix tool does, not with a BrokenPipeError
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
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
