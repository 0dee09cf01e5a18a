"""`edge-fleet release build` and `release keygen`: a signed release bundle from a checkout.

A bundle is a gzip'd tar of wheels (the agent at the given version and every dependency) plus
`release.json` saying what it is and for which platform and Python. It is built on any machine
for the docks' platform (`--platform linux_aarch64 --python 3.11`): the agent's own wheel is
pure Python and built here; every dependency is fetched as a wheel for the target with pip's
documented cross-platform options (`pip download --only-binary=:all: --platform ...
--python-version ... --implementation cp`), never built from source, so nothing compiled for
the builder's machine can get in. A dependency with no such wheel is an error naming it, unless
`--wheels-from DIR` holds one (built once on a machine of the target platform). Every gathered
wheel is then checked against the target's tags (platforms.py), the same check a dock makes
before it installs. The printed `sha256` is the bundle's digest; `signature` is Ed25519 over
those 32 raw bytes. Both also go into `BUNDLE.sig` beside it, for `release inspect`.
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
from edge_agent.update.platforms import PlatformError, Target, first_misfit, target
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
    platform_name: str | None = None, python: str | None = None, no_index: bool = False,
) -> dict[str, str]:  # fmt: skip
    """Build, write and sign a bundle; returns {"version", "platform", "python", "sha256",
    "signature", "public_key", "bundle"}."""
    if not VERSION_PATTERN.match(version):
        raise BundleError("bad_version", f"{version!r} is not a release version")
    try:
        aim = target(platform_name, python)
    except PlatformError as exc:
        raise BundleError("bad_request", str(exc)) from None
    if no_index and wheels_from is None:
        raise BundleError("bad_request", "--no-index needs --wheels-from DIR: the wheels come from there")
    try:
        key = load_private_key(key_file)
    except (OSError, ValueError) as exc:
        raise BundleError("bad_key", f"{key_file}: {exc}") from None
    root = project_root(source)
    with tempfile.TemporaryDirectory(prefix="edge-release-") as tmp:
        src, wheels = Path(tmp) / "src", Path(tmp) / "wheels"
        shutil.copytree(root, src, ignore=IGNORE, symlinks=True)
        set_version(src, version)
        links = ["--find-links", str(wheels_from)] if wheels_from is not None else []
        offline = ["--no-index"] if no_index else []
        # the agent's own wheel: pure Python, the same for every platform; offline, the build
        # backend is this environment's setuptools, not one fetched from an index
        _pip(["wheel", "--no-deps", "--wheel-dir", str(wheels), *offline, *links,
              *(["--no-build-isolation"] if no_index else []), str(src)], "pip wheel")  # fmt: skip
        own = agent_wheel(wheels.glob("*.whl"), DISTRIBUTION, version)  # pip normalises versions: say so
        _gather(own, wheels, aim, offline + links, wheels_from)
        files = sorted(wheels.glob("*.whl"))
        misfit = first_misfit([f.name for f in files], aim.tags)
        if misfit is not None:
            raise BundleError("bad_platform", f"{misfit} does not fit {aim.name} / CPython {aim.python_text}")
        manifest = {
            "name": DISTRIBUTION, "version": version, "platform": aim.name, "python": aim.python_text,
            "implementation": "cp", "glibc": ".".join(map(str, aim.glibc)),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "built_on": f"{sys.platform}-{platform.machine()} Python {platform.python_version()}",
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
    result = {
        "version": version,
        "platform": aim.name,
        "python": aim.python_text,
        "bundle": str(output),
        "sha256": digest.hex(),
        "signature": sign(key, digest).hex(),
        "public_key": public_hex(key),
    }
    signature_file(output).write_text(
        json.dumps({k: result[k] for k in ("version", "sha256", "signature", "public_key")}, indent=1) + "\n",
        encoding="utf-8",
    )
    return result


def signature_file(bundle: Path) -> Path:
    return bundle.with_name(bundle.name + ".sig")


def _gather(own: Path, wheels: Path, aim: Target, sources: list[str], wheels_from: Path | None) -> None:
    """Every dependency of the agent's wheel, as wheels for `aim`, into `wheels`."""
    argv = ["download", "--only-binary=:all:", "--dest", str(wheels), "--python-version", aim.python_text,
            "--implementation", "cp", "--abi", f"cp{aim.python[0]}{aim.python[1]}", *sources]  # fmt: skip
    for tag in aim.platforms:
        argv += ["--platform", tag]
    done = _pip([*argv, str(own)], "pip download", check=False)
    if done.returncode == 0:
        return
    text = done.stderr or done.stdout
    missing = re.search(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)", text)
    if missing is None:
        raise BundleError("build_failed", f"pip download failed: {_tail(text)}")
    name = missing.group(1)
    where = f"the package index or {wheels_from}" if wheels_from is not None else "the package index"
    raise BundleError(
        "missing_wheel",
        f"{name} has no wheel for {aim.name} / CPython {aim.python_text} on {where}. Build one on a "
        f"machine of that platform (`edge-fleet release wheel {name}` prints how) and pass the folder "
        f"it is in with --wheels-from DIR",
    )


def _pip(args: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pip", args[0], "--quiet", "--disable-pip-version-check", *args[1:]]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise BundleError("build_failed", f"{what} failed: {_tail(done.stderr or done.stdout)}")
    return done


def _tail(text: str) -> str:
    return " | ".join(text.strip().splitlines()[-6:])


def wheel_command(name: str, aim: Target) -> str:
    """What to run on a machine of `aim`'s platform to make the wheel a bundle lacks."""
    return (
        f"sudo apt-get install -y python3-venv python3-dev gcc && python{aim.python_text} -m venv /tmp/w && "
        f"/tmp/w/bin/pip wheel --no-deps --wheel-dir wheels-{aim.name} '{name}'"
    )
