"""Office printers over IPP, against CUPS's own `ippeveprinter`: PDF documents go as they are,
templates (a packing list, a return label) as PDF pages with every barcode readable, the printer's
state mapped from `printer-state` and `printer-state-reasons`, and a printer that goes away
reported `offline` with an alert. Also `edge-agent print` and `edge-agent render --lang pdf`."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from PIL import Image

from drivers.printers.ipp_status import attributes, status_of
from simulators.central import Central
from simulators.printed import gf_bitmaps, to_image
from tests.agentproc import write_config
from tests.broker import Broker
from tests.conftest import ROOT
from tests.documents import carrier_4x6, png_label, read_codes
from tests.harness import wait_until
from tests.ipp import IppEvePrinter, SwallowingProxy
from tests.test_printing_documents import final
from tests.test_printing_jobs import events, job

IDLE = "printer-state (enum) = idle\nprinter-state-reasons (keyword) = "
TRAYS = ("type=sheetFeedAutoRemovableTray;mediafeed=0;mediaxfeed=0;maxcapacity=-2;level=-2;status=0;name=auto,"
         "type=sheetFeedAutoRemovableTray;mediafeed=29700;mediaxfeed=21000;maxcapacity=250;level={};status=0;"
         "name=main,type=sheetFeedManual;mediafeed=22000;mediaxfeed=11000;maxcapacity=25;level={};status=0;"
         "name=by-pass-tray")  # fmt: skip


@pytest.mark.parametrize(
    ("lines", "state"),
    [
        ("printer-state (enum) = idle\nprinter-state-reasons (keyword) = none", "ready"),
        ("printer-state (enum) = processing\nprinter-state-reasons (keyword) = none", "ready"),
        ("printer-state (enum) = stopped\nprinter-state-reasons (keyword) = media-empty-error", "paper_out"),
        ("printer-state (enum) = stopped\nprinter-state-reasons (1setOf keyword) = media-needed,paused", "paper_out"),
        ("printer-state (enum) = stopped\nprinter-state-reasons (keyword) = cover-open", "head_open"),
        ("printer-state (enum) = idle\nprinter-state-reasons (keyword) = toner-empty-error", "ribbon_out"),
        ("printer-state (enum) = stopped\nprinter-state-reasons (keyword) = offline-report", "paused"),  # -report only informs
        ("printer-state (enum) = idle\nprinter-state-reasons (keyword) = media-low-warning", "ready"),
        ("printer-state (enum) = stopped\nprinter-state-reasons (keyword) = paused", "paused"),
        ("printer-state (enum) = stopped\nprinter-state-reasons (keyword) = media-jam-error", "error"),
        ("printer-state (enum) = idle\nprinter-state-reasons (keyword) = offline", "offline"),
        ("printer-state-reasons (keyword) = none", "unknown"),
        # ippeveprinter's own report of an empty tray: out of paper only when no tray has any left
        (f"{IDLE}media-empty-report\nmedia-ready (no-value) = no-value", "paper_out"),
        (f"{IDLE}media-empty-report\nprinter-input-tray (1setOf octetString) = {TRAYS.format(0, -2)}", "paper_out"),
        (f"{IDLE}media-empty-report\nprinter-input-tray (1setOf octetString) = {TRAYS.format(250, 0)}", "ready"),
        (f"{IDLE}media-empty-report\nprinter-input-tray (1setOf octetString) = {TRAYS.format(-2, -2)}", "ready"),
        (f"{IDLE}media-low-report\nprinter-input-tray (1setOf octetString) = {TRAYS.format(0, 0)}", "ready"),
    ],
)  # fmt: skip
def test_ipp_states_map_to_the_contracts(lines: str, state: str) -> None:
    assert status_of(attributes(lines)).state == state


def pdf_codes(data: bytes) -> set[tuple[str, str]]:
    doc = pdfium.PdfDocument(data)
    found: set[tuple[str, str]] = set()
    for i in range(len(doc)):
        found |= read_codes(doc[i].render(scale=300 / 72, grayscale=True).to_pil().convert("L"))
    doc.close()
    return found


def office_agent(
    tmp_path: Path, broker: Broker, agents: Any, url: str, *, paper: str = ""
) -> tuple[Path, Any]:
    """An agent whose one printer, `office`, is the IPP printer at `url`; returned once it is ready."""
    config = write_config(tmp_path, broker.port, extra=(
        f"printers:\n  - {{id: office, language: pdf, transport: ipp, url: '{url}'{paper}}}\n"
        "printing: {poll_interval_s: 0.5, status_timeout_s: 2.0}\n"))  # fmt: skip
    agent = agents(config)
    agent.wait_for("printer.status", printer="office", state="ready")
    return config, agent


def wait_for_printer_alert(central: Central, state: str) -> None:
    wait_until(lambda: any(json.loads(p).get("kind") == "printer" and json.loads(p).get("state") == state
                           for t, p in list(central.messages) if t.endswith("/event/alert")),
               what=f"the {state} alert")  # fmt: skip


def test_an_ipp_printer_prints_documents_as_they_are_and_templates_as_pdf(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    ipp = IppEvePrinter(tmp_path)
    try:
        _, agent = office_agent(tmp_path, broker, agents, ipp.url, paper=", paper: a4")

        def status() -> list[dict[str, Any]]:
            return [json.loads(p) for t, p in list(central.messages) if t.endswith("/printer/office/status")]

        # the log line comes as the status is published; central has it a moment later
        wait_until(lambda: status() and status()[-1]["state"] == "ready", what="the retained status")
        assert status()[-1]["language"] == "pdf"
        carrier, codes = carrier_4x6()
        job(central, {"job_id": "O-1", "printer": "office", "pdf_b64": base64.b64encode(carrier).decode()})
        job(
            central,
            {
                "job_id": "O-2",
                "printer": "office",
                "template": "packing_list",
                "data": {"order_number": "SO-88121", "return_id": "R100234", "item_1": "2 x T-shirt"},
            },
        )
        job(
            central,
            {
                "job_id": "O-3",
                "printer": "office",
                "template": "return_label",
                "data": {
                    "return_id": "R100234",
                    "order_number": "SO-88121",
                    "customer_name": "A. Virtanen",
                    "sscc": "376104250021234569",
                },
            },
        )
        job(central, {"job_id": "O-4", "printer": "office", "zpl": "^XA^XZ"})  # raw ZPL for an office printer
        for job_id in ("O-1", "O-2", "O-3"):
            assert final(central, job_id)["state"] == "printed", job_id
        assert final(central, "O-4")["error"]["code"] == "wrong_language"
        wait_until(lambda: len(ipp.documents()) == 3, what="three documents at the printer")
        documents = ipp.documents()
        assert carrier in documents  # as it was sent, byte for byte
        assert {(c.format, c.text) for c in codes} <= pdf_codes(carrier)
        label = next(d for d in documents if ("Code128", "(00)376104250021234569") in pdf_codes(d))
        (packing,) = [d for d in documents if d not in (carrier, label)]
        assert ("Code128", "SO-88121") in pdf_codes(packing)
        assert pdfium.PdfDocument(packing)[0].get_size() == pytest.approx((595.3, 841.9), abs=0.5)  # A4
        assert pdfium.PdfDocument(label)[0].get_size() == pytest.approx((595.3, 841.9), abs=0.5)
        ipp_jobs = [r for r in agent.records() if r["event"] == "printer.ipp_job"]
        assert sorted(r["ipp_job_id"] for r in ipp_jobs) == [1, 2, 3]
        db = sqlite3.connect(f"file:{tmp_path / 'state' / 'agent.db'}?mode=ro", uri=True)
        kept = dict(
            db.execute("SELECT job_id, printer_job FROM jobs WHERE printer_job IS NOT NULL").fetchall()
        )
        db.close()
        assert kept == {
            r["job"]: str(r["ipp_job_id"]) for r in ipp_jobs
        }  # the printer's job id, with the job
        ipp.close()  # the printer goes away
        agent.wait_for("printer.status", printer="office", state="offline", timeout=20)
        wait_for_printer_alert(central, "offline")
        assert [e["state"] for e in events(central, "event/print") if e["job_id"] == "O-1"] == [
            "accepted",
            "printing",
            "printed",
        ]
    finally:
        ipp.close()


def test_edge_agent_print_and_render_pdf(tmp_path: Path, printers: Any) -> None:
    sim = printers("zpl")
    ipp = IppEvePrinter(tmp_path)
    try:
        config = write_config(tmp_path, 1883, extra=(
            f"printers:\n  - {{id: z1, language: zpl, transport: tcp, host: 127.0.0.1, port: {sim.port}}}\n"
            f"  - {{id: office, language: pdf, transport: ipp, url: '{ipp.url}'}}\n"))  # fmt: skip
        carrier, codes = carrier_4x6()
        document = tmp_path / "label.pdf"
        document.write_bytes(carrier)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "edge_agent.cli", *args], capture_output=True, text=True,
                                  cwd=ROOT, timeout=120)  # fmt: skip

        done = cli("print", str(document), "--printer", "z1", "-c", str(config))
        assert done.returncode == 0, done.stderr
        assert "to z1" in done.stdout
        wait_until(lambda: list((tmp_path / "jobs").glob("job-*")), what="the label at the printer")
        (zpl,) = [p.read_bytes() for p in (tmp_path / "jobs").glob("job-*")]
        ((bitmap, per_row),) = gf_bitmaps(zpl)
        assert {(c.format, c.text) for c in codes} <= read_codes(to_image(bitmap, per_row))
        done = cli("print", str(document), "--printer", "office", "-c", str(config))
        assert done.returncode == 0, done.stderr
        wait_until(lambda: ipp.documents() == [carrier], what="the document at the office printer")
        (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 nothing")
        bad = cli("print", str(tmp_path / "bad.pdf"), "--printer", "z1", "-c", str(config))
        assert bad.returncode == 1 and "not a readable PDF" in bad.stderr
        out = tmp_path / "packing.pdf"
        rendered = cli("render", "--template", "packing_list", "--data", '{"order_number": "SO-1"}', "--lang", "pdf",
                       "--paper", "letter", "-o", str(out))  # fmt: skip
        assert rendered.returncode == 0, rendered.stderr
        assert pdfium.PdfDocument(out.read_bytes())[0].get_size() == pytest.approx((612, 792), abs=0.5)
        assert ("Code128", "SO-1") in pdf_codes(out.read_bytes())
    finally:
        ipp.close()


def test_an_ipp_printer_out_of_paper_holds_its_jobs_until_refilled(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    """ippeveprinter's main tray set to 0 sheets through its own media form: the printer says
    `media-empty-report`, the agent `paper_out` with an alert, and a job waits, unsent, until the
    tray is filled again. An empty by-pass tray beside a full main tray stops nothing."""
    ipp = IppEvePrinter(tmp_path)
    try:
        _, agent = office_agent(tmp_path, broker, agents, ipp.url)
        ipp.set_trays(main=250, bypass=0)
        time.sleep(1.5)  # three polls: an empty by-pass tray alone is no reason to stop
        states = [
            r["state"]
            for r in agent.records()
            if r["event"] == "printer.status" and r.get("printer") == "office"
        ]
        assert states[-1] == "ready", states
        ipp.set_trays(main=0)
        agent.wait_for("printer.status", printer="office", state="paper_out", timeout=20)
        wait_for_printer_alert(central, "paper_out")
        carrier, _ = carrier_4x6()
        job(central, {"job_id": "P-1", "printer": "office", "pdf_b64": base64.b64encode(carrier).decode()})
        wait_until(lambda: any(e["job_id"] == "P-1" for e in events(central, "event/print")), what="accepted")
        time.sleep(2.0)
        assert ipp.documents() == []  # nothing sent to a printer without paper
        assert [e["state"] for e in events(central, "event/print") if e["job_id"] == "P-1"] == ["accepted"]
        ipp.set_trays(main=250)
        assert final(central, "P-1")["state"] == "printed"
        assert ipp.documents() == [carrier]
    finally:
        ipp.close()


def test_a_job_whose_submission_may_have_reached_the_printer_is_uncertain_after_a_crash(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    """Exactly once on an office printer: the agent is killed (SIGKILL) after its Print-Job left
    and before the printer answered (a proxy in front of ippeveprinter takes the request in and
    answers nothing). After the restart the job is `uncertain`, and it is not sent again until a
    `reprint` says so."""
    ipp = IppEvePrinter(tmp_path)
    proxy = SwallowingProxy(ipp.port)
    try:
        config, agent = office_agent(tmp_path, broker, agents, proxy.url())
        proxy.swallow.set()
        carrier, _ = carrier_4x6()
        job(central, {"job_id": "C-1", "printer": "office", "pdf_b64": base64.b64encode(carrier).decode()})
        assert proxy.swallowed.wait(20), "the Print-Job reached the printer's door"
        agent.kill()
        proxy.swallow.clear()
        agents(config)
        wait_until(lambda: any(e["job_id"] == "C-1" and e["state"] == "uncertain"
                               for e in events(central, "event/print")), what="uncertain")  # fmt: skip
        time.sleep(2.0)  # polls enough to send it again, were it to be
        assert proxy.print_jobs == 1 and ipp.documents() == []
        assert central.command("dock-07", "reprint", {"job_id": "C-1"})["status"] == "ok"
        wait_until(lambda: ipp.documents() == [carrier], what="reprinted")
        assert proxy.print_jobs == 2
    finally:
        proxy.close()
        ipp.close()


def test_an_image_prints_on_an_ipp_printer_as_a_pdf_page_its_barcodes_whole(
    tmp_path: Path, broker: Broker, central: Central, agents: Any
) -> None:
    ipp = IppEvePrinter(tmp_path)
    try:
        _, agent = office_agent(tmp_path, broker, agents, ipp.url)
        png, codes = png_label(300)
        job(central, {"job_id": "I-1", "printer": "office", "image_b64": base64.b64encode(png).decode()})
        assert final(central, "I-1")["state"] == "printed"
        wait_until(lambda: len(ipp.documents()) == 1, what="the document at the printer")
        (document,) = ipp.documents()
        assert document.startswith(b"%PDF-")
        assert {(c.format, c.text) for c in codes} <= pdf_codes(document)
        width, height = pdfium.PdfDocument(document)[0].get_size()
        image = Image.open(io.BytesIO(png))
        assert width / height == pytest.approx(image.width / image.height, rel=0.01)  # not stretched
    finally:
        ipp.close()
