"""`edge-fleet release build` and `release keygen`: a signed release bundle from a checkout.

A bundle is a gzip'd tar of wheels (the agent at the given version and every dependency, built
or fetched by pip for this machine's platform: build on the same architecture and Python as the
docks, e.g. on a Pi or an arm64 builder) plus `release.json` saying what it is. The printed
`sha256` is the bundle's digest; `signature` is Ed25519 over those 32 raw bytes.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from edge_agent.update.bundle import BundleError, agent_wheel, load_private_key, public_hex, sha256_of, sign
from edge_agent.update.protocol import VERSION_PATTERN
from edge_agent.update.releases import DISTRIBUTION

IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "*.egg-info", "__pycache__", "build", "dist", ".pytest_cache", ".mypy_cache",
    ".ruff_cache", "*.pyc",
)  # fmt: skip


def project_root(start: Path | None = None) -> Path:
    """The checkout: the nearest folder up from `start` (or the working directory) whose
    pyproject.toml names this project; else the one this package was installed from."""
    for folder in [(start or Path.cwd()).resolve(), *(start or Path.cwd()).resolve().parents]:
        if _is_project(folder):
            return folder
    here = Path(__file__).resolve().parents[2]
    if _is_project(here):
        return here
    raise BundleError(
        "no_checkout", f"no {DISTRIBUTION} checkout (pyproject.toml) at or above {start or Path.cwd()}"
    )


def _is_project(folder: Path) -> bool:
    try:
        text = (folder / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return False
    return re.search(rf'^name\s*=\s*"{re.escape(DISTRIBUTION)}"', text, re.M) is not None


def set_version(source: Path, version: str) -> None:
    """The version in pyproject.toml and in `edge_agent.__version__` (what the agent reports)."""
    for rel, pattern, line in (
        ("pyproject.toml", r'^version\s*=\s*"[^"]*"', f'version = "{version}"'),
        ("edge_agent/__init__.py", r'_installed_version\("[^"]*"\)', f'_installed_version("{version}")'),
    ):
        path = source / rel
        text, count = re.subn(pattern, line, path.read_text(encoding="utf-8"), count=1, flags=re.M)
        if count != 1:
            raise BundleError("no_checkout", f"{path}: no version to set")
        path.write_text(text, encoding="utf-8")


def keygen(output: Path) -> str:
    """A new Ed25519 private key (PEM, mode 0600) at `output`; returns its public key in hex."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return public_hex(key)


def build(
    version: str, key_file: Path, output: Path, source: Path | None = None, wheels_from: Path | None = None,
) -> dict[str, str]:  # fmt: skip
    """Build, write and sign a bundle; returns {"version", "sha256", "signature", "public_key", "bundle"}."""
    if not VERSION_PATTERN.match(version):
        raise BundleError("bad_version", f"{version!r} is not a release version")
    try:
        key = load_private_key(key_file)
    except (OSError, ValueError) as exc:
        raise BundleError("bad_key", f"{key_file}: {exc}") from None
    root = project_root(source)
    with tempfile.TemporaryDirectory(prefix="edge-release-") as tmp:
        src, wheels = Path(tmp) / "src", Path(tmp) / "wheels"
        shutil.copytree(root, src, ignore=IGNORE, symlinks=True)
        set_version(src, version)
        argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--wheel-dir",
                str(wheels), str(src)]  # fmt: skip
        if wheels_from is not None:
            # offline: the build backend is this environment's setuptools, not one fetched from an index
            argv[4:4] = ["--no-index", "--find-links", str(wheels_from), "--no-build-isolation"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-6:])
            raise BundleError("build_failed", f"pip wheel failed: {tail}")
        files = sorted(wheels.glob("*.whl"))
        agent_wheel(files, DISTRIBUTION, version)  # pip normalises versions: say so if it did
        manifest = {
            "name": DISTRIBUTION, "version": version, "python": platform.python_version(),
            "platform": f"{sys.platform}-{platform.machine()}", "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "wheels": [f.name for f in files],
        }  # fmt: skip
        partial = output.with_name(output.name + ".tmp")
        with tarfile.open(partial, "w:gz") as tar:
            body = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo("release.json")
            info.size, info.mtime, info.mode = len(body), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(body))
            for wheel in files:
                tar.add(wheel, arcname=wheel.name)
        partial.replace(output)
    digest = sha256_of(output)
    return {
        "version": version,
        "bundle": str(output),
        "sha256": digest.hex(),
        "signature": sign(key, digest).hex(),
        "public_key": public_hex(key),
    }
