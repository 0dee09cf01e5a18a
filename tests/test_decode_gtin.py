"""Product codes (labels.md kind 6 `gtin`), the receipt commands, and GS1 Digital Link judged on
GS1's own syntax-engine vectors (kind 4).

EAN/UPC vectors are GS1's published examples: the EAN-13 4006381333931 and UPC-A 036000291452 of
the GS1 General Specifications' check-digit examples, the GTIN-14 of its ITF-14 example, and the
UPC-E zero-suppression table (section 5.2.2.4.2: each last digit 0-9 of the six)."""

from __future__ import annotations

import pytest

from drivers.scanners.framing import LineFramer
from edge_agent.decode import Decoder
from edge_agent.decode.gtin import check_digit, expand_upce
from simulators.samples import gs1_check_digit


@pytest.fixture
def decoder() -> Decoder:
    return Decoder()


@pytest.mark.parametrize(
    ("payload", "fmt", "gtin14"),
    [
        ("]E04006381333931", "ean13", "04006381333931"),
        ("4006381333931", "ean13", "04006381333931"),
        ("]E00036000291452", "upca", "00036000291452"),  # UPC-A sent as 13 digits under ]E0
        ("036000291452", "upca", "00036000291452"),
        ("]E496385074", "ean8", "00000096385074"),
        ("96385074", "ean8", "00000096385074"),
        ("]E4963850740", None, None),  # 9 digits under ]E4: not an EAN-8
        ("]I110012345678902", "gtin14", "10012345678902"),  # ITF-14 under ]I1
        ("]E001234565", "upce", "00012345000065"),  # UPC-E, expanded
        ("]E0012345000065", "upca", "00012345000065"),  # the same number sent expanded
    ],
)
def test_product_numbers(decoder: Decoder, payload: str, fmt: str | None, gtin14: str | None) -> None:
    d = decoder.decode(payload)
    assert d.kind == "gtin"
    if fmt is None:
        assert not d.valid and d.error
        return
    assert d.valid, d.error
    assert d.detail == {"format": fmt, "gtin14": gtin14, "addon": None}
    assert d.keys == {"gtin": gtin14}


# GS1 General Specifications, UPC-E: the six digits and the UPC-A number each one stands for.
UPCE_TABLE = [
    ("0123450", "01200000345"),  # last digit 0: manufacturer's third digit 0
    ("0123451", "01210000345"),
    ("0123452", "01220000345"),
    ("0123453", "01230000045"),  # 3: manufacturer's number of three digits
    ("0123454", "01234000005"),  # 4: four digits
    ("0123455", "01234500005"),  # 5-9: the product's last digit
    ("0123456", "01234500006"),
    ("0123457", "01234500007"),
    ("0123458", "01234500008"),
    ("0123459", "01234500009"),
    ("1987654", "19876000005"),  # number system 1
]


@pytest.mark.parametrize(("upce7", "upca11"), UPCE_TABLE)
def test_upce_expands_by_gs1s_rules(decoder: Decoder, upce7: str, upca11: str) -> None:
    check = str(check_digit(upca11))
    assert expand_upce(upce7 + check) == upca11 + check
    d = decoder.decode("]E0" + upce7 + check)
    assert d.valid and d.detail["format"] == "upce" and d.keys == {"gtin": "00" + upca11 + check}
    # the same number, sent expanded (12 or 13 digits), decodes the same
    assert decoder.decode("]E0" + upca11 + check).keys == d.keys
    assert decoder.decode("]E00" + upca11 + check).keys == d.keys


def test_check_digit_is_gs1s_and_agrees_with_an_independent_writer() -> None:
    for body in ("400638133393", "03600029145", "1001234567890", "9638507", "12345678901", "0"):
        assert str(check_digit(body)) == gs1_check_digit(body)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ("]E04006381333932", "EAN-13 4006381333932 has a wrong check digit: 2, should be 1"),
        ("]E0036000291453", "UPC-A"),
        ("]E496385075", "EAN-8 96385075 has a wrong check digit"),
        ("]E001234566", "UPC-E 01234566 has a wrong check digit"),
        ("]I110012345678903", "GTIN-14 10012345678903 has a wrong check digit"),
        ("4006381333932", "wrong check digit"),  # bare, after the tracking kind
        ("]E0ABC123", "digits only; position 0 is 'A'"),
        ("]E040063813339", "not 11"),
    ],
)
def test_wrong_numbers_are_invalid_gtin_naming_what(decoder: Decoder, payload: str, needle: str) -> None:
    d = decoder.decode(payload)
    assert d.kind == "gtin" and not d.valid and needle in (d.error or ""), d.error
    assert d.keys == {}


