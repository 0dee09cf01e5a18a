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
