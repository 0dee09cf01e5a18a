"""Our signed return label: `RET1:{kid}:{return_id}:{order_number}:{sig}`.

`sig` is the first 16 characters of base32(HMAC-SHA256(key, "RET1:{kid}:{return_id}:{order_number}")).
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass

PREFIX = "RET1:"
SIG_LEN = 16
_KID = re.compile(r"[0-9A-Z]{1,8}")
_ID = re.compile(r"[0-9A-Z-]{1,20}")
_SIG = re.compile(r"[A-Z2-7]{16}")
_WHOLE = re.compile(r"RET1:([0-9A-Z]{1,8}):([0-9A-Z-]{1,20}):([0-9A-Z-]{1,20}):([A-Z2-7]{16})")
# 16 base32 characters are 80 bits: the first 10 bytes of the digest are all that is encoded.
_SIG_BYTES = SIG_LEN * 5 // 8


@dataclass(frozen=True, slots=True)
class Ret1:
    kid: str
    return_id: str
    order_number: str
    sig: str


def signature(key: bytes, kid: str, return_id: str, order_number: str) -> str:
    message = f"{PREFIX}{kid}:{return_id}:{order_number}".encode("ascii")
    digest = hmac.digest(key, message, "sha256")
    return base64.b32encode(digest[:_SIG_BYTES]).decode("ascii")


def make_label(key: bytes, kid: str, return_id: str, order_number: str) -> str:
    """The payload to print in a return label's QR code."""
    for name, value, pattern in (
        ("kid", kid, _KID),
        ("return_id", return_id, _ID),
        ("order_number", order_number, _ID),
    ):
        if not pattern.fullmatch(value):
            raise ValueError(f"{name} {value!r} is not allowed in a RET1 label")
    return f"{PREFIX}{kid}:{return_id}:{order_number}:{signature(key, kid, return_id, order_number)}"


def parse(text: str) -> tuple[Ret1 | None, str | None]:
    """Split an upper-cased RET1 payload; returns `(label, None)` or `(partial_or_None, error)`."""
    whole = _WHOLE.fullmatch(text)
    if whole is not None:
        return Ret1(*whole.groups()), None
    parts = text.split(":")
    if len(parts) != 5:
        return None, f"RET1 label has {len(parts)} fields separated by ':', expected 5"
    _, kid, return_id, order_number, sig = parts
    label = Ret1(kid, return_id, order_number, sig)
    if not _KID.fullmatch(kid):
        return label, f"RET1 key id {kid!r} must be 1-8 characters of 0-9A-Z"
    if not _ID.fullmatch(return_id):
        return label, f"RET1 return_id {return_id!r} must be 1-20 characters of 0-9A-Z and '-'"
    if not _ID.fullmatch(order_number):
        return label, f"RET1 order_number {order_number!r} must be 1-20 characters of 0-9A-Z and '-'"
    if not _SIG.fullmatch(sig):
        return label, "RET1 signature must be 16 base32 characters (A-Z, 2-7)"
    return label, None


def verify(label: Ret1, key: bytes) -> bool:
    expected = signature(key, label.kid, label.return_id, label.order_number)
    return hmac.compare_digest(expected.encode("ascii"), label.sig.encode("ascii"))
