"""Every row of labels.md, checked against payloads made independently (simulators.samples)."""

from __future__ import annotations

import json
import string
import subprocess
import sys

import pytest

from edge_agent.decode import Decoder, Rule
from simulators.samples import GS, gs1_128_sscc, ret1_label, s10, sscc
from tests.conftest import KEY


def test_contract_example_gs1_128(decoder: Decoder) -> None:
    d = decoder.decode("]C100376104250021234569\x1d42000180").to_dict()
    assert d == {
        "raw": "]C100376104250021234569\u001d42000180",
        "symbology": "]C1",
        "kind": "gs1",
        "valid": True,
        "error": None,
        "keys": {"sscc": "376104250021234569"},
        "gs1": {"00": "376104250021234569", "420": "00180"},
    }
    assert list(d["gs1"]) == ["00", "420"]


@pytest.mark.parametrize("payload", ["  CMD:MODE:INSPECT\r\n", "\nCMD:MODE:INSPECT ", "CMD:MODE:INSPECT\r"])
def test_trims_cr_lf_and_spaces_only(decoder: Decoder, payload: str) -> None:
    d = decoder.decode(payload)
    assert d.raw == "CMD:MODE:INSPECT"
    assert d.kind == "command"


def test_gs_is_never_stripped(decoder: Decoder) -> None:
    d = decoder.decode("]C1" + "00" + sscc(5) + GS)
    assert d.raw.endswith(GS)


@pytest.mark.parametrize("mode", ["RECEIVE", "INSPECT", "RESTOCK", "REJECT"])
def test_mode_commands(decoder: Decoder, mode: str) -> None:
    d = decoder.decode(f"CMD:MODE:{mode}").to_dict()
    assert d["kind"] == "command" and d["valid"] is True and d["error"] is None
    assert d["command"] == {"name": "mode", "value": mode}
    assert d["keys"] == {}


@pytest.mark.parametrize("payload", ["CMD:MODE:SLEEP", "CMD:SELFDESTRUCT", "CMD:"])
def test_bad_commands_are_invalid_commands(decoder: Decoder, payload: str) -> None:
    d = decoder.decode(payload)
    assert d.kind == "command" and not d.valid
    assert d.error


def test_ret1_valid_signature(decoder: Decoder) -> None:
    label = ret1_label("R100234", "SO-88121")
    d = decoder.decode(label).to_dict()
    assert d["kind"] == "return_label" and d["valid"] is True
    assert d["return_label"] == {
        "kid": "K1",
        "return_id": "R100234",
        "order_number": "SO-88121",
        "signature": "valid",
    }
    assert d["keys"] == {"return_id": "R100234", "order_number": "SO-88121"}


def test_ret1_lower_case_is_upper_cased_before_checking(decoder: Decoder) -> None:
    label = ret1_label("R7", "SO-7")
    d = decoder.decode(label.lower())
    assert d.valid and d.detail["signature"] == "valid"
    assert d.raw == label.lower()  # raw is as read


def test_ret1_in_a_qr_symbology(decoder: Decoder) -> None:
    d = decoder.decode("]Q1" + ret1_label("R1", "O1"))
    assert d.symbology == "]Q1" and d.kind == "return_label" and d.valid


@pytest.mark.parametrize("field", ["return_id", "order_number", "sig", "kid"])
def test_ret1_forgery_is_invalid(decoder: Decoder, field: str) -> None:
    label = ret1_label("R100234", "SO-88121")
    prefix, kid, rid, order, sig = label.split(":")
    if field == "return_id":
        rid = "R100235"
    elif field == "order_number":
        order = "SO-88122"
    elif field == "kid":
        kid = "K2"
        decoder = Decoder({"K1": KEY, "K2": bytes(16)})
    else:
        sig = ("B" if sig[0] == "A" else "A") + sig[1:]
    d = decoder.decode(":".join([prefix, kid, rid, order, sig]))
    assert d.kind == "return_label" and d.valid is False
    assert d.detail["signature"] == "invalid"
    assert "signature" in (d.error or "")


def test_ret1_unknown_key_is_unverified_but_valid(decoder: Decoder) -> None:
    label = ret1_label("R1", "SO-1", kid="K9", key=bytes(16))
    d = decoder.decode(label)
    assert d.valid is True and d.detail["signature"] == "unverified"


@pytest.mark.parametrize(
    "payload",
    [
        "RET1:K1:R1:SO-1",  # missing field
        "RET1:K1:R1:SO-1:SHORT",
        "RET1:TOOLONGKID:R1:SO-1:AAAAAAAAAAAAAAAA",
        "RET1:K1:R_1:SO-1:AAAAAAAAAAAAAAAA",
        "RET1:K1:R1:SO-1:AAAAAAAAAAAAAAA1",  # 1 is not base32
        "RET1:K1:" + "R" * 21 + ":SO-1:AAAAAAAAAAAAAAAA",
    ],
)
def test_ret1_syntax_errors(decoder: Decoder, payload: str) -> None:
    d = decoder.decode(payload)
    assert d.kind == "return_label" and not d.valid and d.error


