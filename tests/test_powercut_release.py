"""A release installed on a card that then loses power is whole (LazyFS): pip fsyncs nothing, so
the installer does, before it writes the marker that says the release is there and before
`current` may point at it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge_agent.update.releases import MARKER, Releases
from tests.powercut import Disk

PROBE = """OK = "probe 9.9.9 is whole"


def main() -> None:
    print(OK)
"""


def probe_wheel(folder: Path) -> Path:
    """A tiny distribution named like the agent, with its console script `edge-agent`."""
    project = folder / "probe"
    project.mkdir()
    (project / "probe.py").write_text(PROBE * 40)  # a few pages of data, as real modules have
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "dock-edge-agent"\nversion = "9.9.9"\n'
        '[project.scripts]\nedge-agent = "probe:main"\n'
        '[tool.setuptools]\npy-modules = ["probe"]\n'
    )
    wheels = folder / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation", "--no-deps",
                    "--wheel-dir", str(wheels), str(project)], check=True, capture_output=True)  # fmt: skip
    return wheels


def test_an_installed_release_survives_a_power_cut(tmp_path: Path) -> None:
    wheels = probe_wheel(tmp_path)
    with Disk(tmp_path) as disk:
        releases = Releases(disk.mount / "releases")
        releases.root.mkdir()
        releases.install("9.9.9", wheels)
        releases.switch("9.9.9")
        disk.drop()  # the power goes the moment the launcher would start it
        assert releases.current() == "9.9.9" and releases.installed("9.9.9")
        assert (releases.path("9.9.9") / MARKER).read_text() == "9.9.9\n"
        run = subprocess.run([str(releases.executable("9.9.9"))], capture_output=True, text=True, timeout=60)
        assert (run.returncode, run.stdout.strip()) == (0, "probe 9.9.9 is whole"), run.stderr[-2000:]
