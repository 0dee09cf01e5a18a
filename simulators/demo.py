"""`edge-sim demo`: the agent on simulated hardware, for an operator to watch.

Starts a serial scanner on a pty and an HID scanner on a FIFO at the paths the demo config
names, starts `edge-agent run` with that config, and types a realistic mix of payloads into
both scanners (signed return labels, SSCCs, S10 and UPS numbers, forged labels, bad check
digits, station commands, line noise, an unplug) until interrupted or `--duration` passes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from simulators.samples import demo_payloads


def _spawn_sim(kind: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simulators", kind, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def run(args: argparse.Namespace) -> int:
    config = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
    state = Path(config["storage"]["path"])
    if args.fresh and state.exists():
        shutil.rmtree(state)
    sims: list[tuple[str, subprocess.Popen[str]]] = []
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
    agent_cmd = [sys.executable, "-m", "edge_agent.cli", "run", "-c", args.config]
    agent = subprocess.Popen(agent_cmd)
    print(f"demo: agent pid {agent.pid}, {len(sims)} simulated scanners; Ctrl-C to stop", file=sys.stderr)
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.duration if args.duration else None
    payloads = demo_payloads(rng)
    i = 0
    try:
        time.sleep(1.0)
        while deadline is None or time.monotonic() < deadline:
            if agent.poll() is not None:
                print(f"demo: the agent exited with {agent.returncode}", file=sys.stderr)
                return 1
            kind, sim = sims[i % len(sims)]
            line = payloads[i % len(payloads)]
            if i and i % 17 == 0 and kind == "serial":
                line = "!noise"
            elif i and i % 41 == 0:
                line = "!hangup 2" if kind == "serial" else "!unplug 2"
            assert sim.stdin is not None
            sim.stdin.write(line + "\n")
            sim.stdin.flush()
            i += 1
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        for _, sim in sims:
            with contextlib.suppress(OSError):
                if sim.stdin:
                    sim.stdin.close()
            sim.terminate()
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                agent.kill()
        for _, sim in sims:
            with contextlib.suppress(subprocess.TimeoutExpired):
                sim.wait(timeout=5)
    print(f"demo: typed {i} payloads; agent exit status {agent.returncode}", file=sys.stderr)
    return 0 if agent.returncode == 0 else 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", default=os.environ.get("EDGE_DEMO_CONFIG", "config/demo.yaml"))
    p.add_argument("--interval", type=float, default=1.5, help="seconds between payloads")
    p.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)"
    )
    p.add_argument("--fresh", action="store_true", help="delete the demo's storage first")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=run)
