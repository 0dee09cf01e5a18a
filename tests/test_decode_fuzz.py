"""Decoding never raises, whatever the input (labels.md): hypothesis plus 100,000 random inputs."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.decode import KINDS, Decoder
from edge_agent.decode.model import Decoded
from simulators.samples import GS, ret1_label
from tests.conftest import KEY

DECODER = Decoder({"K1": KEY})


def _check(d: Decoded) -> None:
    out = d.to_dict()
    assert out["kind"] in KINDS
    assert isinstance(out["valid"], bool)
    assert out["error"] is None or not out["error"].startswith("internal")
    assert (out["error"] is None) == out["valid"] or out["kind"] == "return_label"
    json.dumps(out)


@settings(max_examples=3000, deadline=None)
@given(st.text())
def test_any_text(payload: str) -> None:
    _check(DECODER.decode(payload))


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes(payload: bytes) -> None:
    _check(DECODER.decode(payload))


PREFIXES = [
    "",
    "]C1",
    "]d2",
    "]Q3",
    "]Q1",
    "]e0",
    "]E0",
    "(",
    GS,
    "CMD:",
    "RET1:",
    "1Z",
    "RR",
    "00",
    "01",
    "(01)",
    "[)>\x1e",
    "[)>\x1e01\x1d96",
    "[)>\x1e06\x1d",
    "[)>\x1e05\x1d",
    "https://id.gs1.org/01/",
    "http://example.com/00/",
    "https://",
]
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcz-:() \x1d\x1e\x04\r\n]\x00é€/?&=%#[)>"


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(PREFIXES), st.text(alphabet=ALPHABET, max_size=60))
def test_structured_garbage(prefix: str, rest: str) -> None:
    _check(DECODER.decode(prefix + rest))


def test_hundred_thousand_random_inputs_never_raise() -> None:
    rng = random.Random(20261126)
    label = ret1_label("R1", "SO-1")
    kinds: dict[str, int] = {}
    for i in range(100_000):
        roll = i % 4
        if roll == 0:
            payload: str | bytes = rng.randbytes(rng.randint(0, 64))
        elif roll == 1:
            payload = rng.choice(PREFIXES) + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        elif roll == 2:  # a real label with one character mutated
            pos = rng.randrange(len(label))
            payload = label[:pos] + rng.choice(ALPHABET) + label[pos + 1 :]
        else:
            payload = "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 30)))
        d = DECODER.decode(payload)
        assert d.error is None or not d.error.startswith("internal"), (payload, d)
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    assert set(kinds) >= {"unknown", "return_label", "gs1", "command", "iso15434"}
