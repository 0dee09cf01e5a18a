"""What a bundle holds, read without unpacking it: its `release.json`, its wheels, and whether
they fit a machine. Used by the device before it installs (`check_fit`) and by `edge-fleet
release inspect` (`describe`). Blocking; raises `BundleError`."""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edge_agent.update.bundle import BundleError, sha256_of, signing_key
from edge_agent.update.platforms import PlatformError, describe_host, first_misfit, wheel_tags

MAX_MANIFEST = 1 << 20


def read(bundle: Path) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """(release.json, or {} for a bundle that has none; [(wheel name, bytes)] in the tar's order)."""
    manifest: dict[str, Any] = {}
    wheels: list[tuple[str, int]] = []
    try:
        with tarfile.open(bundle, "r:*") as tar:
            for member in tar:
                name = os.path.basename(member.name)
                if not member.isfile() or name.startswith("."):
                    continue
                if name == "release.json" and member.size <= MAX_MANIFEST:
                    source = tar.extractfile(member)
                    if source is not None:
                        with source:
                            manifest = _manifest(source.read())
                elif name.endswith(".whl"):
                    wheels.append((name, member.size))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError("bad_bundle", f"the bundle is not a readable tar file: {exc}") from None
    return manifest, wheels


def _manifest(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise BundleError("bad_bundle", f"release.json is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BundleError("bad_bundle", "release.json is not a JSON object")
    return value


def check_fit(bundle: Path) -> None:
    """Refuse a bundle with a wheel this interpreter cannot install (`bad_platform`, naming it)."""
    manifest, wheels = read(bundle)
    try:
        misfit = first_misfit(name for name, _ in wheels)
    except PlatformError as exc:
        raise BundleError("bad_bundle", str(exc)) from None
    if misfit is None:
        return
    built_for = manifest.get("platform"), manifest.get("python")
    said = f"; the bundle was built for {built_for[0]} / Python {built_for[1]}" if all(built_for) else ""
    raise BundleError(
        "bad_platform",
        f"{misfit} does not fit this device ({describe_host()}): its tags are "
        f"{', '.join(sorted(str(t) for t in wheel_tags(misfit)))}{said}",
    )


def describe(bundle: Path, signature: str | None, keys: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Everything `release inspect` shows. `keys` are (public key hex, where it came from)."""
    manifest, wheels = read(bundle)
    digest = sha256_of(bundle)
    rows = []
    for name, size in wheels:
        try:
            platforms = sorted({t.platform for t in wheel_tags(name)})
        except PlatformError:
            platforms = ["not a wheel name"]
        rows.append({"name": name, "bytes": size, "platforms": platforms})
    listed = manifest.get("wheels")
    try:
        misfit = first_misfit(name for name, _ in wheels)
    except PlatformError as exc:
        misfit = str(exc)
    return {
        "bundle": str(bundle),
        "bytes": bundle.stat().st_size,
        "name": manifest.get("name"),
        "version": manifest.get("version"),
        "platform": manifest.get("platform"),
        "python": manifest.get("python"),
        "built": manifest.get("built"),
        "built_on": manifest.get("built_on"),
        "wheels": rows,
        "listed_wheels_match": isinstance(listed, list) and sorted(listed) == sorted(n for n, _ in wheels),
        "sha256": digest.hex(),
        "signature": _signature(digest, signature, list(keys)),
        "fits_this_machine": misfit is None,
        "misfit": misfit,
        "this_machine": describe_host(),
    }


def _signature(digest: bytes, signature: str | None, keys: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {"value": signature, "valid": False, "key": None, "key_source": None,
                           "keys_checked": len(keys)}  # fmt: skip
    if not signature:
        out["why"] = "no signature given (--signature) and no BUNDLE.sig beside the bundle"
        return out
    try:
        raw = bytes.fromhex(signature)
    except ValueError:
        out["why"] = "the signature is not hex"
        return out
    sources = dict(reversed(keys))  # a key given twice: its first source
    key = signing_key(digest, raw, [k for k, _ in keys])
    if key is not None:
        out.update(valid=True, key=key, key_source=sources[key])
        return out
    out["why"] = (
        "no public key to check it with (--public-key or -c FILE)"
        if not keys
        else "the signature is not that of any key checked"
    )
    return out
