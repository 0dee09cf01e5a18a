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


@pytest.fixture
def central(broker):  # type: ignore[no-untyped-def]
    """The simulated central system on the test's broker, site hel1."""
    from simulators.central import Central

    c = Central("127.0.0.1", broker.port, "hel1")
    yield c
    c.close()


@pytest.fixture
def agents(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start agent processes: `agents(config)` (log beside the config); all are killed at the end."""
    from tests.agentproc import AgentProcess

    started: list[AgentProcess] = []

    def start(config: Path, log: Path | None = None) -> AgentProcess:
        agent = AgentProcess(config, log or config.parent / "agent.log").start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.kill()


@pytest.fixture
def printers(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start printer simulators: `printers("zpl", extra=(...))`; all are stopped at the end."""
    from tests.harness import SimPrinter

    made: list[SimPrinter] = []

    def make(lang: str, extra: tuple[str, ...] = ()) -> SimPrinter:
        sim = SimPrinter(lang, tmp_path, extra)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


@pytest.fixture
def launches(tmp_path: Path):  # type: ignore[no-untyped-def]
    """`edge-agent launch` processes (tests.release_kit.Launch), stopped at the test's end."""
    from tests.release_kit import Launch

    started: list[Launch] = []

    def start(config: Path) -> Launch:
        launch = Launch(config, config.parent / "launch.log").start()
        started.append(launch)
        return launch

    yield start
    for launch in started:
        launch.kill()
