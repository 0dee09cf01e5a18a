"""Templates in all three outputs; PNG barcodes read back with zxing-cpp; ZPL injection."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from edge_agent.printing.render_escpos import render_escpos
from edge_agent.printing.render_png import render_png
from edge_agent.printing.render_zpl import field_data, render_zpl
from edge_agent.printing.templates import TemplateError, builtin_templates, fill, parse_template
from simulators.samples import ret1_label
from tests.conftest import ROOT

DATA = {
    "return_id": "R100234", "order_number": "SO-88121", "customer_name": "A. Virtanen",
    "customer_address": "Mannerheimintie 1, 00100 Helsinki", "warehouse_name": "Returns HEL1",
    "warehouse_address": "Varastotie 5, 01510 Vantaa", "carrier_message": "Fragile",
    "sscc": "376104250021234569", "ret1": ret1_label("R100234", "SO-88121"), "bin": "B-12",
    "items_text": "1 x T-shirt", "item_1": "1 x T-shirt M black", "station": "dock-07", "mode": "receive",
    "ts": "2026-11-26T08:00:00.000Z", "device": "dock-07", "printer": "p1", "agent_version": "0.1.0",
}  # fmt: skip

EXPECTED_BARCODES = {
    "return_label": {
        ("QRCode", DATA["ret1"]),
        ("Code128", "SO-88121"),
        ("Code128", "(00)376104250021234569"),
    },
    "routing_slip": {("DataMatrix", "R100234"), ("Code128", "SO-88121")},
    "packing_list": {("Code128", "SO-88121")},
    "test_label": {("QRCode", "dock-07/p1")},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_BARCODES))
def test_builtin_template_renders_everywhere_and_its_barcodes_read_back(name: str) -> None:
    label = fill(builtin_templates()[name], DATA)
    zpl = render_zpl(label).decode()
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ") and zpl.count("^XA") == 1
    escpos = render_escpos(label)
    assert escpos.startswith(b"\x1b@") and b"\x1dV" in escpos  # initialised and cut
    image = Image.open(io.BytesIO(render_png(label)))
    found = {(r.format.name, r.text) for r in zxingcpp.read_barcodes(image)}
    assert found == EXPECTED_BARCODES[name]


def test_gs1_128_reads_back_as_gs1() -> None:
    label = fill(builtin_templates()["return_label"], DATA)
    image = Image.open(io.BytesIO(render_png(label)))
    gs1 = [r for r in zxingcpp.read_barcodes(image) if r.text.startswith("(00)")]
    assert gs1 and gs1[0].symbology_identifier == "]C1"


def test_data_cannot_become_zpl_commands() -> None:
    hostile = {**DATA, "customer_name": "^XA^FO0,0^GB800,800,800^FS^XZ", "carrier_message": "~JR reset \\ me"}
    zpl = render_zpl(fill(builtin_templates()["return_label"], hostile)).decode()
    assert zpl.count("^XA") == 1 and zpl.count("^XZ") == 1 and "~JR" not in zpl
    assert "\\5EXA\\5EFO0,0\\5EGB800,800,800\\5EFS\\5EXZ" in zpl
    assert "\\7EJR reset \\5C me" in zpl
    assert field_data("a^b~c\\d") == "a\\5Eb\\7Ec\\5Cd"


def test_missing_data_and_conditional_elements() -> None:
    template = builtin_templates()["return_label"]
    with pytest.raises(TemplateError, match="order_number"):
        fill(template, {"return_id": "R1"})
    minimal = fill(template, {"return_id": "R1", "order_number": "SO-1"})
    kinds = [e.type for e in minimal.elements]
    assert "gs1_128" not in kinds and "qr" not in kinds  # no sscc, no ret1: those are left out
    with pytest.raises(TemplateError, match="nope"):
        fill(parse_template({"name": "t", "width_mm": 10, "height_mm": 10,
                             "elements": [{"type": "text", "x": 0, "y": 0, "text": "{nope}"}]}, "t"), {})  # fmt: skip


def test_template_errors_name_the_field() -> None:
    with pytest.raises(TemplateError, match=r"elements\.0\.text\.size"):
        parse_template({"name": "t", "width_mm": 10, "height_mm": 10,
                        "elements": [{"type": "text", "x": 0, "y": 0, "text": "a", "size": -1}]}, "t")  # fmt: skip


def test_render_command_and_site_template(tmp_path: Path) -> None:
    out = tmp_path / "tag.png"
    subprocess.run([sys.executable, "-m", "edge_agent.cli", "render", "--template-file",
                    str(ROOT / "config/templates/pallet_tag.yaml"), "--data", '{"return_id": "R7"}',
                    "--lang", "png", "-o", str(out)], check=True, cwd=ROOT)  # fmt: skip
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(out))] == ["PLT-R7"]
    bad = subprocess.run([sys.executable, "-m", "edge_agent.cli", "render", "--template", "return_label",
                          "--data", "{}", "--lang", "zpl"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert bad.returncode == 2 and "return_id" in bad.stderr
