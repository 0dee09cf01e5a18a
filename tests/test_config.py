from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.config import load_config, parse_config
from edge_agent.errors import ConfigError
from tests.conftest import ROOT

MINIMAL = """\
device: {id: dock-07, site: hel1}
mqtt:
  host: 127.0.0.1
  port: 1883
storage:
  path: /var/lib/edge-agent        # SQLite files live here
labels:
  keys: {K1: "00112233445566778899aabbccddeeff"}   # RET1 label keys, hex
scanners:
  - {id: s1, type: serial, port: /dev/ttyUSB0, baudrate: 9600}
  - {id: s2, type: hid, device: /dev/input/by-id/usb-Scanner-event-kbd, keymap: us}
printers:
  - {id: p1, language: zpl, transport: tcp, host: 10.0.0.21, port: 9100, roles: [packing]}
  - {id: p2, language: escpos, transport: serial, port: /dev/ttyUSB1, baudrate: 19200}
"""


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
    )


def test_contract_minimal_config_is_accepted_as_is(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(MINIMAL)
    config = load_config(path)
    assert config.mqtt.session_expiry_s == 7 * 24 * 3600
    assert config.telemetry_interval_s == 30
    assert config.storage.retention_days == 7
    assert config.printers[0].roles == ["packing"]
    result = check_config(path)
    assert result.returncode == 0 and result.stdout.strip() == "ok"


@pytest.mark.parametrize("name", ["example.yaml", "demo.yaml"])
def test_shipped_configs_pass(name: str) -> None:
    result = check_config(ROOT / "config" / name)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (("  port: 1883", "  port: 1883\n  colour: blue"), "mqtt.colour", "unknown key"),
        (("port: 9100, roles", "port: 99999, roles"), "printers[0].port", "65535"),
        (("host: 10.0.0.21, ", ""), "printers[0].host", "required"),
        (("port: /dev/ttyUSB1", "port: 7"), "printers[1].port", "string"),
        (("keymap: us", "keymap: klingon"), "scanners[1].keymap", "no layout 'klingon'"),
        (("type: serial, port: /dev/ttyUSB0, ", "type: serial, "), "scanners[0].port", "required"),
        (("{id: dock-07", "{id: Dock 7"), "device.id", "pattern"),
        (('"00112233445566778899aabbccddeeff"', '"0011"'), "labels.keys", "16"),
        (("id: s2", "id: s1"), "", "twice"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, change: tuple[str, str], path: str, words: str) -> None:
    assert change[0] in MINIMAL
    text = MINIMAL.replace(change[0], change[1], 1)
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert any(p == path and words in m for p, m in info.value.problems), info.value.problems
    result = check_config(file)
    assert result.returncode == 2
    assert (f"{path}: " if path else words) in result.stdout


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        MINIMAL.replace("port: 1883", "port: -1")
        .replace("keymap: us", "keymap: xx")
        .replace("host: 10.0.0.21, ", "")
    )
    result = check_config(file)
    assert result.returncode == 2
    for key in ("mqtt.port", "scanners[1].keymap", "printers[0].host"):
        assert key in result.stdout


def test_sign_kid_must_be_a_configured_key() -> None:
    data = {"device": {"id": "d", "site": "s"}, "mqtt": {"host": "h"}, "storage": {"path": "/x"},
            "labels": {"keys": {"K1": "00" * 16}, "sign_kid": "K2"}}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.problems[0][0] == "labels"
    assert "sign_kid" in info.value.problems[0][1]


def test_rule_group_must_exist() -> None:
    data = {"device": {"id": "d", "site": "s"}, "mqtt": {"host": "h"}, "storage": {"path": "/x"},
            "rules": [{"name": "r", "pattern": "(?P<a>x)", "keys": {"b": "return_id"}}]}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.problems[0][0] == "rules[0]" and "'b'" in info.value.problems[0][1]


@pytest.mark.parametrize(
    ("text", "words"),
    [("device: [unclosed", "not valid YAML at line 1"), ("- a\n- b\n", "mapping"), ("", "mapping")],
)
def test_not_yaml_or_not_a_mapping(tmp_path: Path, text: str, words: str) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(text)
    result = check_config(file)
    assert result.returncode == 2 and words in result.stdout


def test_missing_file() -> None:
    result = check_config(Path("/nonexistent/agent.yaml"))
    assert result.returncode == 2 and "cannot read" in result.stdout


