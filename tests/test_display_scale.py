"""The station page with a scale, in Debian's Chromium at the kiosk's 800x480: the live weight
while a parcel is on the pan, a light parcel shown plainly in an alarm's colour, and the scale's
state in the device bar (`edge-sim scale` on a pty, the agent process, a real Mosquitto)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulators.central import Central
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker, free_port
from tests.browser import chromium, wait_page
from tests.test_display import GREEN, RED, Scanner
from tests.test_display_receipt import kiosk, png_size
from tests.test_scale_simulator import command, scale
from tests.test_scales import RETURNS

SHOT_DIR = Path(os.environ.get("EDGE_SCREENSHOTS", "")) if os.environ.get("EDGE_SCREENSHOTS") else None


@pytest.mark.slow
def test_weights_on_the_station_page(tmp_path: Path, broker: Broker) -> None:
    central = Central("127.0.0.1", broker.port, "hel1")
    central.returns, central.version = RETURNS, 1
    port = free_port()
    link = tmp_path / "s1"
    with scale(tmp_path, "sics") as (sim, path):
        config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                              display_port=port,
                              extra=f"scales:\n  - {{id: sc1, type: serial, protocol: sics, port: {path}}}\n")  # fmt: skip
        agent = AgentProcess(config, tmp_path / "agent.log").start()
        scanner = Scanner(link)
        try:
            with chromium() as page:
                kiosk(page)
                agent.wait_for("manifest.applied", version=1)
                agent.wait_for("display.serving")
                page.get(f"http://127.0.0.1:{port}/")
                s = wait_page(page, lambda s: s["connected"] == "yes" and "scale sc1: ok" in s["scales"],
                              what="the scale in the device bar")  # fmt: skip
                assert s["scale_live"] == ""  # nothing on the pan: no live weight

                command(sim, "!weight 120")
                s = wait_page(page, lambda s: s["scale_live"] == "⚖ 120 g", what="the live weight")
                assert s["scales"] == "scale sc1: ok 120 g"
                scanner.scan("SO-2")  # an empty box for a pair of shoes
                s = wait_page(page, lambda s: s["seq"] == "1" and s["weight"].startswith("weighs"),
                              what="the parcel's weight")  # fmt: skip
                assert (s["outcome"], s["background"], s["verdict"]) == ("weight_light", RED, "TOO LIGHT")
                assert s["weight"] == "weighs 120 g, expected about 760 g: check the contents"
                assert s["order"] == "SO-2" and s["hint"] == "Open the parcel and check what is inside"
                shot = page.get_screenshot_as_png()
                assert png_size(shot) == (800, 480)
                if SHOT_DIR is not None:
                    (SHOT_DIR / "station-weight-light.png").write_bytes(shot)

                command(sim, "!weight 955")
                wait_page(page, lambda s: s["scale_live"] == "⚖ 955 g", what="the next parcel settled")
                scanner.scan("SO-1")
                s = wait_page(page, lambda s: s["seq"] == "2" and s["weight"].startswith("weighs"), what="ok")
                assert (s["outcome"], s["background"]) == ("expected", GREEN)
                assert s["weight"] == "weighs 955 g (expected about 950 g)"

                command(sim, "!motion 600")
                s = wait_page(page, lambda s: s["scale_live"].endswith("…"), what="the pan moving")
                assert "scale sc1: settling" in s["scales"]
                command(sim, "!unplug 600")
                s = wait_page(page, lambda s: s["scales"] == "scale sc1: offline", what="offline")
                assert s["scale_live"] == ""
        finally:
            scanner.close()
            agent.kill()
            central.close()