@pytest.mark.parametrize(
    ("payload", "gtin14", "addon", "fmt"),
    [
        ("]E3" + "4006381333931" + "12", "04006381333931", "12", "ean13"),
        ("]E3" + "4006381333931" + "51234", "04006381333931", "51234", "ean13"),
        ("]E3" + "036000291452" + "07", "00036000291452", "07", "upca"),
        ("]E3" + "01234565" + "12", "00012345000065", "12", "upce"),
        ("]E1" + "12", None, "12", "addon"),
        ("]E2" + "51234", None, "51234", "addon"),
    ],
)
def test_add_ons_are_reported_apart(
    decoder: Decoder, payload: str, gtin14: str | None, addon: str, fmt: str
) -> None:
    d = decoder.decode(payload)
    assert d.kind == "gtin" and d.valid, d.error
    assert d.detail == {"format": fmt, "gtin14": gtin14, "addon": addon}
    assert d.keys == ({"gtin": gtin14} if gtin14 else {})


def test_ean_identifier_wins_over_a_carrier_format(decoder: Decoder) -> None:
    # 12 digits that pass as a FedEx number bare are a UPC-A under ]E0
    assert decoder.decode("123456789012").kind == "tracking"
    d = decoder.decode("]E0" + "0123456789012")
    assert d.kind == "gtin" and d.valid and d.keys == {"gtin": "00123456789012"}


def test_bare_digit_strings_come_after_tracking_and_gs1(decoder: Decoder) -> None:
    assert decoder.decode("0100012345000065").kind == "gs1"  # (01) + GTIN: a GS1 element string
    assert decoder.decode("RR123456785SE").kind == "tracking"
    assert decoder.decode("12345").kind == "unknown"  # not a product number's length
    assert decoder.decode("]C04006381333931").kind == "unknown"  # a Code 128 of digits is no EAN


def test_gtin_json_field(decoder: Decoder) -> None:
    out = decoder.decode("]E04006381333931").to_dict()
    assert out["gtin"] == {"format": "ean13", "gtin14": "04006381333931", "addon": None}
    assert out["keys"] == {"gtin": "04006381333931"}


@pytest.mark.parametrize("payload", ["]E04006381333931", "]E3400638133393112", "]E001234565"])
def test_product_codes_framed_whole_byte_by_byte_and_with_trailing_bytes(
    decoder: Decoder, payload: str
) -> None:
    """A serial scanner's bytes, as the agent frames them, decode the same whichever way they arrive."""
    wire = payload.encode() + b"\r\n"
    whole = [f.data for f in LineFramer().feed(wire)]
    framer = LineFramer()
    single = [f.data for i in range(len(wire)) for f in framer.feed(wire[i : i + 1])]
    framer = LineFramer()
    trailing = [f.data for f in framer.feed(wire + b"]E496385")]
    assert whole == single == trailing[:1] == [payload.encode()]
    assert framer.pending == b"]E496385"
    expected = decoder.decode(payload).to_dict()
    assert expected["kind"] == "gtin" and expected["valid"]
    assert decoder.decode(whole[0]).to_dict() == expected


# Receipt commands


@pytest.mark.parametrize(
    ("payload", "command"),
    [
        ("CMD:DONE", {"name": "done", "value": None}),
        ("CMD:CANCEL", {"name": "cancel", "value": None}),
        ("cmd:qty:2", {"name": "qty", "value": "2"}),
        ("CMD:QTY:999", {"name": "qty", "value": "999"}),
        ("CMD:QTY:007", {"name": "qty", "value": "7"}),
        ("CMD:GRADE:b", {"name": "grade", "value": "B"}),
        ("CMD:GRADE:SCRAP", {"name": "grade", "value": "SCRAP"}),
    ],
)
def test_receipt_commands(decoder: Decoder, payload: str, command: dict[str, str | None]) -> None:
    d = decoder.decode(payload)
    assert d.kind == "command" and d.valid, d.error
    assert d.detail == command


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ("CMD:QTY:0", "'0'"),
        ("CMD:QTY:1000", "'1000'"),
        ("CMD:QTY:two", "'TWO'"),
        ("CMD:QTY", "''"),
        ("CMD:GRADE:Z", "'Z' is not one of A, B, C, SCRAP"),
        ("CMD:GRADE:", "''"),
        ("CMD:DONE:NOW", "takes no value"),
    ],
)
def test_bad_receipt_commands_name_the_value(decoder: Decoder, payload: str, needle: str) -> None:
    d = decoder.decode(payload)
    assert d.kind == "command" and not d.valid and needle in (d.error or ""), d.error


def test_configured_grades_are_the_ones_a_worker_can_scan() -> None:
    decoder = Decoder(grades=("NEW", "USED"))
    assert decoder.decode("CMD:GRADE:used").valid
    bad = decoder.decode("CMD:GRADE:A")
    assert not bad.valid and "NEW, USED" in (bad.error or "")


# GS1 Digital Link, on the vectors of GS1's syntax engine (gs1-syntax-engine, src/c-lib/dl.c,
# test_dl_parseDLuri), less the options it turns on for some (convenience alphas, unknown AIs).