def test_run_with_bad_config_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text("device: {id: d}\n")
    result = subprocess.run([sys.executable, "-m", "edge_agent.cli", "run", "-c", str(file)], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert result.returncode == 2
    assert "device.site" in result.stderr and "mqtt" in result.stderr


@pytest.mark.parametrize(
    ("section", "value", "key", "words"),
    [
        (
            "feedback",
            {"invalid": [{"type": "buzzer", "printer": "p1"}]},
            "",
            "feedback.invalid[0].printer: 'p1' is not an ESC/POS",
        ),
        (
            "feedback",
            {"unknown": [{"type": "buzzer", "printer": "p9"}]},
            "",
            "feedback.unknown[0].printer: no printer 'p9'",
        ),
        ("feedback", {"expected": [{"type": "lamp"}]}, "feedback.expected[0]", "'buzzer', 'command'"),
        (
            "feedback",
            {"expected": [{"type": "command", "argv": []}]},
            "feedback.expected[0].argv",
            "at least 1",
        ),
        (
            "feedback",
            {"expected": [{"type": "command", "argv": [" "]}]},
            "feedback.expected[0].argv",
            "argv[0]",
        ),
        (
            "feedback",
            {"expected": [{"type": "command", "argv": ["x"], "timeout_s": 0}]},
            "feedback.expected[0].timeout_s",
            "greater than 0",
        ),
        ("feedback", {"arrived": []}, "feedback.arrived", "unknown key"),
        ("display", {"port": 70000}, "display.port", "less than or equal to 65535"),
        ("display", {"listen": "0.0.0.0:80"}, "display.listen", "unknown key"),
    ],
)
def test_display_and_feedback_errors_name_their_key(
    section: str, value: object, key: str, words: str
) -> None:
    data = parse_config_data()
    data[section] = value
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert len(info.value.problems) == 1
    path, message = info.value.problems[0]
    assert path == key and words in message, info.value.problems


def test_display_and_feedback_accepted() -> None:
    data = parse_config_data()
    data["display"] = {"host": "0.0.0.0", "port": 8081, "dim_after_s": 0, "title": "Dock 7"}
    data["feedback"] = {"invalid": [{"type": "buzzer", "printer": "p2", "beeps": 3},
                                    {"type": "command", "argv": ["/usr/local/bin/light", "red"], "timeout_s": 2}]}  # fmt: skip
    config = parse_config(data)
    assert config.display.port == 8081 and config.feedback.actions("expected") == []
    assert [a.type for a in config.feedback.actions("invalid")] == ["buzzer", "command"]


def parse_config_data() -> dict:
    from edge_agent.config.yaml12 import loads

    return loads(MINIMAL)


SCALE = {"id": "w1", "type": "serial", "protocol": "sics", "port": "/dev/edge-agent/scale-w1"}


@pytest.mark.parametrize(
    ("scales", "receiving", "key", "words"),
    [
        ([{**SCALE, "protocol": "dibal"}], {}, "scales[0].protocol", "'sics', 'toledo8217' or 'continuous'"),
        ([{**SCALE, "parity": "X"}], {}, "scales[0].parity", "'N', 'E' or 'O'"),
        ([{**SCALE, "unit": "kg"}], {}, "scales[0]", "unit: only toledo8217 takes a unit"),
        ([{**SCALE, "poll_interval_ms": 5}], {}, "scales[0].poll_interval_ms", "greater than or equal to 20"),
        ([{"id": "w2", "type": "hid", "device": "/dev/hidraw1", "protocol": "sics"}], {}, "scales[0].protocol",
         "unknown key"),
        ([{"id": "w2", "type": "usb", "device": "/dev/hidraw1"}], {}, "scales[0]", "'serial', 'hid'"),
        ([SCALE, SCALE], {}, "", "scales: id 'w1' is used twice"),
        ([SCALE], {"scale": "w9"}, "", "receiving.scale: no scale 'w9'"),
    ],
)  # fmt: skip
def test_scale_errors_name_their_key(scales: list[dict], receiving: dict, key: str, words: str) -> None:
    data = parse_config_data()
    data["scales"] = scales
    data["receiving"] = receiving
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert any(path == key and words in message for path, message in info.value.problems), info.value.problems


def test_scales_take_their_protocols_serial_settings() -> None:
    data = parse_config_data()
    data["scales"] = [{**SCALE, "protocol": "toledo8217", "unit": "lb"},
                      {"id": "w2", "type": "hid", "device": "/dev/hidraw1"}]  # fmt: skip
    config = parse_config(data)
    options = config.scales[0].driver_options()
    assert (options["bytesize"], options["parity"], options["unit"], options["poll_interval_s"]) == (
        7,
        "E",
        "lb",
        0.2,
    )
    assert config.scales[1].driver_options() == {
        "device": "/dev/hidraw1",
        "silent_after_s": None,
        "reopen_max_s": 5.0,
    }
