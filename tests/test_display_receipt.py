"""The station page during a receipt, in Debian's Chromium at the kiosk's 800x480: the checklist,
each item scan's result, paging when the lines do not fit, and the summary when it closes."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

from simulators.central import Central
from simulators.samples import ean13
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker, free_port
from tests.browser import chromium, wait_page
from tests.test_display import GREEN, RED, Scanner

SHOT_DIR = Path(os.environ.get("EDGE_SCREENSHOTS", "")) if os.environ.get("EDGE_SCREENSHOTS") else None


def items(n: int) -> list[dict[str, Any]]:
    return [{"sku": f"SKU-{i}", "name": f"Article number {i} blue", "qty": 1 + i % 2, "gtin": ean13(5000 + i)}
            for i in range(n)]  # fmt: skip


def receipt_state(page: Any) -> dict[str, Any]:
    """The checklist as the worker sees it: which rows are shown, and whether any is cut off."""
    return page.execute_script(
        """
        const list = document.getElementById("checklist");
        const box = list.getBoundingClientRect();
        const rows = Array.from(list.children);
        const shown = rows.filter((r) => !r.hidden);
        return {
          open: !document.getElementById("receipt").hidden,
          rows: rows.length,
          shown: shown.map((r) => r.textContent),
          clipped: shown.filter((r) => { const b = r.getBoundingClientRect();
                                          return b.top < box.top - 0.5 || b.bottom > box.bottom + 0.5; }).length,
          font_px: shown.length ? parseFloat(getComputedStyle(shown[0]).fontSize) : 0,
          pager: document.getElementById("checklist-page").hidden ? "" :
                 document.getElementById("checklist-page").textContent,
          progress: document.getElementById("receipt-progress").textContent,
          head: document.getElementById("receipt-return").textContent,
          grade: document.getElementById("receipt-grade").textContent,
          missing: document.getElementById("missing").hidden ? "" : document.getElementById("missing").textContent,
          viewport: [window.innerWidth, window.innerHeight],
        };
        """
    )


def kiosk(page: Any) -> None:
    page.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 800, "height": 480, "deviceScaleFactor": 1, "mobile": False},
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
def test_the_checklist_at_800x480_with_its_results_paging_and_summary(tmp_path: Path, broker: Broker) -> None:
    central = Central("127.0.0.1", broker.port, "hel1")
    twelve, fifteen = items(12), items(15)
    central.returns = [
        {"return_id": "R12", "order_number": "SO-12", "keys": {}, "items": twelve},
        {"return_id": "R15", "order_number": "SO-15", "keys": {}, "items": fifteen},
    ]
    central.version = 1
    port = free_port()
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                          display_port=port)  # fmt: skip
    agent = AgentProcess(config, tmp_path / "agent.log").start()
    scanner = Scanner(link)
    try:
        with chromium() as page:
            kiosk(page)
            agent.wait_for("manifest.applied", version=1)
            agent.wait_for("display.serving")
            agent.wait_for("scanner.opened")
            page.get(f"http://127.0.0.1:{port}/")
            wait_page(page, lambda s: s["connected"] == "yes", what="connected")
            assert receipt_state(page)["viewport"] == [800, 480]

            scanner.scan("SO-12")
            s = wait_page(page, lambda s: s["seq"] == "1", what="the parcel")
            assert (s["outcome"], s["verdict"]) == ("expected", "EXPECTED")
            r = receipt_state(page)
            assert r["open"] and r["rows"] == 12 and len(r["shown"]) == 12 and r["clipped"] == 0
            assert r["pager"] == "" and r["font_px"] >= 18  # 12 lines on one page, readable at a metre
            assert r["head"] == "Return R12 · SO-12" and r["progress"] == "0/18" and r["grade"] == "grade A"
            assert r["shown"][1].startswith("0/2Article number 1 blue")

            scanner.scan("]E0" + twelve[1]["gtin"])
            s = wait_page(page, lambda s: s["seq"] == "2", what="an item")
            assert (s["outcome"], s["background"], s["verdict"]) == ("item", GREEN, "COUNTED")
            assert s["hint"] == "Article number 1 blue: 1 of 2 · grade A"
            assert receipt_state(page)["progress"] == "1/18"
            scanner.scan("CMD:GRADE:B")
            wait_page(page, lambda s: s["seq"] == "3" and s["verdict"] == "GRADE B", what="grade B")
            scanner.scan("]E0" + twelve[1]["gtin"])
            wait_page(page, lambda s: s["seq"] == "4", what="the second unit")
            assert "2/2Article number 1 blue" in receipt_state(page)["shown"][1]
            assert "A×1 B×1" in receipt_state(page)["shown"][1]
            scanner.scan("]E0" + twelve[1]["gtin"])
            s = wait_page(page, lambda s: s["seq"] == "5", what="one too many")
            assert (s["outcome"], s["background"], s["verdict"]) == ("extra_item", RED, "ONE TOO MANY")
            scanner.scan("]E0" + ean13(999))
            s = wait_page(page, lambda s: s["seq"] == "6", what="not in the return")
            assert s["verdict"] == "NOT IN THIS RETURN"
            assert receipt_state(page)["progress"] == "2/18 +2 extra"
            if SHOT_DIR is not None:
                (SHOT_DIR / "station-receipt.png").write_bytes(page.get_screenshot_as_png())
            shot = page.get_screenshot_as_png()
            assert png_size(shot) == (800, 480)
            (tmp_path / "receipt-12.png").write_bytes(shot)

            scanner.scan("SO-15")  # the next parcel: its own receipt, 15 lines
            wait_page(page, lambda s: s["seq"] == "7", what="the next parcel")
            r = receipt_state(page)
            assert r["rows"] == 15 and 0 < len(r["shown"]) < 15 and r["clipped"] == 0
            assert r["pager"] == "page 1 of 2 ▸"
            first_page = r["shown"]
            wait_page(page, lambda s: receipt_state(page)["pager"] == "page 2 of 2 ▸", timeout=10,
                      what="the page turning by itself")  # fmt: skip
            r = receipt_state(page)
            assert r["clipped"] == 0 and set(r["shown"]).isdisjoint(first_page)
            assert len(first_page) + len(r["shown"]) == 15  # every line is on some page
            scanner.scan("]E0" + fifteen[14]["gtin"])  # the last line: its page comes up at once
            wait_page(page, lambda s: s["seq"] == "8", what="the last line counted")
            r = receipt_state(page)
            assert r["pager"] == "page 2 of 2 ▸" and any(
                x.startswith("1/1Article number 14") for x in r["shown"]
            )
            (tmp_path / "receipt-15.png").write_bytes(page.get_screenshot_as_png())

            scanner.scan("CMD:DONE")
            s = wait_page(page, lambda s: s["seq"] == "9" and s["verdict"] == "SHORT", what="the summary")
            assert s["hint"] == "Return R15: 1 of 22 items"
            r = receipt_state(page)
            assert not r["open"] and "missing 1 × Article number 0 blue" in r["missing"]
            assert "… and 9 more lines" in r["missing"]  # 14 lines missing: 5 shown, the rest counted
            if SHOT_DIR is not None:
                (SHOT_DIR / "station-receipt-closed.png").write_bytes(page.get_screenshot_as_png())
    finally:
        scanner.close()
        agent.kill()
        central.close()
