"""The configuration is YAML 1.2 (contract cli.md): the YAML 1.1 booleans and octals that
PyYAML would make of `no`, `NO`, `on`, `yes` and `0755` stay what was written, and real type
errors still name the key, with its line and column."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.config import load_config
from edge_agent.config.yaml12 import YamlError, load_yaml
from edge_agent.errors import ConfigError
from tests.conftest import ROOT

BASE = """\
device: {id: dock-07, site: hel1}
mqtt: {host: 127.0.0.1, port: 1883, username: dock, password: 0755, keepalive_s: 030}
storage: {path: /var/lib/edge-agent}
display: {title: on}
receiving: {grades: [A, B, NO, OFF], default_grade: NO}
scanners:
  - {id: s1, type: hid, device: /dev/input/event3, keymap: no}
  - id: s2
    type: hid
    device: /dev/input/event4
    keymap: no
"""


def test_norway_stays_norway_and_free_text_stays_text(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(BASE)
    config = load_config(path)
    assert [s.keymap for s in config.scanners] == ["no", "no"]  # type: ignore[union-attr]
    assert config.display.title == "on"
    assert config.receiving.grades == ["A", "B", "NO", "OFF"] and config.receiving.default_grade == "NO"
    assert config.mqtt.password.get_secret_value() == "0755"  # not 493 (YAML 1.1's octal), nor 755
    assert config.mqtt.keepalive_s == 30  # not 24
    result = subprocess.run([sys.executable, "-m", "edge_agent.cli", "check-config", "-c", str(path)],
                            capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert (result.returncode, result.stdout.strip()) == (0, "ok")


@pytest.mark.parametrize("word", ["no", "NO", "No", "yes", "on", "off", "y", "n", "Y", "N", "true"])
def test_yaml_11_booleans_are_text_only_true_and_false_are_booleans(word: str) -> None:
    data, _ = load_yaml(f"a: {word}\nb: [{word}]\n")
    expected = True if word == "true" else word
    assert data == {"a": expected, "b": [expected]}


def test_numbers_are_yaml_12_numbers() -> None:
    data, _ = load_yaml("a: 0755\nb: 0o17\nc: 0x1f\nd: 1.5\ne: 12\nf: ~\n")
    assert data == {"a": "0755", "b": 15, "c": 31, "d": 1.5, "e": 12, "f": None}
    assert type(data["e"]) is int


def test_a_type_error_names_the_key_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        BASE.replace("path: /var/lib/edge-agent}", "path: /var/lib/edge-agent,\n    max_size_mb: lots}")
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    [(key, message)] = err.value.problems
    assert key == "storage.max_size_mb"
    assert "valid integer" in message and "(line 4, column 5)" in message
    path.write_text(BASE.replace("port: 1883", "port: yes"))
    result = subprocess.run([sys.executable, "-m", "edge_agent.cli", "check-config", "-c", str(path)],
                            capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert result.returncode == 2
    assert (
        "mqtt.port: Input should be a valid integer" in result.stdout
        and "(line 2, column 25)" in result.stdout
    )


def test_a_missing_key_points_at_where_it_belongs(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(BASE.replace("    device: /dev/input/event4\n", ""))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [("scanners[1].device", "Field required (line 8, column 5)")]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: [1, 2\n", "line 2, column 1"),
        ("a: 1\na: 2\n", "line 2, column 1"),
        ("a: b: c\n", "line 1, column 5"),
    ],
)
def test_broken_yaml_says_where(text: str, where: str) -> None:
    with pytest.raises(YamlError) as err:
        load_yaml(text)
    assert where in str(err.value)