@pytest.mark.parametrize("symbology", ["]C1", "]d2", "]Q3", "]e0"])
def test_gs1_symbologies(decoder: Decoder, symbology: str) -> None:
    code = sscc(42)
    d = decoder.decode(f"{symbology}00{code}{GS}10LOT-7")
    assert d.kind == "gs1" and d.valid and d.symbology == symbology
    assert d.detail == {"00": code, "10": "LOT-7"}
    assert d.keys == {"sscc": code}


def test_gs1_human_readable_form(decoder: Decoder) -> None:
    d = decoder.decode("(00)376104250021234569(420)00180")
    assert d.kind == "gs1" and d.valid and d.symbology is None
    assert d.detail == {"00": "376104250021234569", "420": "00180"}


def test_gs1_leading_gs(decoder: Decoder) -> None:
    d = decoder.decode(GS + "0109501101530003" + "17140704" + "10AB-123")
    assert d.kind == "gs1" and d.valid
    assert d.detail == {"01": "09501101530003", "17": "140704", "10": "AB-123"}
    assert d.keys == {"gtin": "09501101530003"}


def test_gs1_consignment_number_is_tracking_key(decoder: Decoder) -> None:
    d = decoder.decode(f"]C100{sscc(9)}401CONS-123{GS}42000180")
    assert d.keys == {"sscc": sscc(9), "tracking_number": "CONS-123"}


def test_gs1_implicit_when_it_parses_whole_with_check_digits(decoder: Decoder) -> None:
    d = decoder.decode("00" + sscc(77))
    assert d.kind == "gs1" and d.valid


def test_gs1_bad_sscc_check_digit_names_the_ai(decoder: Decoder) -> None:
    code = sscc(77)
    bad = code[:-1] + str((int(code[-1]) + 1) % 10)
    d = decoder.decode(f"]C100{bad}")
    assert d.kind == "gs1" and d.valid is False
    assert "(00)" in (d.error or "")
    assert d.keys == {}


def test_gs1_bad_gtin_check_digit(decoder: Decoder) -> None:
    d = decoder.decode("]C10109501101530004")
    assert d.kind == "gs1" and not d.valid and "(01)" in (d.error or "")


def test_gs1_bad_date_names_the_ai(decoder: Decoder) -> None:
    d = decoder.decode("]C10109501101530003171402301")
    assert d.kind == "gs1" and not d.valid and "(17)" in (d.error or "")


def test_gs1_unknown_ai(decoder: Decoder) -> None:
    d = decoder.decode("]C1" + "2Z1234")
    assert d.kind == "gs1" and not d.valid and d.error


def test_gs1_missing_gs_makes_a_fixed_field_wrong(decoder: Decoder) -> None:
    # Without GS after the lot (10), the parser swallows the expiry date into the lot and then
    # finds nothing valid; the payload is invalid and the error names an AI.
    d = decoder.decode("]C1" + "10ABC1234567890123456789" + "0109501101530003")
    assert d.kind == "gs1" and not d.valid and "AI" in (d.error or "")


def test_s10_valid_and_bad_check_digit(decoder: Decoder) -> None:
    good = s10(12345678)
    d = decoder.decode(good).to_dict()
    assert d["kind"] == "tracking" and d["valid"] is True
    assert d["tracking"]["courier"] == "s10" and d["tracking"]["number"] == good
    assert d["keys"] == {"tracking_number": good}
    bad = good[:10] + str((int(good[10]) + 1) % 10) + good[11:]
    d = decoder.decode(bad).to_dict()
    assert d["kind"] == "tracking" and d["valid"] is False and d["error"]
    assert d["tracking"]["courier"] == "s10"


def test_contract_s10_example(decoder: Decoder) -> None:
    d = decoder.decode("RR123456785SE")
    assert d.kind == "tracking" and d.valid and d.detail["courier"] == "s10"


@pytest.mark.parametrize(
    ("number", "courier"),
    [("1Z5R89390357567127", "ups"), ("986578788855", "fedex"), ("9400111201080805483016", "usps")],
)
def test_other_carriers(decoder: Decoder, number: str, courier: str) -> None:
    d = decoder.decode(number)
    assert d.kind == "tracking" and d.valid and d.detail["courier"] == courier


def test_ups_bad_check_digit_is_invalid_tracking(decoder: Decoder) -> None:
    d = decoder.decode("1Z5R89390357567128")
    assert d.kind == "tracking" and not d.valid


