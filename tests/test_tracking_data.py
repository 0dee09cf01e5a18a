"""The evaluator against the vendored data set's own test numbers, every format of every courier,
and against numbers made here from each checksum's published rule (not from the evaluator)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from edge_agent.decode import Decoder
from edge_agent.decode.tracking import CHECKSUMS, formats, match_tracking

DATA = Path(__file__).resolve().parent.parent / "edge_agent/decode/data/tracking_number_data"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared/third_party/tracking_number_data"

CASES = [
    (fmt, number, kind)
    for fmt in formats()
    for kind in ("valid", "invalid")
    for number in fmt.test_numbers.get(kind, [])
]


def test_the_current_courier_set_is_vendored_with_its_licence() -> None:
    couriers = {fmt.courier for fmt in formats()}
    assert len(couriers) == 18
    assert {"dpd", "canada_post", "purolator", "canpar", "lasership", "landmark", "old_dominion"} <= couriers
    assert {"yodel", "yunexpress", "gofo", "speedee", "s10", "ups", "fedex", "dhl", "usps"} <= couriers
    assert "FedEx SmartPost" not in {fmt.name for fmt in formats()}  # gone upstream
    assert (DATA / "LICENSE").read_text().startswith("MIT") or "MIT" in (DATA / "LICENSE").read_text()
    if SHARED.exists():  # the copy is the shared one, unchanged
        for path in (SHARED / "couriers").glob("*.json"):
            assert (DATA / "couriers" / path.name).read_bytes() == path.read_bytes(), path.name
    valid = [c for c in CASES if c[2] == "valid"]
    assert len(valid) == 192


def test_every_checksum_the_data_names_is_implemented() -> None:
    for fmt in formats():
        if fmt.checksum is not None:
            assert fmt.checksum["name"] in CHECKSUMS, fmt.name
            assert fmt.check is CHECKSUMS[fmt.checksum["name"]]


@pytest.mark.parametrize(
    ("fmt", "number", "kind"), CASES, ids=[f"{f.name}:{n.strip()}:{k}" for f, n, k in CASES]
)
def test_format_accepts_its_valid_and_rejects_its_invalid_numbers(fmt, number: str, kind: str) -> None:
    result = fmt.evaluate(number)
    if kind == "valid":
        assert result is not None and result.valid, result
    else:
        assert result is None or not result.valid


@pytest.mark.parametrize(
    ("fmt", "number"),
    [(f, n) for f, n, k in CASES if k == "valid"],
    ids=[f"{f.name}:{n.strip()}" for f, n, k in CASES if k == "valid"],
)
def test_a_valid_number_decodes_as_its_own_courier(fmt, number: str) -> None:
    d = Decoder().decode(number)
    assert d.kind == "tracking" and d.valid, d
    assert d.detail["courier"] == fmt.courier, d.detail
    assert " " not in d.keys["tracking_number"]
    assert d.keys["tracking_number"] == d.detail["number"]


def test_spaces_as_printed_are_ignored() -> None:
    d = Decoder().decode("1Z 999 AA1 01 2345 6784")
    assert d.kind == "tracking" and d.valid
    assert d.detail["courier"] == "ups" and d.keys == {"tracking_number": "1Z999AA10123456784"}
    assert Decoder().decode("RB 1234 5678 5 GB").keys == {"tracking_number": "RB123456785GB"}


def test_an_sscc_with_a_wrong_check_digit_is_no_fedex_number() -> None:
    d = Decoder().decode("00373325380123456789")
    assert not (d.kind == "tracking" and d.valid), d


def test_s10_check_digit_rule_special_cases() -> None:
    from simulators.samples import s10

    # remainder 0 gives check digit 5, remainder 1 gives 0: find serials for both
    seen = set()
    for serial in range(0, 3000):
        number = s10(serial)
        seen.add(number[10])
        m = match_tracking(number)
        assert m is not None and m.valid and m.courier == "s10", number
    assert {"0", "5"} <= seen


def test_s10_with_a_wrong_check_digit_is_an_invalid_tracking_number() -> None:
    d = Decoder().decode("RX123456784SE")  # DHL e-commerce's pattern would take it, unchecked
    assert d.kind == "tracking" and not d.valid and d.detail["courier"] == "s10"
    assert "check digit" in (d.error or "")


# Numbers made from each checksum's published rule (CHECKSUM_ALGORITHMS.md, DPD's label spec,
# Luhn), independently of the evaluator, then decoded.


def _mod10(body: str, evens: int, odds: int) -> str:
    total = 0
    for i, c in enumerate(body):
        x = int(c) if c.isdigit() else (ord(c) - 3) % 10
        total += x * (odds if i % 2 else evens)
    return str((10 - total % 10) % 10)


def _luhn(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        x = int(c) * (2 if i % 2 == 0 else 1)
        total += x - 9 if x > 9 else x
    return str((10 - total % 10) % 10)


def _mod_37_36(body: str) -> str:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    cd = 36
    for c in body:
        cd += alphabet.index(c)
        if cd > 36:
            cd -= 36
        cd *= 2
        if cd > 36:
            cd -= 37
    cd = 37 - cd
    return alphabet[0 if cd == 36 else cd]


def _fedex12(body: str) -> str:
    weights = [3, 1, 7] * 4
    return str(sum(int(c) * w for c, w in zip(body, weights, strict=False)) % 11 % 10)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _generated(rng: random.Random) -> list[tuple[str, str, str]]:
    """(courier, printed number, number as the key) for one number of each format family."""
    ups = "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(6)) + _digits(rng, 9)
    dpd = _digits(rng, 14)
    cp = _digits(rng, 15)
    od = "072" + _digits(rng, 7)
    ontrac = rng.choice("12356789") + _digits(rng, 12)  # the data set prepends 4 to any other
    fedex = "7" + _digits(rng, 10)
    out = [
        ("ups", f"1Z{ups}{_mod10(ups, 1, 2)}", f"1Z{ups}{_mod10(ups, 1, 2)}"),
        ("dpd", f"{dpd}{_mod_37_36(dpd)}", f"{dpd}{_mod_37_36(dpd)}"),
        ("canada_post", f"{cp}{_mod10(cp, 3, 1)}", f"{cp}{_mod10(cp, 3, 1)}"),
        ("old_dominion", f"{od}{_luhn(od)}", f"{od}{_luhn(od)}"),
        ("ontrac", f"C{ontrac}{_mod10('4' + ontrac, 1, 2)}", f"C{ontrac}{_mod10('4' + ontrac, 1, 2)}"),
        ("fedex", f"{fedex}{_fedex12(fedex)}", f"{fedex}{_fedex12(fedex)}"),
    ]
    spaced = out[0][1]
    out.append(("ups", " ".join(spaced[i : i + 4] for i in range(0, len(spaced), 4)), spaced))
    return out


def test_numbers_made_from_each_checksum_decode_to_their_courier() -> None:
    """Some shapes are shared (15 digits: DPD and FedEx Ground; 12: FedEx and Purolator), and a
    number that passes both couriers' checks can only be given to one: those are counted."""
    rng = random.Random(10)
    decoder = Decoder()
    shared = 0
    for _ in range(300):
        for courier, printed, key in _generated(rng):
            d = decoder.decode(printed)
            assert d.kind == "tracking" and d.valid, (courier, printed, d)
            assert d.keys == {"tracking_number": key}
            if d.detail["courier"] != courier:
                others = {f.courier for f in formats() if (r := f.evaluate(key)) is not None and r.valid}
                assert courier in others and d.detail["courier"] in others, (printed, d.detail)
                shared += 1
            broken = key[:-1] + ("0" if key[-1] != "0" else "1")
            b = decoder.decode(broken)
            assert not (b.kind == "tracking" and b.valid and b.detail["courier"] == courier), (broken, b)
    assert shared < 300 * 7 * 0.05


