"""What every simulator shares: its JSON-line event report, where its payloads come from, and
the udev-like stable symlink to a pty."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path


def emit(event: str, **fields: object) -> None:
    """One event as a JSON line on stdout, which tests and operators read."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def add_payload_source(p: argparse.ArgumentParser, rate: float) -> None:
    """The arguments `payloads()` reads, and the pace: every scanner simulator takes them."""
    p.add_argument("payload", nargs="*", help="payloads to scan; none: --file or standard input")
    p.add_argument("--file", help="payloads, one per line")
    p.add_argument("--repeat", type=int, default=1, help="send the payloads this many times")
    p.add_argument("--rate", type=float, default=rate, help="payloads per second (0: as fast as possible)")


def payloads(args: argparse.Namespace) -> Iterator[str]:
    """`--file`, else the PAYLOAD arguments, else standard input; `--repeat` times."""
    for _ in range(args.repeat):
        if args.file:
            with open(args.file, encoding="utf-8") as fh:
                yield from (line.rstrip("\n") for line in fh)
        elif args.payload:
            yield from args.payload
        else:
            yield from (line.rstrip("\n") for line in sys.stdin)


def point_link(link: Path, target: str) -> None:
    """Point `link` at `target` atomically, as udev keeps /dev/edge-agent/... pointing at a device."""
    tmp = link.with_name(link.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    tmp.replace(link)
