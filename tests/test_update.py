"""Software updates end to end: real bundles of this checkout (built and signed by `edge-fleet
release build`), `edge-agent launch` as a process, the real broker, scans typed on a real pty."""

from __future__ import annotations

import contextlib
import http.server
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.store.db import AGENT_SCHEMA
from simulators.central import Central
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT, sim_cmd
from tests.harness import type_payloads, wait_until
from tests.release_kit import (
    BREAKING_MIGRATION,
    COMPATIBLE_MIGRATION,
    CRASH_AT_START,
    NEVER_ONLINE,
    Kit,
    Watch,
    fleet,
    update_args,
    update_config,
)

ROOT_TOPIC = "dock/v1/hel1"


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(tmp_path_factory.mktemp("release-kit"))


def _launch_config(folder: Path, broker: Broker, kit: Kit, device: str = "dock-07", link: Path | None = None,
                   **update: Any) -> Path:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    scanners = [{"id": "s1", "type": "serial", "port": str(link), "reopen_max_s": 0.2}] if link else None
    return write_config(
        folder, broker.port, scanners, extra=update_config(folder, kit, **update), device=device
    )


def _online(watch: Watch, version: str, mark: int = 0, device: str = "dock-07") -> dict[str, Any]:
    return watch.wait(f"{device}/state", lambda d: d.get("online") is True and d.get("agent_version") == version,
                      mark=mark)  # fmt: skip


def _cmd(
    broker: Broker, name: str, args: dict[str, Any] | None = None, device: str = "dock-07"
) -> dict[str, Any]:
    out = fleet(
        broker.port, "cmd", f"hel1/{device}", name, json.dumps(args or {}), "--json", "--timeout", "20"
    )
    return json.loads(out.stdout)


@pytest.mark.slow
def test_signed_update_while_scans_are_typed(tmp_path: Path, broker: Broker, kit: Kit, launches: Any) -> None:
    b = kit.bundle("0.2.0")
    central = Central("127.0.0.1", broker.port, "hel1")
    watch = Watch(broker.port, f"{ROOT_TOPIC}/+/software", f"{ROOT_TOPIC}/+/state")
    link = tmp_path / "s1"
    launch = launches(_launch_config(tmp_path, broker, kit, link=link))
    payloads = tmp_path / "payloads.txt"
    payloads.write_text("".join(f"OTA-{i:04d}\n" for i in range(400)))
    scanner = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(link), "--file", str(payloads), "--rate", "25"),
                               cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        _online(watch, "0.1.0")
        launch.wait_for("scanner.opened")
        out = fleet(broker.port, "update", "hel1/dock-07", *update_args(b), "--timeout", "180", "--json")
        assert out.returncode == 0, out.stdout + out.stderr
        [row] = json.loads(out.stdout)
        assert row["status"] == "healthy" and row["current"] == "0.2.0" and row["previous"] == "0.1.0"
        scanner.wait(timeout=60)
        db = sqlite3.connect(tmp_path / "state" / "agent.db")
        stored = dict(db.execute("SELECT seq, raw FROM scans").fetchall())
        last = max(stored)
        assert sorted(stored) == list(range(1, last + 1)), "a seq gap across the switch"
        wait_until(lambda: central.report().get("dock-07", {}).get("unique") == last, timeout=60,
                   what="every stored scan at central")  # fmt: skip
        report = central.report()["dock-07"]
        assert report["missing"] == [] and report["conflicts"] == 0 and report["inexact_duplicates"] == 0
        typed = [f"OTA-{i:04d}" for i in range(400)]
        raws = [stored[s] for s in sorted(stored)]
        assert raws == [r for r in typed if r in set(raws)], "scans out of order"
        assert len(raws) >= 380, (
            f"only {len(raws)} of 400 scans read"
        )  # the pty keeps what is typed between agents
        versions = [
            r["version"] for r in launch.records() if r.get("event") == "agent.started" and "version" in r
        ]
        assert versions[:1] == ["0.1.0"] and versions[-1] == "0.2.0"
        states = [d["state"] for d in watch.since(0, "dock-07/software")]
        for step in ("downloading", "verifying", "installing", "restarting", "healthy"):
            assert step in states, states
        assert (tmp_path / "releases" / "current").resolve().name == "0.2.0"
        print(json.dumps({"typed": 400, "stored": len(raws), "duplicates": report["duplicates"]}))
    finally:
        scanner.terminate()
        central.close()
        watch.close()