def test_rules_come_after_tracking_and_name_keys() -> None:
    rules = [Rule.build("pallet", r"PLT-(?P<rid>R\d{6})", {"rid": "return_id"})]
    d = Decoder({}, rules).decode("PLT-R123456").to_dict()
    assert d["kind"] == "rule" and d["valid"] is True
    assert d["rule"] == "pallet" and d["keys"] == {"return_id": "R123456"}
    # A rule never shadows an earlier kind.
    catch_all = Decoder({}, [Rule.build("all", r".*", {})])
    assert catch_all.decode("RR123456785SE").kind == "tracking"


def test_unknown_printable_is_valid(decoder: Decoder) -> None:
    d = decoder.decode("]C0SO-88121").to_dict()
    assert d == {
        "raw": "]C0SO-88121",
        "symbology": "]C0",
        "kind": "unknown",
        "valid": True,
        "error": None,
        "keys": {},
    }


@pytest.mark.parametrize("payload", ["", "   ", "\r\n", "]C0"])
def test_empty_is_unknown_and_invalid(decoder: Decoder, payload: str) -> None:
    d = decoder.decode(payload)
    assert d.kind == "unknown" and d.valid is False and d.error


def test_unprintable_unknown_is_invalid(decoder: Decoder) -> None:
    d = decoder.decode("ab\x07cd")
    assert d.kind == "unknown" and not d.valid and "U+0007" in (d.error or "")


def test_bytes_that_are_not_utf8(decoder: Decoder) -> None:
    d = decoder.decode(b"\xff\xfe\x00abc")
    assert d.kind == "unknown" and not d.valid


def test_aim_identifier_detection() -> None:
    from edge_agent.decode.aim import split_symbology

    assert split_symbology("]E05901234123457") == ("]E0", "5901234123457")
    assert split_symbology("]") == (None, "]")
    assert split_symbology("]]x") == (None, "]]x")
    assert split_symbology("ABC") == (None, "ABC")


def test_every_kind_field_is_present_in_json(decoder: Decoder) -> None:
    payloads = {
        "command": "CMD:MODE:REJECT",
        "return_label": ret1_label("R1", "SO-1"),
        "gs1": gs1_128_sscc(3),
        "tracking": s10(3),
        "unknown": "hello",
    }
    for kind, payload in payloads.items():
        d = decoder.decode(payload).to_dict()
        assert d["kind"] == kind
        assert list(d)[:6] == ["raw", "symbology", "kind", "valid", "error", "keys"]
        if kind != "unknown":
            assert kind in d


def test_cli_decode_json_from_stdin_in_input_order() -> None:
    lines = [gs1_128_sscc(1), "RR123456785SE", "", "CMD:MODE:INSPECT", ret1_label("R5", "SO-5")]
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "decode", "--json"],
        input=("\n".join(lines) + "\n").encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["raw"] for r in rows] == lines
    assert [r["kind"] for r in rows] == ["gs1", "tracking", "unknown", "command", "return_label"]
    # without -c no key is configured: the RET1 label is unverified, still valid
    assert rows[4]["return_label"]["signature"] == "unverified"


def test_cli_decode_with_config_keys_and_rules(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "device: {id: d1, site: s1}\nmqtt: {host: 127.0.0.1}\nstorage: {path: /tmp/x}\n"
        f"labels: {{keys: {{K1: '{KEY.hex()}'}}}}\n"
        "rules: [{name: pallet, pattern: 'PLT-(?P<r>R[0-9]+)', keys: {r: return_id}}]\n"
    )
    forged = ret1_label("R1", "SO-1")[:-1] + "A"
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "decode", "--json", "-c", str(config),
         ret1_label("R1", "SO-1"), "PLT-R77", forged],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["return_label"]["signature"] == "valid"
    assert rows[1]["kind"] == "rule" and rows[1]["keys"] == {"return_id": "R77"}
    if not forged.endswith(ret1_label("R1", "SO-1")[-1]):
        assert rows[2]["valid"] is False


def test_human_output_is_one_line_per_payload() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "decode", "RR123456785SE", "x" + string.ascii_letters],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("tracking") and "tracking_number=RR123456785SE" in lines[0]


def test_implicit_gs1_with_the_checked_ai_later(decoder: Decoder) -> None:
    code = sscc(5)
    d = decoder.decode(f"42000180{GS}00{code}")
    assert d.kind == "gs1" and d.valid and d.keys == {"sscc": code}


def test_carrier_numbers_that_parse_as_ais_stay_tracking(decoder: Decoder) -> None:
    for number in ("420221539101026837331000039521", "9400111201080805483016", "92748931507708513018050063"):
        assert decoder.decode(number).kind == "tracking", number
