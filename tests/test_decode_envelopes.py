"""ISO/IEC 15434 envelopes, GS1 Digital Link URIs and strict human-readable GS1 (labels.md kinds
3 and 4), from the reference's examples and payloads made independently (simulators.samples)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge_agent.decode import Decoder
from edge_agent.decode.iso15434 import Reader, parse_envelope
from simulators.samples import EOT, GS, RS, digital_link, gtin14, mh10, sscc, ups_maxicode

# ISO/IEC 16023 figure B2, as zint's tests and reference/iso15434.md give it
UPS_B2 = (
    f"[)>{RS}01{GS}96152382802{GS}840{GS}001{GS}1Z00004951{GS}UPSN{GS}06X610{GS}159{GS}1234567"
    f"{GS}1/1{GS}{GS}Y{GS}634 ALPHA DR{GS}PITTSBURGH{GS}PA{RS}{EOT}"
)
FEDEX = (
    f"[)>{RS}01{GS}0238117{GS}840{GS}01{GS}7910002710790201{GS}FDE{GS}123456789{GS}251{GS}{GS}1/1"
    f"{GS}2.5LB{GS}N{GS}1 MAIN ST{GS}MEMPHIS{GS}TN{GS}J DOE{RS}06{GS}10ZGD004{GS}11ZJ DOE{RS}{EOT}"
)
MH10_ZXING = f"[)>{RS}06{GS}9N111234568408{GS}1TF17L715034{GS}D180800{GS}SXVTR75973491946876{RS}{EOT}"


def test_ups_maxicode_rebuilds_and_checks_the_1z_number(decoder: Decoder) -> None:
    d = decoder.decode(UPS_B2).to_dict()
    assert d["kind"] == "iso15434" and d["valid"] is True and d["error"] is None
    assert d["keys"] == {"tracking_number": "1Z06X6100100004951"}
    (fmt,) = d["iso15434"]["formats"]
    assert fmt["format"] == "01" and fmt["header"] == "96"
    assert fmt["fields"][:5] == ["152382802", "840", "001", "1Z00004951", "UPSN"]
    assert fmt["fields"][-3:] == ["634 ALPHA DR", "PITTSBURGH", "PA"]
    assert fmt["carrier"] == {
        "scac": "UPSN",
        "tracking_number": "1Z06X6100100004951",
        "postal_code": "152382802",
        "country": "840",
        "service": "001",
    }


def test_ups_maxicode_made_independently() -> None:
    for package in (1, 4951, 1234567):
        message, number = ups_maxicode(package)
        d = Decoder().decode("]U1" + message)
        assert d.kind == "iso15434" and d.valid and d.keys == {"tracking_number": number}
        assert d.symbology == "]U1"


def test_ups_short_number_with_a_wrong_check_digit_is_invalid(decoder: Decoder) -> None:
    bad = UPS_B2.replace("1Z00004951", "1Z00004952")
    d = decoder.decode(bad)
    assert d.kind == "iso15434" and not d.valid and d.keys == {}
    assert "check digit" in (d.error or "") and "position 4" in (d.error or "")


def test_fedex_tracking_field_first_twelve_digits_and_a_06_part(decoder: Decoder) -> None:
    d = decoder.decode(FEDEX).to_dict()
    assert d["kind"] == "iso15434" and d["valid"], d
    assert d["keys"] == {"tracking_number": "791000271079"}
    f01, f06 = d["iso15434"]["formats"]
    assert f01["header"] == "02" and f01["carrier"]["scac"] == "FDE"
    assert f01["carrier"]["tracking_number"] == "791000271079"
    assert f06 == {"format": "06", "fields": [["10Z", "GD004"], ["11Z", "J DOE"]]}


def test_mh10_data_identifiers_in_order(decoder: Decoder) -> None:
    d = decoder.decode(MH10_ZXING).to_dict()
    assert d["kind"] == "iso15434" and d["valid"]
    assert d["iso15434"] == {
        "formats": [
            {
                "format": "06",
                "fields": [
                    ["9N", "111234568408"],
                    ["1T", "F17L715034"],
                    ["D", "180800"],
                    ["S", "XVTR75973491946876"],
                ],
            }
        ]
    }
    assert d["keys"] == {}
    m = decoder.decode(mh10(42))
    assert m.keys == {"license_plate": "UN0761042500000042", "order_number": "SO-42"}


def test_format_05_alone_is_gs1_and_beside_others_gives_its_keys(decoder: Decoder) -> None:
    code = sscc(3)
    alone = decoder.decode(f"[)>{RS}05{GS}00{code}{GS}42000180{RS}{EOT}").to_dict()
    assert alone["kind"] == "gs1" and alone["gs1"] == {"00": code, "420": "00180"}
    assert alone["keys"] == {"sscc": code}
    both = decoder.decode(f"[)>{RS}05{GS}00{code}{RS}06{GS}2JUN123{GS}KPO-9{RS}{EOT}").to_dict()
    assert both["kind"] == "iso15434" and both["valid"]
    assert both["keys"] == {"sscc": code, "license_plate": "UN123", "order_number": "PO-9"}
    assert both["iso15434"]["formats"][0] == {"format": "05", "gs1": {"00": code}}
    bad = decoder.decode(f"[)>{RS}05{GS}00{code[:-1]}0{RS}06{GS}KPO-9{RS}{EOT}")
    assert not bad.valid and "(00)" in (bad.error or "")


def test_other_formats_are_kept_as_fields(decoder: Decoder) -> None:
    d = decoder.decode(f"[)>{RS}12{GS}ABC{GS}DEF{RS}{EOT}").to_dict()
    assert d["kind"] == "iso15434" and d["valid"]
    assert d["iso15434"]["formats"] == [{"format": "12", "fields": ["ABC", "DEF"]}]


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (f"[)>01{GS}96123{RS}{EOT}", "position 3"),  # no RS after [)>
        (f"[)>{RS}06{GS}1JABC{GS}KPO{EOT}", "position 4"),  # format not ended by RS
        (f"[)>{RS}06{GS}1JABC{GS}*NODI{RS}{EOT}", "position 13"),  # a DI field without a DI
        (f"[)>{RS}{EOT}", "position"),  # no format at all
        (f"[)>{RS}06{GS}KPO{RS}{EOT}XYZ", "position 12"),  # text after the EOT
    ],
)
def test_malformed_envelopes_name_the_position(decoder: Decoder, payload: str, where: str) -> None:
    d = decoder.decode(payload)
    assert d.kind == "iso15434" and not d.valid and d.keys == {}
    assert where in (d.error or ""), d.error


def test_envelope_parser_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    messages = [UPS_B2, FEDEX, MH10_ZXING]
    wire = ("noise" + "".join(messages)).encode()
    whole = Reader()
    whole.receive_data(wire)
    got_whole = [whole.next_envelope() for _ in messages]
    assert whole.next_envelope() is None
    bytewise = Reader()
    got_bytes = []
    for b in wire:
        bytewise.receive_data(bytes([b]))
        e = bytewise.next_envelope()
        if e is not None:
            got_bytes.append(e)
    expected = [parse_envelope(m)[0] for m in messages]
    assert [e.detail() for e in got_whole if e] == [e.detail() for e in expected]
    assert [e.detail() for e in got_bytes] == [e.detail() for e in expected]
    assert [e.keys for e in got_bytes] == [e.keys for e in expected]
    # trailing bytes: one message then the start of the next; the rest stays for later
    trailing = Reader()
    trailing.receive_data((MH10_ZXING + UPS_B2[:20]).encode())
    first = trailing.next_envelope()
    assert first is not None and first.detail() == expected[2].detail()
    assert trailing.next_envelope() is None
    trailing.receive_data(UPS_B2[20:].encode())
    second = trailing.next_envelope()
    assert second is not None and second.keys == {"tracking_number": "1Z06X6100100004951"}
    envelope, end = parse_envelope(MH10_ZXING + "tail")
    assert end == len(MH10_ZXING) and envelope.valid


# GS1 Digital Link


def test_digital_link_from_the_issue(decoder: Decoder) -> None:
    d = decoder.decode("https://id.gs1.org/01/09506000134352/10/ABC?17=201225").to_dict()
    assert d["kind"] == "gs1" and d["valid"] is True
    assert d["gs1"] == {"01": "09506000134352", "10": "ABC", "17": "201225"}
    assert d["keys"] == {"gtin": "09506000134352"}


@pytest.mark.parametrize(
    ("uri", "ais"),
    [
        ("https://example.com/01/9506000134352", {"01": "09506000134352"}),  # GTIN-13 zero-filled
        (
            "http://example.com/shop/products/01/09506000134352/21/12%2F345",
            {"01": "09506000134352", "21": "12/345"},
        ),
        (
            "https://id.gs1.org/00/106141412345678908?02=00614141123452&37=25&10=ABC123",
            {"00": "106141412345678908", "02": "00614141123452", "37": "25", "10": "ABC123"},
        ),
        ("https://id.gs1.org/414/9520123456788/254/32a%2Fb", {"414": "9520123456788", "254": "32a/b"}),
        (
            "https://id.gs1.org/01/09506000134352?3103=000195&utm_source=x#frag",
            {"01": "09506000134352", "3103": "000195"},
        ),
    ],
)
def test_digital_link_elements(decoder: Decoder, uri: str, ais: dict[str, str] | None) -> None:
    d = decoder.decode(uri)
    assert d.kind == "gs1"
    if ais is None:
        assert not d.valid and d.error
    else:
        assert d.valid, d.error
        assert d.detail == ais


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("https://id.gs1.org/01/09506000134353", "(01)"),  # check digit
        ("https://id.gs1.org/00/106141412345678909", "(00)"),
        ("https://id.gs1.org/01/09506000134352?17=201332", "(17)"),  # month 13
        ("https://id.gs1.org/01/09506000134352?17=230229", "(17)"),  # 2023 is no leap year
        ("https://id.gs1.org/01/09506000134352/21/X/10/Y", "(10)"),  # qualifiers out of order
        ("https://id.gs1.org/01/09506000134352/10", "value"),
        ("https://id.gs1.org/01/ABC", "(01)"),
    ],
)
def test_bad_digital_links_name_the_ai(decoder: Decoder, uri: str, needle: str) -> None:
    d = decoder.decode(uri)
    assert d.kind == "gs1" and not d.valid and needle in (d.error or ""), d


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com/foo",
        "https://example.com/",
        "ftp://id.gs1.org/01/09506000134352",
        "http://x",
        "https://id.gs1.org/01/614141123452/lot/ABC1",  # short names are not AIs: no GS1 path ends it
    ],
)
def test_urls_that_are_not_digital_links_stay_unknown(decoder: Decoder, uri: str) -> None:
    assert decoder.decode(uri).kind == "unknown"


@pytest.mark.parametrize("symbology", ["]Q1", "]d1", "]d2", "]Q3"])
def test_digital_link_under_any_symbology(decoder: Decoder, symbology: str) -> None:
    d = decoder.decode(symbology + "https://id.gs1.org/01/09506000134352/10/ABC?17=201225")
    assert d.kind == "gs1" and d.valid and d.symbology == symbology
    assert d.keys == {"gtin": "09506000134352"}


def test_digital_link_samples_made_independently(decoder: Decoder) -> None:
    for i in range(50):
        d = decoder.decode(digital_link(i))
        assert d.kind == "gs1" and d.valid and d.keys == {"gtin": gtin14(i)}


# Strict human-readable GS1


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ("(01)12345678901231(0A)12345678901231(20)12", "(0A) at position 18"),
        ("(01)12345678901231()12", "empty parentheses at position 18"),
        ("(01)12345678901231(9999)12", "(9999) at position 18"),
        ("(01)12345678901231X(10)AB", "text outside an element at position 18"),
        ("(01)12345678901231(10)", "(10) at position 18 has no value"),
        ("(01)12345678901231(10", "position 18"),
        ("(01)1234567890123", "(01)"),  # too short for a GTIN
        ("(17)201301(01)12345678901231", "(17)"),
    ],
)
def test_human_readable_gs1_drops_nothing_and_names_the_position(
    decoder: Decoder, payload: str, needle: str
) -> None:
    d = decoder.decode(payload)
    assert d.kind == "gs1" and not d.valid and needle in (d.error or ""), d.error


def test_human_readable_gs1_valid(decoder: Decoder) -> None:
    d = decoder.decode("(01)12345678901231(10)AB-12(17)261231(21)S1")
    assert d.valid and d.detail == {"01": "12345678901231", "10": "AB-12", "17": "261231", "21": "S1"}


def test_element_string_too_long_variable_field_names_the_missing_gs(decoder: Decoder) -> None:
    d = decoder.decode("]C1" + "10" + "A" * 25)
    assert not d.valid and "(10)" in (d.error or "") and "GS" in (d.error or "")


def test_decode_json_as_a_new_user_would_run_it() -> None:
    maxicode, number = ups_maxicode(4951)
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "decode", "--json", maxicode,
         "https://id.gs1.org/01/09506000134352/10/ABC?17=201225", "0081 827 0998 0000 0200 45 327 276 N"],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["kind"] for r in rows] == ["iso15434", "gs1", "tracking"]
    assert rows[0]["keys"] == {"tracking_number": number}
    assert rows[0]["iso15434"]["formats"][0]["carrier"]["tracking_number"] == number
    assert rows[1]["gs1"] == {"01": "09506000134352", "10": "ABC", "17": "201225"}
    assert rows[2]["tracking"] == {
        "courier": "dpd",
        "number": "0081827099800000200453272 76N".replace(" ", ""),
        "service": "DPD (28)",
    }


def test_our_gs1_tables_are_biips_and_the_agent_does_not_import_biip() -> None:
    """The decoder reads biip's AI table file and carries biip's Digital Link primary keys, without
    importing biip (whose import loads 5.5 MB of company prefixes): both must stay biip's."""
    from biip.gs1_application_identifiers import _GS1_APPLICATION_IDENTIFIERS
    from biip.gs1_digital_link_uris import _PRIMARY_IDENTIFIER_MAP

    from edge_agent.decode import gs1
    from edge_agent.decode.digital_link import PRIMARY_KEYS

    assert {k: (pi.zfill_to_width, tuple(q.ai.ai for q in pi.qualifiers))
                            for k, pi in _PRIMARY_IDENTIFIER_MAP.items()} == PRIMARY_KEYS  # fmt: skip
    table = gs1.ai_table()
    assert set(table) == set(_GS1_APPLICATION_IDENTIFIERS)
    assert all(table[k].format == ai.format for k, ai in _GS1_APPLICATION_IDENTIFIERS.items())
    probe = ("import sys; from edge_agent.decode import Decoder; d = Decoder();"
             "[d.decode(p) for p in ('https://id.gs1.org/01/09506000134352/10/ABC?17=201225',"
             " ']C10012345678901234560', 'RR123456785SE')]; print('biip' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