@pytest.mark.slow
def test_bad_signature_and_bad_digest_install_nothing(
    tmp_path: Path, broker: Broker, kit: Kit, launches: Any
) -> None:
    good = kit.bundle("0.2.0")
    other_key = tmp_path / "other.pem"
    subprocess.run([sys.executable, "-m", "edge_agent.fleetctl", "release", "keygen", "-o", str(other_key)], cwd=ROOT,
                   check=True, capture_output=True)  # fmt: skip
    foreign = kit.bundle("0.2.0", key=other_key)
    watch = Watch(broker.port, f"{ROOT_TOPIC}/dock-07/software", f"{ROOT_TOPIC}/dock-07/state")
    launch = launches(_launch_config(tmp_path, broker, kit))
    try:
        _online(watch, "0.1.0")
        for args, code in (
            ({**_args(good), "signature": foreign["signature"]}, "bad_signature"),
            ({**_args(good), "sha256": foreign["sha256"]}, "bad_digest"),
            ({**_args(foreign)}, "bad_signature"),
        ):
            mark = watch.mark()
            reply = _cmd(broker, "update", args)
            assert reply["status"] == "ok" and reply["data"]["state"] == "accepted", reply
            sw = watch.wait("software", lambda d: d["state"] == "failed", mark=mark)
            assert sw["error"]["code"] == code and sw["current"] == "0.1.0" and sw["target"] == "0.2.0"
            assert not (tmp_path / "releases" / "0.2.0").exists()
            assert list((tmp_path / "releases" / ".downloads").iterdir()) == []
        assert launch.count("agent.started", component="launcher") == 1, "the running release was restarted"
        # what is refused at once, in the reply
        assert (
            _cmd(broker, "update", {**_args(good), "version": "0.1.0"})["error"]["code"] == "already_current"
        )
        bad = _cmd(broker, "update", {**_args(good), "sha256": "xyz"})
        assert bad["error"]["code"] == "bad_request" and "sha256" in bad["error"]["message"]
        assert _cmd(broker, "rollback")["error"]["code"] == "no_previous"
        # while one update downloads (slowly, over http), another is refused, and so is a rollback
        with _slow_server(Path(foreign["bundle"]), delay_s=3.0) as url:
            mark = watch.mark()
            assert _cmd(broker, "update", {**_args(foreign), "url": url})["status"] == "ok"
            busy = _cmd(broker, "update", {**_args(good), "version": "0.2.1"})
            assert busy["error"]["code"] == "busy" and "0.2.0" in busy["error"]["message"]
            assert _cmd(broker, "rollback")["error"]["code"] == "busy"
            sw = watch.wait("software", lambda d: d["state"] == "failed", mark=mark)
            assert sw["error"]["code"] == "bad_signature"
    finally:
        watch.close()


@contextlib.contextmanager
def _slow_server(path: Path, delay_s: float) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(delay_s)
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
    finally:
        server.shutdown()
        server.server_close()


def _args(bundle: dict[str, str]) -> dict[str, str]:
    return {k: bundle[k] for k in ("version", "url", "sha256", "signature")}


