"""`edge-sim demo`: the whole loop on simulated hardware, for an operator to watch.

- a broker: the one at the config's `mqtt` address if it answers, else a Mosquitto started here;
- a simulated central system with a manifest of expected returns, which it serves when the agent
  asks, and which reports every 10 s what it received (missing seqs, duplicates);
- a serial scanner on a pty and an HID scanner on a FIFO at the config's paths;
- `edge-agent run` with the config, its log on this terminal;
- a realistic stream of scans into both scanners: labels of expected returns (RET1 QR, SSCC,
  S10), repeats (duplicates), unknown parcels, forged labels, bad check digits, mode changes,
  line noise and an unplug;
- receipts: after some parcels the worker scans the items out of the box (EAN-13, a GS1
  DataMatrix with its serial, the SKU), now and then with a grade change, a quantity, an item
  left in the box, an item from another order, then `CMD:DONE`; the receipts close in the log,
  on the page and at the central system.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from simulators.central import Central, item_scans, labels_of
from simulators.samples import s10

# the checkout: its config/demo.yaml is the default, and the feedback scripts it names are relative
# to it, so the demo runs the same from any working directory
CHECKOUT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = CHECKOUT / "config" / "demo.yaml"


def _spawn_sim(kind: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simulators", kind, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _start_broker(port: int) -> subprocess.Popen[bytes] | None:
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if binary is None:
        print("demo: no MQTT broker and no mosquitto here; the agent runs offline (scans stay in its outbox)",
              file=sys.stderr)  # fmt: skip
        return None
    conf = Path(tempfile.mkdtemp(prefix="edge-demo-broker-")) / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _listening("127.0.0.1", port):
        time.sleep(0.05)
    print(f"demo: started mosquitto on 127.0.0.1:{port}", file=sys.stderr)
    return proc


def _unpack(ret: dict[str, Any], other: dict[str, Any], rng: random.Random, n: int) -> list[str]:
    """The worker takes the items out of a parcel, one scan each (a serialised item by its
    DataMatrix); some parcels miss an item, hold one of another order, or have a damaged one."""
    out: list[str] = []
    lines = list(ret.get("items") or [])
    if n % 3 == 1 and len(lines) > 1:
        lines.pop()  # one item stayed with the customer
    for k, item in enumerate(lines):
        scans = item_scans(item)
        units = int(item.get("qty", 1))
        if n % 4 == 2 and k == 0 and units > 1:
            out += [f"CMD:QTY:{units}", scans[0]]  # all of them at once
            continue
        for unit in range(units):
            if n % 5 == 3 and unit == units - 1:
                out.append("CMD:GRADE:B")  # this one is damaged
            out.append(scans[2] if item.get("serials") else scans[unit % 2])
    if n % 4 == 3:
        out.append(item_scans(other["items"][0])[0])  # an item of another order
    out.append("CMD:DONE")
    return out


_UNPACKED: set[str] = set()


def _fresh(returns: list[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    for _ in range(50):
        ret = rng.choice(returns)
        if ret["return_id"] not in _UNPACKED:
            break
    _UNPACKED.add(ret["return_id"])
    return ret


SCALE = "SCALE:"
"""A line of the stream for the scale, not a scanner: the parcel goes on the pan before its scan."""


def _stream(central: Central | None, rng: random.Random) -> list[str]:
    """One round of what the dock sees."""
    out: list[str] = []
    returns = central.returns if central else []
    for i in range(12):
        if returns:
            unpack = i % 3 == 0 and i % 4 != 1
            # a parcel whose items are checked is one not yet received here (a duplicate opens no receipt)
            ret = _fresh(returns, rng) if unpack else rng.choice(returns)
            # what it weighs, give or take the scale and the packing; on every round one empty box
            grams = 180 if i == 2 else round(ret["weight_g"] * rng.uniform(0.95, 1.05))
            out.append(f"{SCALE}!weight {grams}")
            out.append(rng.choice(labels_of(ret)))
            if i % 4 == 1:
                out.append(out[-1])  # the same parcel scanned twice: a duplicate
            elif unpack:
                out += _unpack(ret, rng.choice(returns), rng, i // 3)
        else:
            out.append(s10(rng.randint(1, 99_999_999)))
        if i % 3 == 2:
            out.append(f"]C0PARCEL-{rng.randint(1000, 9999)}")  # nothing expected matches
        if i == 5:
            out.append(s10(12345678)[:10] + "0" + s10(12345678)[11:])  # a damaged label (or a lucky 0)
            out.append("RET1:K1:R0000001:SO-1:AAAAAAAAAAAAAAAA")  # a forged return label
        if i == 7:
            out.extend(["CMD:MODE:INSPECT", rng.choice(out[:3]), "CMD:MODE:RECEIVE"])
    return out


class Stopped(Exception):
    """SIGTERM or SIGHUP (a service manager, `timeout`, a closed terminal): stop as on Ctrl-C."""


def _stop_on_signal(signum: int, _frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    # Ctrl-C reaches the whole process group; SIGTERM and SIGHUP reach only this process, which
    # must stop its children itself, or they outlive it
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)
    demo = _Running()
    code = 0
    try:
        code = _run(args, demo)
    except (KeyboardInterrupt, Stopped):
        pass
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the stop short
        demo.stop.set()
        demo.finish()
    if demo.agent is None:
        return code
    print(f"demo: typed {demo.typed} payloads; agent exit status {demo.agent.returncode}", file=sys.stderr)
    return code or (0 if demo.agent.returncode == 0 else 1)


class _Running:
    """What the demo has started, so that any way out stops all of it."""

    def __init__(self) -> None:
        self.sims: list[tuple[str, subprocess.Popen[str]]] = []
        self.agent: subprocess.Popen[Any] | None = None
        self.central: Central | None = None
        self.broker: subprocess.Popen[bytes] | None = None
        self.stop = threading.Event()
        self.typed = 0

    def finish(self) -> None:
        _finish(self.agent, self.sims, self.central, self.broker)


def _run(args: argparse.Namespace, demo: _Running) -> int:
    path = Path(args.config).resolve() if args.config else DEMO_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"edge-sim demo: cannot read the demo's configuration {path}: {exc.strerror} "
              "(pass -c FILE, e.g. the checkout's config/demo.yaml)", file=sys.stderr)  # fmt: skip
        return 2
    config = YAML(typ="safe", pure=True).load(text)  # YAML 1.2, as the agent
    state = Path(config["storage"]["path"])
    if args.fresh and state.exists():
        shutil.rmtree(state)
    host, port = config["mqtt"]["host"], int(config["mqtt"].get("port", 1883))
    demo.broker = None if _listening(host, port) else _start_broker(port)
    site = config["device"]["site"]
    central: Central | None = None
    if _listening(host, port):
        demo.central = central = Central(host, port, site, persistent=False)
        central.generate(args.returns)
        print(f"demo: central system with {args.returns} expected returns (manifest version {central.version})",
              file=sys.stderr)  # fmt: skip
    sims = demo.sims
    for scanner in config.get("scanners", []):
        if scanner["type"] == "serial":
            Path(scanner["port"]).parent.mkdir(parents=True, exist_ok=True)
            sims.append(("serial", _spawn_sim("serial-scanner", "--link", scanner["port"], "--rate", "0")))
        elif scanner["type"] == "hid":
            Path(scanner["device"]).parent.mkdir(parents=True, exist_ok=True)
            keymap = scanner.get("keymap", "us")
            sims.append(
                (
                    "hid",
                    _spawn_sim("hid-scanner", "--fifo", scanner["device"], "--keymap", keymap, "--rate", "0"),
                )
            )
        elif scanner["type"] == "hidpos":
            Path(scanner["device"]).parent.mkdir(parents=True, exist_ok=True)
            sims.append(("hidpos", _spawn_sim("hidpos-scanner", "--fifo", scanner["device"], "--rate", "0")))
    for printer in config.get("printers", []):
        if printer.get("transport") == "tcp" and printer.get("host") in ("127.0.0.1", "localhost"):
            port_p = int(printer.get("port", 9100))
            if not _listening("127.0.0.1", port_p):
                jobs = state.parent / f"printer-{printer['id']}"
                sims.append(("printer", _spawn_sim("printer", "--lang", printer.get("language", "zpl"), "--port",
                                                   str(port_p), "--jobs-dir", str(jobs))))  # fmt: skip
                print(f"demo: simulated {printer.get('language')} printer {printer['id']} on :{port_p}, "
                      f"labels kept in {jobs}", file=sys.stderr)  # fmt: skip
    for scale in config.get("scales", []):
        where = scale.get("port") or scale.get("device")
        Path(where).parent.mkdir(parents=True, exist_ok=True)
        protocol = scale.get("protocol", "hid")
        place = ["--fifo", where] if protocol == "hid" else ["--link", where]
        sims.append(("scale", _spawn_sim("scale", "--protocol", protocol, *place, "--stay")))
        print(f"demo: simulated {protocol} scale {scale['id']} at {where}", file=sys.stderr)
    demo.agent = agent = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "run", "-c", str(path)],
                                          cwd=CHECKOUT if path == DEMO_CONFIG else None)  # fmt: skip
    display = config.get("display") or {}
    if display.get("enabled", True):
        print(f"demo: station display at http://{display.get('host', '127.0.0.1')}:{display.get('port', 8080)}/",
              file=sys.stderr)  # fmt: skip
    scanners_n = sum(1 for kind, _ in sims if kind not in ("printer", "scale"))
    print(f"demo: agent pid {agent.pid}, {scanners_n} simulated scanners; Ctrl-C to stop", file=sys.stderr)

    def report() -> None:
        while not demo.stop.wait(10.0):
            if central is not None:
                print("demo: central received " + json.dumps(central.report()), file=sys.stderr)
                print(_receipts(central), file=sys.stderr)

    threading.Thread(target=report, daemon=True).start()
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.duration if args.duration else None
    time.sleep(1.5)
    while deadline is None or time.monotonic() < deadline:
        for payload in _stream(central, rng):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if agent.poll() is not None:
                print(f"demo: the agent exited with {agent.returncode}", file=sys.stderr)
                return 1
            if payload.startswith(SCALE):
                for kind, sim in sims:
                    if kind == "scale" and sim.stdin is not None:
                        sim.stdin.write(payload[len(SCALE) :] + "\n")
                        sim.stdin.flush()
                time.sleep(args.interval)  # the parcel is on the pan before its label is scanned
                continue
            scanners = [x for x in sims if x[0] not in ("printer", "scale")]
            kind, sim = scanners[demo.typed % len(scanners)]
            line = payload
            if demo.typed and demo.typed % 17 == 0 and kind == "serial":
                line = "!noise"
            elif demo.typed and demo.typed % 61 == 0:
                line = "!hangup 2" if kind == "serial" else "!unplug 2"
            assert sim.stdin is not None
            sim.stdin.write(line + "\n")
            sim.stdin.flush()
            demo.typed += 1
            time.sleep(args.interval)
    return 0


def _receipts(central: Central) -> str:
    parts = []
    for device, log in central.receipts.items():
        complete = sum(1 for r in log.receipts if r["complete"])
        parts.append(
            f"{device}: {len(log.receipts)} ({complete} complete, missing seqs {log.missing()[:10]})"
        )
    return "demo: receipts closed " + (", ".join(parts) if parts else "none yet")


def _finish(
    agent: subprocess.Popen[Any] | None, sims: list[tuple[str, subprocess.Popen[str]]], central: Central | None,
    broker: subprocess.Popen[bytes] | None,
) -> None:  # fmt: skip
    for _, sim in sims:
        with contextlib.suppress(OSError):
            if sim.stdin:
                sim.stdin.close()
        sim.terminate()
    if agent is not None and agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
    for _, sim in sims:
        try:
            sim.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
    if central is not None:
        print("demo: central received " + json.dumps(central.report()), file=sys.stderr)
        print(_receipts(central), file=sys.stderr)
        central.close()
    if broker is not None:
        broker.terminate()
        broker.wait(timeout=10)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        default=os.environ.get("EDGE_DEMO_CONFIG"),
        help="the agent's configuration (default: the checkout's config/demo.yaml)",
    )
    p.add_argument("--interval", type=float, default=1.2, help="seconds between payloads")
    p.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)"
    )
    p.add_argument("--returns", type=int, default=200, help="expected returns in the central's manifest")
    p.add_argument("--fresh", action="store_true", help="delete the demo's storage first")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=run)
