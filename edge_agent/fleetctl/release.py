"""`edge-fleet release ...`: keys, bundles and what is in them. Needs no broker."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_agent.fleetctl.client import EXIT_ERROR, EXIT_OK, EXIT_USAGE


def cmd_release_keygen(_fleet: object, args: argparse.Namespace) -> int:
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


def cmd_release_build(_fleet: object, args: argparse.Namespace) -> int:
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
