"""Barcode payloads of every kind in labels.md, made from the contract alone (not from the
agent's code), so that tests and the demo check the agent against an independent writer."""

from __future__ import annotations

import base64
import hashlib
import hmac

GS = "\x1d"
DEMO_KEY_ID = "K1"
DEMO_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def ret1_label(return_id: str, order_number: str, kid: str = DEMO_KEY_ID, key: bytes = DEMO_KEY) -> str:
    body = f"RET1:{kid}:{return_id}:{order_number}"
    sig = base64.b32encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).decode()[:16]
    return f"{body}:{sig}"


def gs1_check_digit(digits: str) -> str:
    """GS1 mod-10: weights 3,1,3,... from the right of the digits without the check digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def sscc(serial: int, company: str = "7610425") -> str:
    body = f"3{company}{serial:0{16 - len(company)}d}"[:17]
    return body + gs1_check_digit(body)


def s10(serial: int, service: str = "RR", country: str = "SE") -> str:
    digits = f"{serial:08d}"
    total = sum(int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    check = 0 if check == 10 else 5 if check == 11 else check
    return f"{service}{digits}{check}{country}"


def gs1_128_sscc(serial: int, postal: str = "00180") -> str:
    return f"]C100{sscc(serial)}{GS}420{postal}"


RS, EOT = "\x1e", "\x04"


def gtin14(serial: int, company: str = "950600013") -> str:
    body = f"0{company}{serial:0{12 - len(company)}d}"[:13]
    return body + gs1_check_digit(body)


def ean13(serial: int, company: str = "640123") -> str:
    """An EAN-13 product number (a Finnish company prefix by default)."""
    body = f"{company}{serial:0{12 - len(company)}d}"[:12]
    return body + gs1_check_digit(body)


def upce(serial: int) -> str:
    """An 8-digit UPC-E with number system 0 and a last digit of 5-9 (the product's last digit):
    its UPC-A is the first five digits, four zeros and that digit, whose check digit it carries."""
    five = f"{serial % 100000:05d}"
    last = str(5 + serial % 5)
    upca_body = "0" + five + "0000" + last
    return "0" + five + last + gs1_check_digit(upca_body)


def upce_as_upca(code: str) -> str:
    """The 12-digit UPC-A that a `upce()` number stands for."""
    return "0" + code[1:6] + "0000" + code[6] + code[7]


def digital_link(serial: int, host: str = "id.gs1.org") -> str:
    """A GS1 Digital Link URI: GTIN and lot in the path, an expiry date in the query."""
    return f"https://{host}/01/{gtin14(serial)}/10/LOT{serial}?17=271231"


def ups_check_digit(serial: str) -> str:
    """UPS: letters count as (ord - 3) % 10, digits in odd positions (from 1) doubled, mod 10."""
    total = 0
    for i, c in enumerate(serial):
        x = int(c) if c.isdigit() else (ord(c) - 3) % 10
        total += x * 2 if i % 2 == 1 else x
    return str((10 - total % 10) % 10)


def ups_maxicode(package: int, shipper: str = "06X610", service: str = "001") -> tuple[str, str]:
    """(MaxiCode message as UPS prints it, the 1Z number it stands for): the tracking field is the
    short form `1Z` + 7 digits + check digit (reference/iso15434.md)."""
    serial = f"{shipper}{service[-2:]}{package:07d}"
    number = "1Z" + serial + ups_check_digit(serial)
    short = "1Z" + number[10:]
    fields = [
        "96841706672",
        "840",
        service,
        short,
        "UPSN",
        shipper,
        "159",
        "",
        "1/1",
        "10",
        "Y",
        "1 MAIN ST",
        "SPRINGFIELD",
        "IL",
    ]
    return f"[)>{RS}01{GS}" + GS.join(fields) + f"{RS}{EOT}", number


def mh10(serial: int) -> str:
    """An MH10.8.2 (format 06) DataMatrix: license plate, customer order, lot, quantity."""
    fields = [f"1JUN0761042500{serial:06d}", f"KSO-{serial}", f"1TLOT{serial % 97}", "Q1"]
    return f"[)>{RS}06{GS}" + GS.join(fields) + f"{RS}{EOT}"
