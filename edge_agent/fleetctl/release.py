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
                       Path(args.wheels_from) if args.wheels_from else None,
                       args.platform, args.python, args.no_index)  # fmt: skip
    except BundleError as exc:
        print(f"edge-fleet: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(result))
    else:
        print(f"bundle     {result['bundle']} ({Path(result['bundle']).stat().st_size} bytes)")
        print(f"version    {result['version']}")
        print(f"platform   {result['platform']} / Python {result['python']}")
        print(f"sha256     {result['sha256']}")
        print(f"signature  {result['signature']}")
        print(f"public_key {result['public_key']}")
    return EXIT_OK


def cmd_release_inspect(_fleet: object, args: argparse.Namespace) -> int:
    from edge_agent.update.build import signature_file
    from edge_agent.update.bundle import BundleError
    from edge_agent.update.contents import describe

    bundle = Path(args.bundle)
    signature, keys, recorded = args.signature, [(k, "given") for k in args.public_key], None
    sidecar = signature_file(bundle)
    if sidecar.exists():
        try:
            saved = json.loads(sidecar.read_text(encoding="utf-8"))
            signature = signature or saved.get("signature")
            recorded = saved.get("public_key")
        except (OSError, ValueError, AttributeError):
            print(f"edge-fleet: {sidecar} is not a signature file; ignored", file=sys.stderr)
    if args.config:
        from edge_agent.config import load_config
        from edge_agent.errors import ConfigError

        try:
            keys += [
                (k, f"{args.config} update.public_keys")
                for k in load_config(Path(args.config)).update.public_keys
            ]
        except ConfigError as exc:
            print(f"edge-fleet: {args.config}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if not keys and recorded:
        keys = [(recorded, f"recorded in {sidecar.name} by the build: trust it only if you know that key")]
    try:
        info = describe(bundle, signature, keys)
    except (BundleError, OSError) as exc:
        print(f"edge-fleet: {bundle}: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(info))
        return EXIT_OK
    sig = info["signature"]
    print(f"bundle     {info['bundle']} ({info['bytes']} bytes)")
    print(f"version    {info['version'] or '? (no release.json)'}")
    print(
        f"platform   {info['platform'] or '?'} / Python {info['python'] or '?'}  (built {info['built']} on {info['built_on']})"
    )
    print(f"sha256     {info['sha256']}")
    if sig["valid"]:
        print(f"signature  valid, key {sig['key']} ({sig['key_source']})")
    else:
        print(f"signature  NOT verified: {sig['why']}")
    fits = "yes" if info["fits_this_machine"] else f"no, {info['misfit']}"
    print(f"this machine ({info['this_machine']}) could install it: {fits}")
    print(
        f"wheels     {len(info['wheels'])}"
        + ("" if info["listed_wheels_match"] else " (release.json lists others!)")
    )
    for row in info["wheels"]:
        print(f"  {row['name']:72} {row['bytes']:>10}  {' '.join(row['platforms'])}")
    return EXIT_OK


def cmd_release_wheel(_fleet: object, args: argparse.Namespace) -> int:
    from edge_agent.update.build import wheel_command
    from edge_agent.update.platforms import PlatformError, target

    try:
        aim = target(args.platform, args.python)
    except PlatformError as exc:
        print(f"edge-fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"# on a {aim.name} machine with Python {aim.python_text} (a Pi of the fleet, Raspberry Pi OS 12):")
    print(wheel_command(args.requirement, aim))
    print(f"# copy wheels-{aim.name}/ to the machine that builds releases, and keep it: then")
    print(f"edge-fleet release build --platform {aim.name} --python {aim.python_text} "
          f"--wheels-from wheels-{aim.name} --version V --key release.pem -o edge-agent-V.tar.gz")  # fmt: skip
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser("release", help="release bundles: keys, builds, what is in them").add_subparsers(
        dest="action", required=True
    )
    kg = r.add_parser("keygen", help="make an Ed25519 release key; prints its public key")
    kg.add_argument("-o", "--output", required=True, help="the private key file to write (PEM, mode 600)")
    kg.set_defaults(func=cmd_release_keygen, offline=True)
    rb = r.add_parser(
        "build", help="build and sign a release bundle from this checkout for the docks' platform"
    )
    rb.add_argument("--version", required=True, help="the release version (set in the built wheel)")
    rb.add_argument("--key", required=True, help="Ed25519 private key file (PEM, or the 32-byte seed in hex)")
    rb.add_argument("-o", "--output", required=True, help="the bundle to write (.tar.gz)")
    rb.add_argument("--platform", help="the docks' platform: linux_aarch64 (Raspberry Pi OS 64-bit) or "
                    "linux_x86_64; default this machine's")  # fmt: skip
    rb.add_argument("--python", help="the docks' Python, e.g. 3.11 (Raspberry Pi OS 12); default this one's")
    rb.add_argument("--source", help="the checkout (default: the one around the working directory)")
    rb.add_argument(
        "--wheels-from", help="a folder of wheels the index lacks (built on a dock: release wheel)"
    )
    rb.add_argument(
        "--no-index", action="store_true", help="ask no package index: every wheel from --wheels-from"
    )
    rb.add_argument("--json", action="store_true")
    rb.set_defaults(func=cmd_release_build, offline=True)
    ri = r.add_parser("inspect", help="what a bundle holds, for which platform, and whose signature it has")
    ri.add_argument("bundle")
    ri.add_argument("--signature", help="the signature to check (default: from BUNDLE.sig, written by build)")
    ri.add_argument("--public-key", action="append", default=[], help="a public key (hex) to check it with")
    ri.add_argument("-c", "--config", help="an agent's configuration file: check with its update.public_keys")
    ri.add_argument("--json", action="store_true")
    ri.set_defaults(func=cmd_release_inspect, offline=True)
    rw = r.add_parser("wheel", help="how to build, on a dock, a wheel that the index lacks for its platform")
    rw.add_argument("requirement", help="the distribution (and version), e.g. 'evdev==1.9.2'")
    rw.add_argument("--platform", default="linux_aarch64")
    rw.add_argument("--python", default="3.11")
    rw.set_defaults(func=cmd_release_wheel, offline=True)
