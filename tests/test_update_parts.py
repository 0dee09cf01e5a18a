"""The pieces of software updates on their own: the launcher's line protocol, the `update`
arguments, fetching within bounds (a real HTTP server that breaks off and resumes), verification,
unpacking, the releases folder, storage schemas across releases, the `update:` configuration."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import sqlite3
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge_agent.config import parse_config
from edge_agent.errors import ConfigError
from edge_agent.store import db
from edge_agent.update.bundle import BundleError, agent_wheel, extract_wheels, fetch, verify
from edge_agent.update.protocol import LineDecoder, encode, parse_update_args
from edge_agent.update.releases import Releases, State

MESSAGES = [{"op": "hello", "version": "0.1.0", "schema": 1}, {"op": "health", "stage": "storage"},
            {"op": "software", "state": {"current": "0.1.0", "error": None, "note": "ü\u2028"}}]  # fmt: skip


# --- the channel's line protocol -------------------------------------------------------------
def test_lines_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    wire = b"".join(encode(m) for m in MESSAGES)
    assert LineDecoder().feed(wire) == MESSAGES
    decoder = LineDecoder()
    got: list[dict[str, Any]] = []
    for i in range(len(wire)):
        got += decoder.feed(wire[i : i + 1])
    assert got == MESSAGES
    decoder = LineDecoder()
    assert decoder.feed(wire + b'{"op": "hea') == MESSAGES
    assert decoder.feed(b'lth", "stage": "online"}\n') == [{"op": "health", "stage": "online"}]


def test_garbage_lines_are_reported_and_the_stream_goes_on() -> None:
    decoder = LineDecoder(max_line=64)
    out = decoder.feed(b"not json\n[1,2]\n\n" + b"x" * 100 + b"\n" + encode(MESSAGES[1]))
    assert [m["op"] for m in out] == ["garbage", "garbage", "garbage", "health"]
    assert "not JSON" in out[0]["error"] and "op" in out[1]["error"] and "longer than 64" in out[2]["error"]


# --- update arguments ------------------------------------------------------------------------
GOOD = {
    "version": "0.3.0",
    "url": "https://updates.example/0.3.0.tar",
    "sha256": "AB" * 32,
    "signature": "cd" * 64,
}


def test_update_args_are_checked_field_by_field() -> None:
    args = parse_update_args({**GOOD, "extra": 1})
    assert args.sha256 == "ab" * 32 and args.version == "0.3.0"
    for bad, field in (
        ({"version": "../etc"}, "version"),
        ({"version": "current"}, "version"),
        ({"url": "ftp://x/y"}, "url"),
        ({"sha256": "ab"}, "sha256"),
        ({"signature": "zz" * 64}, "signature"),
    ):
        with pytest.raises(ValueError, match=f"args.{field}"):
            parse_update_args({**GOOD, **bad})
    with pytest.raises(ValueError, match=r"args\.url: Field required"):
        parse_update_args({k: v for k, v in GOOD.items() if k != "url"})


# --- fetch -----------------------------------------------------------------------------------
class _Server(http.server.ThreadingHTTPServer):
    body = b""
    break_after: int | None = None
    ranges = True
    requests: list[str | None]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body, srv = self.server.body, self.server
        wanted = self.headers.get("Range")
        srv.requests.append(wanted)
        start = int(wanted[6:-1]) if wanted and srv.ranges else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        part = body[start:]
        if srv.break_after is not None:
            cut, srv.break_after = srv.break_after, None
            self.wfile.write(part[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)  # the link drops mid-download
            return
        self.wfile.write(part)


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_http_download_resumes_where_it_broke_off(tmp_path: Path, server: _Server) -> None:
    server.body = os.urandom(3 * 2**20 + 17)
    server.break_after = 2**20 + 5
    url = f"http://127.0.0.1:{server.server_address[1]}/b.tar"
    size = fetch(url, tmp_path / "b", 10 * 2**20, 0, sleep=lambda s: None)
    assert size == len(server.body) and (tmp_path / "b").read_bytes() == server.body
    assert server.requests == [None, f"bytes={2**20 + 5}-"]
    assert not (tmp_path / "b.part").exists()


def test_http_download_starts_again_when_the_server_ignores_ranges(tmp_path: Path, server: _Server) -> None:
    server.body, server.break_after, server.ranges = os.urandom(2**20 + 3), 1000, False
    fetch(f"http://127.0.0.1:{server.server_address[1]}/b", tmp_path / "b", 2**21, 0, sleep=lambda s: None)
    assert (tmp_path / "b").read_bytes() == server.body


def test_download_bounds_size_and_free_space(tmp_path: Path, server: _Server) -> None:
    server.body = b"x" * 5000
    url = f"http://127.0.0.1:{server.server_address[1]}/b"
    with pytest.raises(BundleError) as too_large:
        fetch(url, tmp_path / "b", 4000, 0)
    assert too_large.value.code == "too_large" and "4000" in too_large.value.message
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    with pytest.raises(BundleError) as no_space:
        fetch(url, tmp_path / "b", 10_000, free)  # keeping all that is free leaves no room
    assert no_space.value.code == "no_space" and "min_free_mb" in no_space.value.message
    local = tmp_path / "local.bin"
    local.write_bytes(b"y" * 5000)
    with pytest.raises(BundleError, match="max_bundle_mb") as cut:
        fetch(local.as_uri(), tmp_path / "c", 4000, 0)
    assert cut.value.code == "too_large"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local.bin"], "a part file was left behind"


def test_download_failures_are_retried_then_reported(tmp_path: Path) -> None:
    waits: list[float] = []
    with pytest.raises(BundleError) as failed:
        fetch("http://127.0.0.1:9/none", tmp_path / "b", 1000, 0, attempts=3, timeout=1, sleep=waits.append)
    assert failed.value.code == "download_failed" and "3 attempts" in failed.value.message
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0


# --- verify and unpack -----------------------------------------------------------------------
def _signed(tmp_path: Path, body: bytes, key: Ed25519PrivateKey) -> tuple[Path, str, str]:
    path = tmp_path / "bundle.tar"
    path.write_bytes(body)
    digest = hashlib.sha256(body).digest()
    return path, digest.hex(), key.sign(digest).hex()


def _public(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def test_digest_then_signature_and_a_bad_bundle_is_deleted(tmp_path: Path) -> None:
    ours, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path, digest, signature = _signed(tmp_path, b"bundle bytes", ours)
    verify(path, digest, signature, [_public(theirs), _public(ours)])  # any listed key may sign
    assert path.exists()
    with pytest.raises(BundleError) as bad_digest:
        verify(path, "00" * 32, signature, [_public(ours)])
    assert bad_digest.value.code == "bad_digest" and not path.exists()
    path, digest, _ = _signed(tmp_path, b"bundle bytes", ours)
    with pytest.raises(BundleError) as bad_signature:
        verify(path, digest, theirs.sign(bytes.fromhex(digest)).hex(), [_public(ours)])
    assert bad_signature.value.code == "bad_signature" and not path.exists()
    path, digest, signature = _signed(tmp_path, b"bundle bytes", ours)
    with pytest.raises(BundleError, match="signature"):  # signed over the digest's hex text: not the contract
        verify(path, digest, ours.sign(digest.encode()).hex(), [_public(ours)])


def _tar(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return buffer.getvalue()


def test_only_wheels_by_base_name_are_unpacked(tmp_path: Path) -> None:
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(_tar({"../../evil.whl": b"1", "wheels/dock_edge_agent-0.3.0-py3-none-any.whl": b"2",
                             "release.json": b"{}", "pyserial-3.5-py2.py3-none-any.whl": b"3"},
                            symlink="link.whl"))  # fmt: skip
    out = tmp_path / "out"
    files = extract_wheels(bundle, out, 2**20)
    assert sorted(p.name for p in out.iterdir()) == [
        "dock_edge_agent-0.3.0-py3-none-any.whl", "evil.whl", "pyserial-3.5-py2.py3-none-any.whl"]  # fmt: skip
    assert not (tmp_path.parent / "evil.whl").exists()
    assert agent_wheel(files, "dock-edge-agent", "0.3.0").name.startswith("dock_edge_agent-0.3.0")
    with pytest.raises(BundleError, match=r"no dock-edge-agent 0.4.0 wheel \(versions in it: 0.3.0\)"):
        agent_wheel(files, "dock-edge-agent", "0.4.0")
    bundle.write_bytes(_tar({"README": b"x"}))
    with pytest.raises(BundleError, match="no wheels"):
        extract_wheels(bundle, tmp_path / "none", 2**20)
    bundle.write_bytes(b"not a tar at all")
    with pytest.raises(BundleError, match="not a readable tar") as bad:
        extract_wheels(bundle, tmp_path / "bad", 2**20)
    assert bad.value.code == "bad_bundle"


# --- the releases folder ---------------------------------------------------------------------
def test_releases_folder_first_release_switch_and_prune(tmp_path: Path) -> None:
    own = tmp_path / "venv"
    (own / "bin").mkdir(parents=True)
    (own / "bin" / "edge-agent").write_text("#!/bin/sh\n")
    releases = Releases(tmp_path / "releases")
    assert releases.ensure_initial(own, "0.1.0") == "0.1.0"
    assert (tmp_path / "releases" / "0.1.0").resolve() == own.resolve() and releases.installed("0.1.0")
    for version in ("0.2.0", "0.3.0", "0.4.0", "0.5.0"):
        folder = tmp_path / "releases" / version
        (folder / "bin").mkdir(parents=True)
        (folder / "bin" / "edge-agent").write_text("")
        (folder / ".installed").write_text(version)
    half = tmp_path / "releases" / "0.6.0"
    half.mkdir()  # an installation cut off by a power loss: no marker
    assert not releases.installed("0.6.0")
    releases.switch("0.5.0")
    assert os.readlink(tmp_path / "releases" / "current") == "0.5.0" and releases.current() == "0.5.0"
    removed = releases.prune({"0.5.0", "0.4.0", "0.1.0"}, limit=3)
    assert sorted(removed) == ["0.2.0", "0.3.0", "0.6.0"]
    assert releases.versions() == ["0.1.0", "0.4.0", "0.5.0"] and own.exists()
    state = State(previous="0.4.0", failed=["0.3.0"], schemas={"0.1.0": 1})
    releases.save(state)
    assert releases.load() == state
    (tmp_path / "releases" / "state.json").write_text("{broken")
    assert releases.load() == State()


# --- storage across releases -----------------------------------------------------------------
def test_migrations_keep_or_refuse_older_readers(tmp_path: Path) -> None:
    conn = db.open_agent_db(tmp_path)
    assert db.schema_of(tmp_path) == (db.AGENT_SCHEMA, 0)
    newer = [*db.AGENT_MIGRATIONS, db.Migration("CREATE TABLE b(x)")]
    db.migrate(conn, newer)
    assert db.schema_of(tmp_path) == (db.AGENT_SCHEMA + 1, 0)
    db.migrate(conn, db.AGENT_MIGRATIONS)  # the older release opens the newer database
    breaking = [*newer, db.Migration("CREATE TABLE c(x)", older_can_read=False)]
    db.migrate(conn, breaking)
    assert db.schema_of(tmp_path) == (db.AGENT_SCHEMA + 2, db.AGENT_SCHEMA + 2)
    with pytest.raises(db.SchemaTooNew, match=f"this release is at schema {db.AGENT_SCHEMA}"):
        db.migrate(conn, db.AGENT_MIGRATIONS)
    db.migrate(conn, [*breaking, db.Migration("CREATE TABLE d(x)")])  # newer ones still may
    conn.close()
    assert db.schema_of(tmp_path / "nothing-here") == (0, 0)
    assert (
        sqlite3.connect(tmp_path / db.AGENT_DB).execute("PRAGMA user_version").fetchone()[0]
        == db.AGENT_SCHEMA + 3
    )


# --- configuration ---------------------------------------------------------------------------
BASE = {"device": {"id": "d", "site": "s"}, "mqtt": {"host": "h"}, "storage": {"path": "/tmp/x"}}


def test_update_config_is_checked_and_never_remote() -> None:
    key = "ab" * 32
    config = parse_config({**BASE, "update": {"public_keys": [key.upper()], "releases_dir": "/srv/r"}})
    assert config.update.public_keys == [key] and str(config.update.releases_dir) == "/srv/r"
    assert config.update.health_timeout_s == 120
    with pytest.raises(ConfigError) as bad:
        parse_config({**BASE, "update": {"public_keys": ["abc"], "health_timeout_s": 0, "keys": []}})
    problems = dict(bad.value.problems)
    assert "64 hex digits" in problems["update.public_keys[0]"]
    assert (
        "greater than 0" in problems["update.health_timeout_s"] and problems["update.keys"] == "unknown key"
    )
    with pytest.raises(ConfigError) as remote:
        parse_config({**BASE, "remote_config": {"allow": ["printers", "update"]}})
    assert "local file only" in dict(remote.value.problems)["remote_config.allow[1]"]
    from edge_agent.sync import desired

    with pytest.raises(ConfigError, match="update: may not be set remotely"):
        desired.effective_config(BASE, {"update": {"public_keys": [key]}})
    assert json.dumps(config.model_dump(mode="json"))  # the whole tree still serialises


def test_the_checkout_names_one_version_and_release_build_sets_both(tmp_path: Path) -> None:
    import re
    import shutil

    from edge_agent.update.build import set_version
    from tests.conftest import ROOT

    pyproject = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    literal = re.search(r'_installed_version\("([^"]+)"\)', (ROOT / "edge_agent/__init__.py").read_text())
    assert pyproject and literal and pyproject.group(1) == literal.group(1)
    (tmp_path / "edge_agent").mkdir()
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(ROOT / "edge_agent/__init__.py", tmp_path / "edge_agent/__init__.py")
    set_version(tmp_path, "7.8.9rc1")
    assert 'version = "7.8.9rc1"' in (tmp_path / "pyproject.toml").read_text()
    assert '_installed_version("7.8.9rc1")' in (tmp_path / "edge_agent/__init__.py").read_text()
