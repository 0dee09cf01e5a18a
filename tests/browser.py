"""Debian's Chromium, headless, driven through its ChromeDriver by Selenium: a real browser
running the station display's JavaScript against the agent's real server."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# Without the background-networking flags Chromium keeps calling Google's hosts, which a closed
# network refuses; --no-sandbox because CI runs as root.
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,800",
)  # fmt: skip


@contextmanager
def chromium() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="edge-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page_state(driver: Any) -> dict[str, Any]:
    """What the worker sees, read from the DOM."""
    return driver.execute_script(
        """
        const r = document.getElementById("result");
        const t = (id) => document.getElementById(id).textContent;
        return {connected: document.body.dataset.connected, outcome: r.dataset.outcome,
                seq: r.dataset.seq, shown_at_ms: Number(r.dataset.shownAt || 0),
                background: getComputedStyle(r).backgroundColor, verdict: t("verdict"), hint: t("hint"),
                order: t("order"), customer: t("customer"), items: t("items"), meta: t("meta"),
                mode: t("mode"), broker: t("broker"), outbox: t("outbox"),
                expected: t("count-expected"), duplicate: t("count-duplicate"),
                unknown: t("count-unknown"), invalid: t("count-invalid"),
                printers: t("printers"), scanners: t("scanners"), scales: t("scales"),
                weight: document.getElementById("weight").hidden ? "" : t("weight"),
                scale_live: document.getElementById("scale-live").hidden ? "" : t("scale-live"),
                images: r.getElementsByTagName("img").length};
        """
    )


def wait_page(driver: Any, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0,
              what: str = "page state") -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = page_state(driver)
        if predicate(state):
            return state
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; the page shows {state}")
