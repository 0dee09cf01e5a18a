"""Printing for receipts: the command barcode sheet (every code on it scans back and decodes to a
valid station command), a receipt slip on a ZPL printer simulator over TCP at each close, and
restock labels on ESC/POS, one per unit received (`receiving.print_on_close`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image

from edge_agent.decode import Decoder
from simulators.central import Central
from simulators.samples import ean13
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.harness import type_payloads, wait_until
from tests.test_receiving import receipts


def test_the_command_sheet_scans_back_as_the_stations_commands(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("device: {id: dock-07, site: hel1}\nmqtt: {host: 127.0.0.1}\n"
                      f"storage: {{path: {tmp_path}}}\nreceiving: {{grades: [NEW, OPENED, DAMAGED], default_grade: NEW}}\n")  # fmt: skip
    png = tmp_path / "sheet.png"
    subprocess.run([sys.executable, "-m", "edge_agent.cli", "render", "--template", "command_sheet", "--data", "{}",
                    "--lang", "png", "-c", str(config), "-o", str(png)], check=True, cwd=ROOT)  # fmt: skip
    read = sorted(r.text for r in zxingcpp.read_barcodes(Image.open(png)))
    assert read == sorted([
        "CMD:DONE", "CMD:CANCEL", "CMD:QTY:2", "CMD:QTY:3", "CMD:QTY:5", "CMD:QTY:10", "CMD:GRADE:NEW",
        "CMD:GRADE:OPENED", "CMD:GRADE:DAMAGED", "CMD:MODE:RECEIVE", "CMD:MODE:INSPECT", "CMD:MODE:RESTOCK",
        "CMD:MODE:REJECT"])  # fmt: skip
    decoder = Decoder(grades=("NEW", "OPENED", "DAMAGED"))
    assert all(decoder.decode(text).valid and decoder.decode(text).kind == "command" for text in read)
    for lang in ("zpl", "escpos"):  # the same sheet for the station's thermal printer
        out = subprocess.run([sys.executable, "-m", "edge_agent.cli", "render", "--template", "command_sheet",
                              "--data", "{}", "--lang", lang, "-o", "-"], capture_output=True, check=True, cwd=ROOT)  # fmt: skip
        assert b"CMD:MODE:RESTOCK" in out.stdout


ITEMS = [
    {"sku": "JACKET-L", "name": "Jacket L", "qty": 2, "gtin": ean13(7001)},
    {"sku": "BELT-1", "name": "Belt", "qty": 1, "gtin": ean13(7002)},
]


def _start(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, printers_yaml: str, on_close: str
) -> Path:
    central.returns = [{"return_id": "R7", "order_number": "SO-7", "keys": {}, "items": ITEMS}]
    central.version = 1
    link = tmp_path / "s1"
    config = write_config(tmp_path, broker.port, [{"id": "s1", "type": "serial", "port": str(link)}],
                          extra=printers_yaml + f"receiving: {{print_on_close: {on_close}}}\n")  # fmt: skip
    agents(config).wait_for("manifest.applied", version=1)
    return link


def test_a_receipt_slip_prints_on_a_zpl_printer_at_close(
    tmp_path: Path, broker: Broker, central: Central, agents: Any, printers: Any
) -> None:
    sim = printers("zpl")
    printer = f"printers:\n  - {{id: p1, language: zpl, transport: tcp, host: 127.0.0.1, port: {sim.port}}}\n"
    link = _start(tmp_path, broker, central, agents, printer, "{printer: p1, what: slip}")
    type_payloads(link, ["SO-7", "]E0" + ITEMS[0]["gtin"], "CMD:GRADE:C", "]E0" + ITEMS[0]["gtin"],
                         "]E0" + ean13(9999), "CMD:DONE"])  # fmt: skip
    (receipt,) = receipts(central, 1)
    wait_until(lambda: list((tmp_path / "jobs").glob("job-*")), what="the slip at the printer")
    (slip,) = (tmp_path / "jobs").glob("job-*")
    zpl = slip.read_text()
    assert "RECEIPT CHECK" in zpl and "Return R7" in zpl and "Received 2 of 3" in zpl and "Extra 1" in zpl
    assert "2/2 JACKET-L Jacket L A:1 C:1 complete" in zpl and "0/1 BELT-1 Belt  missing" in zpl
    assert "EXTRA 1 x " in zpl and "not_in_return" in zpl
    assert f"#{receipt['receipt_seq']} done" in zpl


def test_restock_labels_print_one_per_unit_on_escpos(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    library = tmp_path / "library"
    printer = f"printers:\n  - {{id: p2, language: escpos, transport: file, path: {library}}}\n"
    link = _start(tmp_path, broker, central, agents, printer, "{printer: p2, what: restock_labels}")
    type_payloads(link, ["SO-7", "CMD:QTY:2", "]E0" + ITEMS[0]["gtin"], "CMD:GRADE:B", "]E0" + ITEMS[1]["gtin"],
                         "CMD:DONE"])  # fmt: skip
    receipts(central, 1)
    wait_until(lambda: len(list(library.glob("*.escpos"))) == 3, what="three restock labels")
    labels = sorted(p.read_bytes() for p in library.glob("*.escpos"))
    assert sum(b"JACKET-L" in x and b"Grade A" in x for x in labels) == 2
    assert sum(b"BELT-1" in x and b"Grade B" in x and b"Return R7" in x for x in labels) == 1
    assert all(b"\x1dk" in x for x in labels)  # GS k: the SKU as a Code 128 the shelf scanner reads
