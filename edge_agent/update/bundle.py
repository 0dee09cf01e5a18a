"""Release bundles: fetched within bounds, verified before anything is installed, unpacked safely.

- Fetch (`fetch`): http(s) or file URLs, streamed to `<name>.part` beside the releases. Bounded:
  at most `max_bytes` (a longer body is cut off and refused), and only while the file system
  keeps `reserve_bytes` free after the bundle and its installation (estimated `INSTALL_FACTOR`
  times the bundle), checked before the first byte and again every megabyte; a write that fails
  (ENOSPC) removes the part file. Retried with a jittered backoff; an http download goes on
  from where it stopped (`Range`), or from the start when the server does not do ranges.
- Verify (`verify`): the SHA-256 of the whole file, then an Ed25519 signature of those 32 raw
  bytes by one of the configured public keys. Either failing deletes the file.
- Unpack (`extract_wheels`): only regular files named `*.whl` are taken from the tar (gzip or
  not), by their base name, so no path in the archive can write outside the folder; the total
  unpacked size is bounded too.

Blocking functions, for a thread (`asyncio.to_thread`); they raise `BundleError(code, message)`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

INSTALL_FACTOR = 4
CHUNK = 1 << 16


class BundleError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _room(folder: Path, need: int, reserve: int) -> None:
    free = shutil.disk_usage(folder).free
    if free - need < reserve:
        raise BundleError(
            "no_space",
            f"{folder} has {free // 2**20} MiB free; the bundle and its installation need about "
            f"{need // 2**20} MiB and update.min_free_mb keeps {reserve // 2**20} MiB free",
        )


def fetch(
    url: str, dest: Path, max_bytes: int, reserve_bytes: int, attempts: int = 5, timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:  # fmt: skip
    """Download `url` to `dest`; returns its size."""
    part = dest.with_name(dest.name + ".part")
    parsed = urllib.parse.urlsplit(url)
    try:
        if parsed.scheme == "file":
            return _copy_file(
                Path(urllib.request.url2pathname(parsed.path)), part, dest, max_bytes, reserve_bytes
            )
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                _http_once(url, part, max_bytes, reserve_bytes, timeout)
                part.replace(dest)
                return dest.stat().st_size
            except BundleError:
                raise
            except (OSError, urllib.error.URLError) as exc:
                if isinstance(exc, urllib.error.HTTPError) and exc.code in (401, 403, 404, 410):
                    raise BundleError("download_failed", f"{url}: HTTP {exc.code} {exc.reason}") from None
                last = exc
                if attempt + 1 < attempts:
                    sleep(min(30.0, 2.0**attempt) * random.uniform(0.5, 1.0))
        raise BundleError("download_failed", f"{url}: {attempts} attempts failed, last: {last}")
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise


def _copy_file(source: Path, part: Path, dest: Path, max_bytes: int, reserve: int) -> int:
    try:
        size = source.stat().st_size
    except OSError as exc:
        raise BundleError("download_failed", f"{source}: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise BundleError("too_large", f"the bundle is {size} bytes; update.max_bundle_mb allows {max_bytes}")
    _room(part.parent, size * (1 + INSTALL_FACTOR), reserve)
    with source.open("rb") as src:
        _write(src.read, part, 0, max_bytes, reserve, size)
    part.replace(dest)
    return size


def _http_once(url: str, part: Path, max_bytes: int, reserve: int, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "edge-agent-launch"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        status = getattr(response, "status", 200)
        if have and status != 206:
            have = 0  # the server sends the whole file again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if status == 206:
            match = re.search(r"/(\d+)$", response.headers.get("Content-Range", ""))
            total = int(match.group(1)) if match else total
        if total is not None and total > max_bytes:
            raise BundleError(
                "too_large", f"the bundle is {total} bytes; update.max_bundle_mb allows {max_bytes}"
            )
        _room(part.parent, (total or max_bytes) * (1 + INSTALL_FACTOR) - have, reserve)
        _write(response.read, part, have, max_bytes, reserve, total)


def _write(read: Callable[[int], bytes], part: Path, have: int, max_bytes: int, reserve: int,
           total: int | None) -> None:  # fmt: skip
    written = have
    mode = "ab" if have else "wb"
    try:
        with part.open(mode) as out:
            next_check = written + (1 << 20)
            while True:
                chunk = read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > max_bytes:
                    raise BundleError(
                        "too_large", f"the bundle passed update.max_bundle_mb ({max_bytes} bytes)"
                    )
                out.write(chunk)
                if written >= next_check:
                    next_check = written + (1 << 20)
                    remaining = (total - written) if total else 0
                    _room(part.parent, remaining + (total or written) * INSTALL_FACTOR, reserve)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        raise BundleError("download_failed", f"cannot write {part}: {exc.strerror or exc}") from None
    if total is not None and written != total:
        raise OSError(f"the connection closed after {written} of {total} bytes")


def sha256_of(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def verify(path: Path, sha256_hex: str, signature_hex: str, public_keys: Iterable[str]) -> None:
    """The digest, then the signature; a bundle that fails either is deleted."""
    try:
        digest = sha256_of(path)
        if digest.hex() != sha256_hex.lower():
            raise BundleError(
                "bad_digest", f"the bundle's SHA-256 is {digest.hex()}, the update named {sha256_hex.lower()}"
            )
        if signing_key(digest, bytes.fromhex(signature_hex), public_keys) is not None:
            return
        raise BundleError("bad_signature", "the signature is not that of any key in update.public_keys")
    except BundleError:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def signing_key(digest: bytes, signature: bytes, public_keys: Iterable[str]) -> str | None:
    """The first of `public_keys` (hex) whose Ed25519 signature of `digest` `signature` is."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    for key_hex in public_keys:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(signature, digest)
        except (InvalidSignature, ValueError):
            continue
        return key_hex
    return None


