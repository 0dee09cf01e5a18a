"""The install script, staged into a temporary root (DESTDIR), as packaging and CI run it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_install_script_stages_user_venv_unit_and_state_dir(tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = {**os.environ, "DESTDIR": str(root), "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "systemd" / "install.sh")], env=env, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    user = dict(line.split("=", 1) for line in (root / "etc/edge-agent/.user").read_text().split())
    assert user == {"user": "edge-agent", "group": "edge-agent", "groups": "input,dialout,lp",
                    "home": "/var/lib/edge-agent", "shell": "/usr/sbin/nologin"}  # fmt: skip
    from edge_agent import __version__

    release = root / "opt/edge-agent/releases" / __version__
    agent = release / "bin/edge-agent"
    assert agent.exists() and (release / ".installed").read_text().strip() == __version__
    assert os.readlink(root / "opt/edge-agent/releases/current") == __version__
    assert os.readlink(root / "opt/edge-agent/launcher") == f"releases/{__version__}"
    check = subprocess.run([str(agent), "check-config", "-c", str(root / "etc/edge-agent/agent.yaml")],
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0 and check.stdout.strip() == "ok"
    assert stat.S_IMODE((root / "etc/edge-agent/agent.yaml").stat().st_mode) == 0o640
    unit = (root / "etc/systemd/system/edge-agent.service").read_text()
    assert "ExecStart=/opt/edge-agent/launcher/bin/edge-agent launch -c /etc/edge-agent/agent.yaml" in unit
    assert "ReadWritePaths=/opt/edge-agent/releases" in unit and "KillMode=mixed" in unit
    assert (root / "etc/udev/rules.d/99-edge-agent.rules").exists()
    state = root / "var/lib/edge-agent"
    assert state.is_dir() and stat.S_IMODE(state.stat().st_mode) == 0o750
    assert (root / "opt/edge-agent/docs/operations.md").exists()
    # a second run keeps the operator's configuration
    (root / "etc/edge-agent/agent.yaml").write_text(
        (root / "etc/edge-agent/agent.yaml").read_text() + "# mine\n"
    )
    again = subprocess.run(["bash", str(ROOT / "systemd" / "install.sh")], env=env, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0 and (root / "etc/edge-agent/agent.yaml").read_text().endswith("# mine\n")
    assert "is installed already" in again.stdout
