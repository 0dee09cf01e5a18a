"""The station page in the worker's language (display.language), in Debian's Chromium at the
kiosk's 800x480: every text from the catalogs, no English left on it, the `lang` attribute,
numbers and times in the locale's form, and a sound for each result (display.sound)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from edge_agent.display.catalogs import catalog
from simulators.central import Central
from simulators.samples import ean13
from tests.agentproc import AgentProcess, write_config
from tests.broker import Broker, free_port
from tests.browser import chromium, wait_page
from tests.test_display import Scanner
from tests.test_display_receipt import kiosk, png_size

SHOT_DIR = Path(os.environ["EDGE_SCREENSHOTS"]) if os.environ.get("EDGE_SCREENSHOTS") else None
ITEMS = [{"sku": "VS-1", "name": "Villasukat", "qty": 2, "gtin": ean13(7001)},
         {"sku": "KP-2", "name": "Kumisaappaat 42", "qty": 1, "gtin": ean13(7002)}]  # fmt: skip
DATA = {"hel1", "dock", "so", "vs", "kp", "villasukat", "kumisaappaat", "station"}
"""Words on the page that are the test's own data (ids, names), not the page's texts."""
WORDS = re.compile(r"[^\W\d_]{3,}")


def english_words(lang: str) -> set[str]:
    """Every English word of the page's texts that the language does not share."""
    english: set[str] = set()
    ours: set[str] = set()
    for msgid, text in catalog(lang)["messages"].items():
        english |= set(WORDS.findall(msgid.split("\u0004")[-1].lower()))
        for form in text if isinstance(text, list) else [text]:
            ours |= set(WORDS.findall(form.lower()))
    return english - ours - DATA


def visible_text(page: Any) -> str:
    return str(page.execute_script("return document.body.innerText"))


def assert_no_english(page: Any, lang: str, where: str) -> None:
    seen = set(WORDS.findall(visible_text(page).lower()))
    assert not seen & english_words(lang), (
        f"English on the {lang} page ({where}): {seen & english_words(lang)}"
    )


def sound(page: Any) -> tuple[str, int]:
    got = page.execute_script(
        "return [document.body.dataset.sound || '', Number(document.body.dataset.sounds || 0)]"
    )
    return got[0], got[1]


@pytest.mark.parametrize(
    ("lang", "ready", "expected", "counted", "short", "summary"),
    [
        ("fi", "VALMIS", "ODOTETTU", "LASKETTU", "PUUTTEELLINEN", "Palautus R1: 1/3 tuotetta"),
        ("sv", "REDO", "FÖRVÄNTAD", "RÄKNAD", "OFULLSTÄNDIG", "Retur R1: 1 av 3 artiklar"),
    ],
)
def test_the_page_in_finnish_and_swedish(
    tmp_path: Path, broker: Broker, printers: Any, lang: str, ready: str, expected: str, counted: str,
    short: str, summary: str,
) -> None:  # fmt: skip
    central = Central("127.0.0.1", broker.port, "hel1")
    central.returns = [{"return_id": "R1", "order_number": "SO-1", "keys": {}, "items": ITEMS}]
    central.version = 1
    sim = printers("zpl")
    port = free_port()
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                          display_port=port,
                          extra=f"printers:\n  - {{id: p1, language: zpl, transport: tcp, host: 127.0.0.1, "
                                f"port: {sim.port}}}\n")  # fmt: skip
    config.write_text(config.read_text().replace(f"display: {{port: {port}}}",
                                                 f"display: {{port: {port}, language: {lang}}}"))  # fmt: skip
    agent = AgentProcess(config, tmp_path / "agent.log").start()
    scanner = Scanner(link)
    try:
        with chromium() as page:
            kiosk(page)
            agent.wait_for("manifest.applied", version=1)
            agent.wait_for("scanner.opened")
            page.get(f"http://127.0.0.1:{port}/")
            s = wait_page(
                page, lambda s: s["connected"] == "yes" and s["verdict"] == ready, what="the idle page"
            )
            assert page.execute_script("return document.documentElement.lang") == lang
            wait_page(
                page, lambda s: "p1" in s["printers"] and "?" not in s["printers"], what="the printer row"
            )
            assert_no_english(page, lang, "idle")
            page.find_element("tag name", "body").click()  # the gesture that lets the page play sounds

            scanner.scan("SO-1")
            s = wait_page(page, lambda s: s["seq"] == "1", what="the parcel")
            assert s["verdict"] == expected
            assert_no_english(page, lang, "the parcel with its checklist")
            assert sound(page) == ("expected", 1)

            scanner.scan("]E0" + ITEMS[0]["gtin"])
            s = wait_page(page, lambda s: s["seq"] == "2", what="an item")
            assert s["verdict"] == counted and s["hint"].startswith("Villasukat: 1")
            assert_no_english(page, lang, "an item counted")
            assert sound(page) == ("item", 2)
            shot = page.get_screenshot_as_png()
            assert png_size(shot) == (800, 480)
            (tmp_path / f"station-{lang}.png").write_bytes(shot)
            if SHOT_DIR is not None:
                (SHOT_DIR / f"station-{lang}.png").write_bytes(shot)

            scanner.scan("CMD:DONE")
            s = wait_page(page, lambda s: s["seq"] == "3" and s["verdict"] == short, what="the summary")
            assert s["hint"] == summary
            assert_no_english(page, lang, "the receipt's summary")
            assert sound(page) == ("receipt-short", 3)

            scanner.scan("XQ-77881")
            s = wait_page(page, lambda s: s["seq"] == "4", what="an unknown parcel")
            assert_no_english(page, lang, "an unknown payload")
            assert sound(page) == ("unknown", 4)
            clock = page.execute_script("return document.getElementById('clock').textContent")
            assert clock == page.execute_script(
                f"return new Date(Date.now()).toLocaleTimeString('{lang}', {{hour: '2-digit', minute: '2-digit'}})"
            )
    finally:
        scanner.close()
        agent.kill()
        central.close()


def test_sound_off_plays_nothing(tmp_path: Path, broker: Broker) -> None:
    port = free_port()
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                          display_port=port)  # fmt: skip
    config.write_text(
        config.read_text().replace(f"display: {{port: {port}}}", f"display: {{port: {port}, sound: false}}")
    )
    agent = AgentProcess(config, tmp_path / "agent.log").start()
    scanner = Scanner(link)
    try:
        with chromium() as page:
            agent.wait_for("scanner.opened")
            page.get(f"http://127.0.0.1:{port}/")
            wait_page(page, lambda s: s["connected"] == "yes", what="connected")
            page.find_element("tag name", "body").click()
            scanner.scan("XQ-77881")
            wait_page(page, lambda s: s["seq"] == "1", what="a scan")
            assert sound(page) == ("", 0)
            assert page.execute_script("return document.documentElement.lang") == "en"
    finally:
        scanner.close()
        agent.kill()
