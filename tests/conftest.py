from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edge_agent.decode import Decoder

ROOT = Path(__file__).resolve().parent.parent
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


@pytest.fixture
def decoder() -> Decoder:
    return Decoder({"K1": KEY})


def sim_cmd(*args: str) -> list[str]:
    """The simulators run as real processes, as an operator would start them."""
    return [sys.executable, "-m", "simulators", *args]


@pytest.fixture
def broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    from tests.broker import Broker

    b = Broker(tmp_path / "broker").start()
    yield b
    b.close()