def extract_wheels(bundle: Path, folder: Path, max_bytes: int) -> list[Path]:
    """The wheels of the bundle, by base name, into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    total = 0
    try:
        with tarfile.open(bundle, "r:*") as tar:
            for member in tar:
                name = os.path.basename(member.name)
                if not member.isfile() or not name.endswith(".whl") or name.startswith("."):
                    continue
                total += member.size
                if total > max_bytes * INSTALL_FACTOR:
                    raise BundleError("bad_bundle", "the bundle unpacks to more than its bound allows")
                source = tar.extractfile(member)
                if source is None:
                    continue
                target = folder / name
                with source, target.open("wb") as fh:
                    shutil.copyfileobj(source, fh, CHUNK)
                out.append(target)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError("bad_bundle", f"the bundle is not a readable tar file: {exc}") from None
    if not out:
        raise BundleError("bad_bundle", "the bundle holds no wheels")
    return out


def agent_wheel(wheels: Iterable[Path], distribution: str, version: str) -> Path:
    """The agent's own wheel at `version` (names are normalized: dock-edge-agent -> dock_edge_agent)."""
    prefix = re.sub(r"[-_.]+", "_", distribution).lower()
    found = []
    for wheel in wheels:
        parts = wheel.name.split("-")
        if len(parts) >= 5 and re.sub(r"[-_.]+", "_", parts[0]).lower() == prefix:
            found.append((parts[1], wheel))
            if parts[1] == version:
                return wheel
    seen = ", ".join(v for v, _ in found) or "none"
    raise BundleError(
        "bad_bundle", f"the bundle has no {distribution} {version} wheel (versions in it: {seen})"
    )


# --- keys -------------------------------------------------------------------------------------
def load_private_key(path: Path) -> object:
    """An Ed25519 private key: PEM (PKCS#8, as `openssl genpkey -algorithm ed25519` writes) or the
    32-byte seed in hex."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = path.read_bytes()
    text = data.strip()
    if re.fullmatch(rb"[0-9a-fA-F]{64}", text):
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text.decode()))
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def sign(key: object, digest: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    assert isinstance(key, Ed25519PrivateKey)
    return key.sign(digest)


def public_hex(key: object) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    assert isinstance(key, Ed25519PrivateKey)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()
