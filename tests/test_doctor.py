"""`edge-agent doctor` (contract cli.md) on a broken station and on a good one, before the daemon
ran and while it runs: every check a row, every failing row its fix; exit 0, 1, or 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from edge_agent.doctor.access import Who, may
from edge_agent.doctor.devices import presence
from tests.agentproc import write_config
from tests.broker import Broker, free_port
from tests.conftest import ROOT, sim_cmd
from tests.harness import wait_until


def doctor(config: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run([sys.executable, "-m", "edge_agent.cli", "doctor", "-c", str(config), "--json", *extra],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    return result.returncode, json.loads(result.stdout)


def rows(report: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["check"] == check]


def start_scale(tmp_path: Path, link: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(sim_cmd("scale", "--protocol", "sics", "--link", str(link), "--stay"),
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)  # fmt: skip
    wait_until(link.exists, what="the scale's pty")
    return proc


def station(tmp_path: Path, broker_port: int, printer_port: int, display_port: int, mqtt: str = "") -> Path:
    config = write_config(tmp_path, broker_port, [{"id": "s1", "type": "serial", "port": str(tmp_path / "s1")}],
                          display_port=display_port,
                          extra=f"printers:\n  - {{id: p1, language: zpl, transport: tcp, host: 127.0.0.1, "
                                f"port: {printer_port}}}\n"
                                f"scales:\n  - {{id: w1, type: serial, protocol: sics, port: {tmp_path / 'w1'}}}\n")  # fmt: skip
    if mqtt:
        config.write_text(config.read_text().replace("keepalive_s: 5}", f"keepalive_s: 5, {mqtt}}}"))
    return config


def test_a_good_station_passes_before_the_daemon_ever_ran_and_while_it_runs(
    tmp_path: Path, broker: Broker, printers: Any, agents: Any
) -> None:
    sim = printers("zpl")
    scale = start_scale(tmp_path, tmp_path / "w1")
    scanner = subprocess.Popen(sim_cmd("serial-scanner", "--link", str(tmp_path / "s1"), "--rate", "0"),
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)  # fmt: skip
    try:
        wait_until((tmp_path / "s1").exists, what="the scanner's pty")
        config = station(tmp_path, broker.port, sim.port, free_port())
        code, report = doctor(config)
        assert code == 0 and report["ok"] is True, report
        failing = [c for c in report["checks"] if c["status"] != "ok"]
        assert all(c["check"] == "clock" for c in failing), failing  # this machine's clock has no NTP
        assert rows(report, "agent")[0]["detail"] == "not running"
        assert "answers, ready" in rows(report, "printer p1")[0]["detail"]
        assert "answers, ok" in rows(report, "scale w1")[0]["detail"]
        assert "opens" in rows(report, "scanner s1")[0]["detail"]
        assert "is free for the page" in rows(report, "station page")[0]["detail"]
        assert [c["status"] for c in rows(report, "broker acl")] == ["ok"]
        assert not (tmp_path / "state").exists()  # the doctor made nothing of the agent's

        agent = agents(config)
        agent.wait_for("scanner.opened")
        agent.wait_for("scale.opened", timeout=20)
        code, report = doctor(config)
        assert code == 0, report
        assert rows(report, "agent")[0]["detail"].startswith(f"running (pid {agent.proc.pid})")
        for device in ("scanner s1", "scale w1"):
            assert "in use by the running agent" in rows(report, device)[0]["detail"]
        assert "answers (HTTP 200)" in rows(report, "station page")[0]["detail"]
        # undisturbed: its scanner and scale still work, its session was not taken over
        assert scanner.stdin is not None
        scanner.stdin.write("AFTER-DOCTOR\n")
        scanner.stdin.flush()
        stored = agent.wait_for("scan.stored")
        assert stored["raw"] == "AFTER-DOCTOR"
        assert not [r for r in agent.records() if r.get("event") == "mqtt.disconnected"]
        assert [r.get("state") for r in agent.records() if r.get("event") == "scale.state"][-1:] != [
            "offline"
        ]
    finally:
        for proc in (scale, scanner):
            proc.kill()
            proc.wait()


def test_a_broken_station_fails_with_a_fix_for_each_fault(tmp_path: Path, broker: Broker) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    mute = os.openpty()  # a serial port where no scale answers
    os.symlink(os.ttyname(mute[1]), tmp_path / "w1")
    os.close(mute[1])
    closed = free_port()  # nothing listens there
    config = station(tmp_path, broker.port, closed, taken.getsockname()[1])
    config.write_text(config.read_text().replace(str(tmp_path / "s1"), "/dev/edge-agent/scanner-s1"))
    try:
        code, report = doctor(config)
    finally:
        taken.close()
        os.close(mute[0])
    assert code == 1 and report["ok"] is False
    for check, detail, fix in [
        ("scanner s1", "the udev rule did not apply", "systemd/99-edge-agent.rules"),
        ("printer p1", f"127.0.0.1:{closed}", "printers[0].host/port"),
        ("scale w1", "no reading within 3 s", "scales[0].protocol (sics) and baudrate (9600)"),
        ("station page", "is taken by another program", "set display.port"),
    ]:
        (row,) = rows(report, check)
        assert row["status"] == "fail" and detail in row["detail"] and fix in row["fix"], row
    assert all(c["fix"] for c in report["checks"] if c["status"] != "ok")
    text = subprocess.run([sys.executable, "-m", "edge_agent.cli", "doctor", "-c", str(config)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)  # fmt: skip
    assert text.returncode == 1 and "FAIL  scanner s1" in text.stdout and "→ put the scanner's" in text.stdout


def test_the_broker_refusing_the_login_and_the_acl(tmp_path: Path) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "dock", "right"], check=True)
    acl = tmp_path / "acl"
    acl.write_text("user dock\ntopic read dock/v1/hel1/dock-07/#\n")
    broker = Broker(tmp_path / "mq", extra_conf=f"password_file {passwords}\nacl_file {acl}\n")
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    broker.start()
    try:
        config = write_config(tmp_path, broker.port)
        config.write_text(
            config.read_text().replace("keepalive_s: 5}", "keepalive_s: 5, username: dock, password: wrong}")
        )
        code, report = doctor(config)
        (login,) = rows(report, "broker login")
        assert code == 1 and login["status"] == "fail"
        assert login["fix"].startswith("the broker refused the login: check mqtt.username")
        config.write_text(config.read_text().replace("password: wrong", "password: right"))
        code, report = doctor(config)
        assert code == 1 and rows(report, "broker login")[0]["status"] == "ok"
        refused = [c for c in rows(report, "broker acl") if c["status"] == "fail"]
        assert any("publish to dock/v1/hel1/dock-07/doctor" in c["detail"] for c in refused), refused
        assert "edge-agent acl hel1 dock-07" in refused[0]["fix"]
        acl.write_text("user dock\ntopic write dock/v1/hel1/dock-07/#\n")  # may write, not read
        broker.stop()
        broker.start()
        code, report = doctor(config)
        refused = [c for c in rows(report, "broker acl") if c["status"] == "fail"]
        assert code == 1 and any("did not come back" in c["detail"] for c in refused), refused
    finally:
        broker.close()


def test_no_broker_and_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    code, report = doctor(config)
    (row,) = rows(report, "broker")
    assert code == 1 and row["status"] == "fail" and "mqtt.host and mqtt.port" in row["fix"]
    config.write_text(config.read_text().replace("port:", "port: nope, x:"))
    code, report = doctor(config)
    assert code == 2 and report["checks"][0]["check"] == "config" and report["checks"][0]["status"] == "fail"


def test_permissions_are_judged_for_the_services_user(tmp_path: Path) -> None:
    """As root every open succeeds, so the service user's view is computed from the mode bits."""
    device = tmp_path / "ttyUSB0"
    os.mkfifo(device)
    os.chmod(device, 0o660)
    os.chown(device, 0, 20)  # group dialout on Debian
    stranger = Who("edge-agent", 4242, frozenset({4242}), service=True)
    member = Who("edge-agent", 4242, frozenset({4242, 20}), service=True)
    assert not may(stranger, device, write=True) and may(member, device, write=True)
    checks, free = presence(
        "scanner s1", "scanners[0].port", str(device), "scanner", stranger, [], write=False
    )
    assert not free and checks[0].status == "fail"
    assert checks[0].fix == "add the user edge-agent to group dialout or install systemd/99-edge-agent.rules"
    assert presence("scanner s1", "scanners[0].port", str(device), "scanner", member, [], write=False)[1]


def test_storage_that_is_not_a_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = write_config(tmp_path, free_port())
    config.write_text(config.read_text().replace(str(tmp_path / "state"), str(blocker / "state")))
    code, report = doctor(config)
    (row,) = rows(report, "storage")
    assert code == 1 and row["status"] == "fail" and "is not a folder" in row["detail"]