# Package barcodes that wrap a tracking number (labels.md kind 5)


@pytest.mark.parametrize(
    ("barcode", "courier", "inner"),
    [
        ("420787459400111206206406260787", "usps", "9400111206206406260787"),  # 420 + ZIP5 + IMpb
        ("420221539101026837331000039521", "usps", "9101026837331000039521"),
        ("4201002334249200190132607600833457", "usps", "9200190132607600833457"),  # 420 + ZIP9
        ("9622001900000000000000776632517510", "fedex", "776632517510"),  # FedEx 34, 96
        ("9611020987654312345672", "fedex", "987654312345672"),  # FedEx Ground 22, 96
        ("32971514560102447849175802862014", "fedex", "784917580286"),  # ASTRA 32, positions 17-28
    ],
)
def test_package_barcodes_decode_to_the_inner_number(barcode: str, courier: str, inner: str) -> None:
    d = Decoder().decode(barcode).to_dict()
    assert d["kind"] == "tracking" and d["valid"] is True
    assert d["tracking"]["courier"] == courier
    assert d["tracking"]["number"] == inner and d["keys"] == {"tracking_number": inner}
    assert d["tracking"]["barcode"] == barcode
    # the inner number alone decodes to the same courier and number
    alone = Decoder().decode(inner).to_dict()
    assert alone["kind"] == "tracking" and alone["keys"] == {"tracking_number": inner}, alone


def test_package_barcode_with_a_bad_check_digit_is_invalid() -> None:
    d = Decoder().decode("9622001900000000000000776632517511")
    assert not (d.kind == "tracking" and d.valid)


def test_data_files_are_json_with_the_fields_the_evaluator_reads() -> None:
    for path in (DATA / "couriers").glob("*.json"):
        data = json.loads(path.read_text())
        assert data["courier_code"] and data["tracking_numbers"], path.name
