from __future__ import annotations

import asyncio

from edge_agent.supervisor import Supervisor


class Flaky:
    def __init__(self, name: str, failures: int) -> None:
        self.name = name
        self.failures = failures
        self.starts = 0
        self.stops = 0
        self.running = asyncio.Event()

    async def start(self) -> None:
        self.starts += 1

    async def run(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("boom")
        self.running.set()
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stops += 1


class Steady(Flaky):
    def __init__(self) -> None:
        super().__init__("steady", 0)
        self.ticks = 0

    async def run(self) -> None:
        self.running.set()
        while True:
            self.ticks += 1
            await asyncio.sleep(0.01)


def test_failing_component_is_restarted_and_the_rest_keeps_running() -> None:
    async def main() -> None:
        sup = Supervisor(restart_initial_s=0.01, restart_max_s=0.05)
        flaky, steady = Flaky("flaky", 3), Steady()
        sup.add(flaky)
        sup.add(steady)
        await asyncio.wait_for(flaky.running.wait(), 5)
        ticks = steady.ticks
        await asyncio.sleep(0.05)
        assert steady.ticks > ticks and steady.starts == 1
        assert flaky.starts == 4 and sup.restarts["flaky"] == 3
        assert flaky.stops == 3  # stopped after each failure
        await sup.stop_all()
        assert flaky.stops == 4 and steady.stops == 1

    asyncio.run(main())
