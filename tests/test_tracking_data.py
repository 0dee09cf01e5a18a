"""The evaluator against the vendored data set's own test numbers, every format of every courier."""

from __future__ import annotations

import pytest

from edge_agent.decode import Decoder
from edge_agent.decode.tracking import CHECKSUMS, formats, match_tracking

CASES = [
    (fmt, number, kind)
    for fmt in formats()
    for kind in ("valid", "invalid")
    for number in fmt.test_numbers.get(kind, [])
]


def test_every_courier_file_loaded() -> None:
    couriers = {fmt.courier for fmt in formats()}
    assert {"s10", "ups", "fedex", "dhl", "usps"} <= couriers
    assert len(CASES) > 50


def test_every_checksum_the_data_names_is_implemented() -> None:
    for fmt in formats():
        if fmt.checksum is not None:
            assert fmt.checksum["name"] in CHECKSUMS, fmt.name


@pytest.mark.parametrize(
    ("fmt", "number", "kind"), CASES, ids=[f"{f.name}:{n.strip()}:{k}" for f, n, k in CASES]
)
def test_format_accepts_its_valid_and_rejects_its_invalid_numbers(fmt, number: str, kind: str) -> None:
    result = fmt.evaluate(number)
    if kind == "valid":
        assert result is not None and result.valid, result
    else:
        assert result is None or not result.valid


def test_a_valid_number_decodes_as_tracking_of_some_courier() -> None:
    decoder = Decoder()
    for fmt, number, kind in CASES:
        if kind != "valid":
            continue
        match = match_tracking(number)
        assert match is not None and match.valid, (fmt.name, number)
        d = decoder.decode(number)
        # payloads that are also complete GS1 strings with check digits are GS1 first (labels.md order)
        assert d.kind in ("tracking", "gs1"), (number, d)


def test_s10_check_digit_rule_special_cases() -> None:
    from simulators.samples import s10

    # remainder 0 gives check digit 5, remainder 1 gives 0: find serials for both
    seen = set()
    for serial in range(0, 3000):
        number = s10(serial)
        seen.add(number[10])
        m = match_tracking(number)
        assert m is not None and m.valid, number
    assert {"0", "5"} <= seen