DL_VALID = [
    ("http://a/00/006141411234567890", {"00": "006141411234567890"}),
    ("HTTPS://a/00/006141411234567890", {"00": "006141411234567890"}),
    ("https://a:65535/01/12312312312333", {"01": "12312312312333"}),
    ("https://[2001:db8::1]/01/12312312312333", {"01": "12312312312333"}),
    ("https://a/more/stem/00/006141411234567890", {"00": "006141411234567890"}),
    ("https://a/00/faux/00/006141411234567890", {"00": "006141411234567890"}),  # AI-like stem
    ("https://a/01/12312312312333/22/TEST/10/ABC/21/XYZ", {"01": "12312312312333", "22": "TEST", "10": "ABC", "21": "XYZ"}),
    ("https://a/01/12312312312333/235/TEST", {"01": "12312312312333", "235": "TEST"}),
    ("https://a/253/1231231231232TEST5678901234567", {"253": "1231231231232TEST5678901234567"}),
    ("https://a/8018/123456789012345675/8019/123", {"8018": "123456789012345675", "8019": "123"}),
    ("https://a/stem/00/006141411234567890?", {"00": "006141411234567890"}),
    ("https://a/stem/401/12345678?99=ABC", {"401": "12345678", "99": "ABC"}),
    ("https://a/01/12312312312333?&&&99=ABC&&&&&&98=XYZ&&&", {"01": "12312312312333", "99": "ABC", "98": "XYZ"}),
    ("https://a/01/12312312312333?singleton1&unknown1=555&99=ABC&98=XYZ", {"01": "12312312312333", "99": "ABC", "98": "XYZ"}),
    ("https://a/01/12312312312333/22/ABC%2d123?99=ABC&98=XYZ%2f987", {"01": "12312312312333", "22": "ABC-123", "99": "ABC", "98": "XYZ/987"}),
    ("https://a/01/12312312312333/22/ABC+123?99=ABC", {"01": "12312312312333", "22": "ABC+123", "99": "ABC"}),
    ("https://a/01/12312312312333/22/test/10/abc/21/xyz#fragment", {"01": "12312312312333", "22": "test", "10": "abc", "21": "xyz"}),
    ("https://id.gs1.org/00/952012345678912345?02=09520123456788&37=25&10=ABC123", {"00": "952012345678912345", "02": "09520123456788", "37": "25", "10": "ABC123"}),
    ("https://example.com/8004/9520614141234567?01=9520123456788", {"8004": "9520614141234567", "01": "09520123456788"}),
    ("https://id.gs1.org/01/09520123456788/235/XYZ?10=ABC123", {"01": "09520123456788", "235": "XYZ", "10": "ABC123"}),
]  # fmt: skip

DL_INVALID = [
    "https://a/253/1231231231232TEST56789012345678",  # too long for N13 X0..17
    "https://a/stem/00/006141411234567890/",  # can't end in a slash
    "https://a/01/12312312312333?99=",  # empty AI value in a query parameter
    "https://a/01/12312312312333?99=ABC&999=faux",  # a numeric query parameter that is no AI
    "https://a/01/12312312312333/22/ABC%2d123?99=ABC&98=XYZ+987",  # "+" is a space in the query
    "https://example.com/01/09520123456788?10=ABC123",  # (10) belongs in the path
    "https://id.gs1.org/01/09520123456788/10/ABC123?99=XYZ789&01=09520123456788",  # duplicate AIs
    "https://id.gs1.org/01/09520123456788/10/ABC123?99=XYZ789&10=ABC123",
    "https://id.gs1.org/01/09520123456788/10/ABC123?99=XYZ789&99=XYZ789",
    "https://example.com/01/09520123456788?99=XYZ&89=ABC123",  # unknown AI (89)
    "https://[fe80::1%25lo]/01/12312312312333",  # a zone id: '%' in the host
    "https://a/01/12312312312333/22/A/235/B",  # 235 is an alternative to 22/10/21, not one of them
    "HtTp://a/b/00/006141411234567890",  # mixed-case scheme
    "https://00/006141411234567890",  # no domain
]


@pytest.mark.parametrize(("uri", "ais"), DL_VALID)
def test_digital_link_valid_vectors(decoder: Decoder, uri: str, ais: dict[str, str]) -> None:
    d = decoder.decode(uri)
    assert d.kind == "gs1" and d.valid, d.error
    assert d.detail == ais


@pytest.mark.parametrize("uri", DL_INVALID)
def test_digital_link_invalid_vectors(decoder: Decoder, uri: str) -> None:
    d = decoder.decode(uri)
    assert not (d.kind == "gs1" and d.valid), d.detail
    if d.kind == "gs1":
        assert d.error and d.keys == {}


def test_digital_link_errors_name_what_is_wrong(decoder: Decoder) -> None:
    assert "ends with '/'" in (decoder.decode("https://a/stem/00/006141411234567890/").error or "")
    assert "'999'" in (decoder.decode("https://a/01/12312312312333?999=x").error or "")
    assert "belongs in the path" in (decoder.decode("https://e.com/01/09520123456788?10=A").error or "")


def test_qualifier_chains_are_biips_qualifiers() -> None:
    from edge_agent.decode.digital_link import PRIMARY_KEYS, QUALIFIER_CHAINS

    for key, chains in QUALIFIER_CHAINS.items():
        assert tuple(ai for chain in chains for ai in chain) == PRIMARY_KEYS[key][1]