@pytest.mark.slow
def test_release_that_crashes_at_start_is_rolled_back(
    tmp_path: Path, broker: Broker, kit: Kit, launches: Any
) -> None:
    broken = kit.bundle("0.3.0", CRASH_AT_START)
    watch = Watch(broker.port, f"{ROOT_TOPIC}/dock-07/software", f"{ROOT_TOPIC}/dock-07/state")
    config = _launch_config(tmp_path, broker, kit)
    launch = launches(config)
    try:
        first = _online(watch, "0.1.0")
        mark = watch.mark()
        assert _cmd(broker, "update", _args(broken))["status"] == "ok"
        sw = watch.wait("software", lambda d: d["state"] == "rolled_back", mark=mark, timeout=120)
        assert sw["current"] == "0.1.0" and sw["target"] == "0.3.0" and sw["error"]["code"] == "crashed"
        assert "0.3.0" in sw["failed_versions"]
        again = _online(watch, "0.1.0", mark=mark)
        assert again["boot_id"] != first["boot_id"]
        assert (tmp_path / "releases" / "current").resolve() == (tmp_path / "releases" / "0.1.0").resolve()
        # the failed release is never started again by itself, not even after a restart of the service
        launch.kill()
        mark = watch.mark()
        launch.start()
        _online(watch, "0.1.0", mark=mark)
        started = [r.get("release") for r in launch.records() if r.get("event") == "agent.started"
                   and r.get("component") == "launcher"]  # fmt: skip
        assert started == ["0.1.0"]
        sw = watch.wait("software", lambda d: d["state"] == "rolled_back", mark=mark)
        assert sw["error"]["code"] == "crashed"
    finally:
        watch.close()


@pytest.mark.slow
def test_release_never_healthy_is_rolled_back_after_the_timeout(
    tmp_path: Path, broker: Broker, kit: Kit, launches: Any
) -> None:
    silent = kit.bundle("0.3.1", NEVER_ONLINE)
    watch = Watch(broker.port, f"{ROOT_TOPIC}/dock-07/software", f"{ROOT_TOPIC}/dock-07/state")
    launches(_launch_config(tmp_path, broker, kit, health_timeout_s=8))
    try:
        _online(watch, "0.1.0")
        mark = watch.mark()
        assert _cmd(broker, "update", _args(silent))["status"] == "ok"
        # it does come online (its state is published) but never tells the launcher so
        _online(watch, "0.3.1", mark=mark)
        sw = watch.wait("software", lambda d: d["state"] == "rolled_back", mark=mark, timeout=60)
        assert sw["error"]["code"] == "unhealthy" and "storage" in sw["error"]["message"]
        assert sw["current"] == "0.1.0"
        _online(watch, "0.1.0", mark=mark)
    finally:
        watch.close()


@pytest.mark.slow
def test_power_loss_during_a_trial_resumes_it(
    tmp_path: Path, broker: Broker, kit: Kit, launches: Any
) -> None:
    """The launcher dies (SIGKILL: a power cut for it) while the new release is on trial; the next
    launch goes on with the trial where it stopped, and rolls back when it fails."""
    silent = kit.bundle("0.3.1", NEVER_ONLINE)
    watch = Watch(broker.port, f"{ROOT_TOPIC}/dock-07/software", f"{ROOT_TOPIC}/dock-07/state")
    launch = launches(_launch_config(tmp_path, broker, kit, health_timeout_s=10))
    try:
        _online(watch, "0.1.0")
        mark = watch.mark()
        assert _cmd(broker, "update", _args(silent))["status"] == "ok"
        _online(watch, "0.3.1", mark=mark)
        state = json.loads((tmp_path / "releases" / "state.json").read_text())
        assert state["trial"] == {"version": "0.3.1", "from": "0.1.0"}
        assert launch.proc is not None
        launch.proc.send_signal(signal.SIGKILL)
        launch.proc.wait()
        wait_until(
            lambda: _online_now(watch, "0.3.1") is False, timeout=30, what="0.3.1 gone with its launcher"
        )
        mark = watch.mark()
        launch.start()
        sw = watch.wait("software", lambda d: d["state"] == "rolled_back", mark=mark, timeout=60)
        assert sw["current"] == "0.1.0" and sw["error"]["code"] == "unhealthy"
        assert launch.count("trial.resumed", release="0.3.1") == 1
        _online(watch, "0.1.0", mark=mark)
    finally:
        watch.close()


