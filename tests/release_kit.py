"""Signed release bundles of this checkout for the update tests, and `edge-agent launch` as a real
process. Bundles are built the way an admin builds them (`edge-fleet release build`), from a copy
of the checkout that a test may patch (a release that crashes, a storage migration), with the
dependencies' wheels built once per session."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.agentproc import AgentProcess
from tests.conftest import ROOT

IGNORE = (
    ".git",
    ".venv",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "build",
)

# Patches a test applies to its copy of the checkout: (file, text, replacement).
CRASH_AT_START = ("edge_agent/app.py", "    async def run(self, stop: asyncio.Event) -> None:\n",
                  "    async def run(self, stop: asyncio.Event) -> None:\n"
                  "        raise SystemExit('deliberately broken release')\n")  # fmt: skip
NEVER_ONLINE = ("edge_agent/app.py", '        self.launcher.health("online")\n', "")
MARKER = "    # new migrations go here (a test inserts its own at this line)\n"
COMPATIBLE_MIGRATION = ("edge_agent/store/db.py", MARKER,
                        '    Migration("CREATE TABLE extra_b(x INTEGER)"),\n' + MARKER)  # fmt: skip
BREAKING_MIGRATION = ("edge_agent/store/db.py", MARKER,
                      '    Migration("CREATE TABLE extra_c(x INTEGER)", older_can_read=False),\n' + MARKER)  # fmt: skip


class Kit:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = folder / "release.pem"
        out = subprocess.run([sys.executable, "-m", "edge_agent.fleetctl", "release", "keygen", "-o", str(self.key)],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        self.public_key = next(
            line.split()[-1] for line in out.splitlines() if line.startswith("public key:")
        )
        self.deps = folder / "deps"
        # from a copy: pip builds a local project in its tree (build/, *.egg-info), and two test
        # workers building the checkout itself at once trip over each other's files
        checkout = folder / "checkout"
        shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(*IGNORE))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                        "--wheel-dir", str(self.deps), str(checkout)], check=True, cwd=folder)  # fmt: skip
        self.built: dict[tuple[str, tuple[Any, ...]], dict[str, str]] = {}

    def bundle(
        self,
        version: str,
        *patches: tuple[str, str, str],
        key: Path | None = None,
        platform: str | None = None,
    ) -> dict[str, str]:
        """{"bundle", "url", "sha256", "signature", "version"} of this checkout at `version`, patched.
        Offline from the session's wheels; for another `platform`, from the package index."""
        cache_key = (version, (*patches, str(key), platform))
        if cache_key in self.built:
            return self.built[cache_key]
        source = self.folder / f"src-{len(self.built)}"
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*IGNORE))
        for rel, old, new in patches:
            path = source / rel
            text = path.read_text(encoding="utf-8")
            assert old in text, f"patch target missing in {rel}: {old!r}"
            path.write_text(text.replace(old, new, 1), encoding="utf-8")
        output = self.folder / f"bundle-{version}-{len(self.built)}.tar.gz"
        out = subprocess.run(
            [sys.executable, "-m", "edge_agent.fleetctl", "release", "build", "--version", version, "--key",
             str(key or self.key), "-o", str(output), "--source", str(source), "--wheels-from", str(self.deps), "--json",
             *(["--platform", platform, "--python", "3.11"] if platform else ["--no-index"])],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        result["url"] = output.as_uri()
        self.built[cache_key] = result
        return result


def update_config(folder: Path, kit: Kit, health_timeout_s: float = 60, keys: bool = True) -> str:
    keys_yaml = f"[{kit.public_key}]" if keys else "[]"
    return (f"update: {{public_keys: {keys_yaml}, releases_dir: {folder / 'releases'}, "
            f"health_timeout_s: {health_timeout_s}}}\n")  # fmt: skip


class Launch(AgentProcess):
    """`edge-agent launch -c FILE` with the launcher's and its agents' JSON logs in one file."""

    def start(self) -> Launch:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge_agent.cli", "launch", "-c", str(self.config)],
                stderr=log,
                cwd=ROOT,
            )
        return self

    def count(self, event: str, **match: Any) -> int:
        return sum(
            1
            for r in self.records()
            if r.get("event") == event and all(r.get(k) == v for k, v in match.items())
        )

    def kill(self) -> None:
        """The launcher and its agent (a test's end: nothing may be left running)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class Watch:
    """Every message on `topics` (retained ones too), for a test to wait on."""

    def __init__(self, port: int, *topics: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics])
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            data = json.loads(msg.payload)
        except ValueError:
            data = {"_raw": msg.payload.decode("utf-8", "replace")}
        with self._lock:
            self.messages.append((msg.topic, data, bool(msg.retain)))

    def since(self, mark: int, suffix: str) -> list[dict[str, Any]]:
        with self._lock:
            return [d for t, d, _ in self.messages[mark:] if t.endswith(suffix)]

    def mark(self) -> int:
        with self._lock:
            return len(self.messages)

    def wait(self, suffix: str, predicate: Any, timeout: float = 60.0, mark: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for data in self.since(mark, suffix):
                if predicate(data):
                    return data
            time.sleep(0.05)
        raise AssertionError(f"no {suffix} message as expected; got {self.since(mark, suffix)[-5:]}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def fleet(port: int, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent.fleetctl", "--port", str(port), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)  # fmt: skip


def update_args(bundle: dict[str, str]) -> list[str]:
    return ["--version", bundle["version"], "--url", bundle["url"], "--sha256", bundle["sha256"],
            "--signature", bundle["signature"]]  # fmt: skip