def _online_now(watch: Watch, version: str) -> bool | None:
    states = [
        d for d in watch.since(0, "dock-07/state") if d.get("agent_version") == version or not d.get("online")
    ]
    return bool(states[-1].get("online")) if states else None


@pytest.mark.slow
def test_rollback_on_demand_and_storage_the_previous_release_cannot_read(
    tmp_path: Path, broker: Broker, kit: Kit, launches: Any
) -> None:
    compatible = kit.bundle("0.4.0", COMPATIBLE_MIGRATION)
    breaking = kit.bundle("0.5.0", COMPATIBLE_MIGRATION, BREAKING_MIGRATION)
    central = Central("127.0.0.1", broker.port, "hel1")
    watch = Watch(broker.port, f"{ROOT_TOPIC}/dock-07/software", f"{ROOT_TOPIC}/dock-07/state")
    link = tmp_path / "s1"
    launches(_launch_config(tmp_path, broker, kit, link=link))
    db_path = tmp_path / "state" / "agent.db"

    def type_and_count(prefix: str, n: int) -> None:
        before = sqlite3.connect(db_path).execute("SELECT count(*) FROM scans").fetchone()[0]
        type_payloads(link, [f"{prefix}-{i}" for i in range(n)], rate=40)
        wait_until(lambda: sqlite3.connect(db_path).execute("SELECT count(*) FROM scans").fetchone()[0] == before + n,
                   what=f"{prefix} scans stored")  # fmt: skip

    try:
        _online(watch, "0.1.0")
        type_and_count("A", 5)
        out = fleet(broker.port, "update", "hel1/dock-07", *update_args(compatible), "--timeout", "180")
        assert out.returncode == 0, out.stdout + out.stderr
        schema = sqlite3.connect(db_path).execute("PRAGMA user_version").fetchone()[0]
        assert schema == AGENT_SCHEMA + 1  # 0.4.0 added a table
        type_and_count("B", 5)
        mark = watch.mark()
        reply = _cmd(broker, "rollback")
        assert reply["status"] == "ok" and reply["data"] == {"state": "accepted", "version": "0.1.0"}
        sw = watch.wait("software", lambda d: d["state"] == "rolled_back", mark=mark, timeout=120)
        assert sw["current"] == "0.1.0" and sw["previous"] == "0.4.0" and sw["error"] is None
        _online(watch, "0.1.0", mark=mark)
        type_and_count("C", 5)  # 0.1.0 goes on writing the database 0.4.0 migrated
        # a release whose migration older releases cannot read: its rollback is refused, it stays
        out = fleet(broker.port, "update", "hel1/dock-07", *update_args(breaking), "--timeout", "180")
        assert out.returncode == 0, out.stdout + out.stderr
        refused = _cmd(broker, "rollback")
        assert refused["status"] == "error" and refused["error"]["code"] == "rollback_refused"
        assert (
            f"schema {AGENT_SCHEMA + 2}" in refused["error"]["message"]
            and "0.1.0" in refused["error"]["message"]
        )
        assert (tmp_path / "releases" / "current").resolve().name == "0.5.0"
        db = sqlite3.connect(db_path)
        seqs = [row[0] for row in db.execute("SELECT seq FROM scans ORDER BY seq")]
        assert seqs == list(range(1, 16))
        wait_until(
            lambda: central.report().get("dock-07", {}).get("unique") == 15, timeout=30, what="15 at central"
        )
        report = central.report()["dock-07"]
        assert report["missing"] == [] and report["inexact_duplicates"] == 0
        # and the previous release itself refuses to open what it cannot read, with a clear error
        old = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c",
                              "from pathlib import Path; from edge_agent.store.db import open_agent_db;"
                              f"open_agent_db(Path({str(tmp_path / 'state')!r}))"],
                             capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        assert (
            old.returncode != 0
            and "SchemaTooNew" in old.stderr
            and f"schema {AGENT_SCHEMA + 2}" in old.stderr
        )
    finally:
        central.close()
        watch.close()


@pytest.mark.slow
def test_canary_that_fails_stops_the_rollout(tmp_path: Path, broker: Broker, kit: Kit, launches: Any) -> None:
    broken = kit.bundle("0.3.0", CRASH_AT_START)
    good = kit.bundle("0.2.0")
    watch = Watch(broker.port, f"{ROOT_TOPIC}/+/software", f"{ROOT_TOPIC}/+/state")
    devices = ["dock-01", "dock-02", "dock-03"]
    fleets = {d: launches(_launch_config(tmp_path / d, broker, kit, device=d)) for d in devices}
    try:
        for d in devices:
            _online(watch, "0.1.0", device=d)
        out = fleet(
            broker.port,
            "update",
            "hel1/*",
            *update_args(broken),
            "--canary",
            "1",
            "--json",
            "--timeout",
            "120",
        )
        assert out.returncode == 1, out.stdout + out.stderr
        rows = {r["device"]: r for r in json.loads(out.stdout)}
        assert rows["hel1/dock-01"]["status"] == "rolled_back" and rows["hel1/dock-01"]["current"] == "0.1.0"
        for d in ("hel1/dock-02", "hel1/dock-03"):
            assert rows[d]["status"] == "skipped" and "dock-01" in rows[d]["error"]
        for d in ("dock-02", "dock-03"):
            assert fleets[d].count("software.state", state="downloading") == 0, f"{d} was sent the update"
        # the same rollout with a good release: the canary first, then the rest
        out = fleet(
            broker.port, "update", "hel1/*", *update_args(good), "--canary", "1", "--json", "--timeout", "120"
        )
        assert out.returncode == 0, out.stdout + out.stderr
        rows = {r["device"]: r for r in json.loads(out.stdout)}
        assert {r["status"] for r in rows.values()} == {"healthy"} and {
            r["current"] for r in rows.values()
        } == {"0.2.0"}

        def first(device: str, state: str) -> str:
            return min(r["timestamp"] for r in fleets[device].records(since_start=False)
                       if r.get("event") == "software.state" and r.get("state") == state)  # fmt: skip

        assert first("dock-02", "downloading") >= first("dock-01", "healthy")
        assert first("dock-03", "downloading") >= first("dock-01", "healthy")
    finally:
        watch.close()


def test_updates_are_refused_without_a_launcher_or_without_keys(
    tmp_path: Path, broker: Broker, kit: Kit, agents: Any, launches: Any
) -> None:
    good = kit.bundle("0.2.0")
    watch = Watch(broker.port, f"{ROOT_TOPIC}/+/software", f"{ROOT_TOPIC}/+/state")
    try:
        (tmp_path / "plain").mkdir()
        agents(write_config(tmp_path / "plain", broker.port, device="dock-01"))
        _online(watch, "0.1.0", device="dock-01")
        reply = _cmd(broker, "update", _args(good), device="dock-01")
        assert (
            reply["error"]["code"] == "updates_disabled" and "edge-agent launch" in reply["error"]["message"]
        )
        sw = watch.wait("dock-01/software", lambda d: d["state"] == "idle")
        assert sw["current"] == "0.1.0" and sw["managed"] is False
        launches(_launch_config(tmp_path / "nokeys", broker, kit, device="dock-02", keys=False))
        _online(watch, "0.1.0", device="dock-02")
        reply = _cmd(broker, "update", _args(good), device="dock-02")
        assert reply["error"]["code"] == "updates_disabled" and "public_keys" in reply["error"]["message"]
    finally:
        watch.close()
