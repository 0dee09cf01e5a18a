"""Power cuts at random moments, many of them: the agent's storage on LazyFS (tests/powercut.py),
scans typed, print jobs arriving and desired configurations pushed while the power goes (SIGSTOP,
drop every unsynced byte, SIGKILL), then a restart and the checks of tests/powercycle.py after
every cut; at the end, everything drained and every event replayed and compared byte for byte.

Reports what was acknowledged, what was lost (must be 0), and what each cut fell into: `scan`,
`job`, `config` count the cuts that came within 50 ms of a scan typed, a job the broker took, a
configuration pushed.

    python bench/powercut.py [--cycles 500] [--seed 1]     (LazyFS built by tests/lazyfs/build.sh)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.broker import Broker  # noqa: E402
from tests.harness import SimPrinter  # noqa: E402
from tests.powercycle import run_cycles, summary  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-powercut-") as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        printer = SimPrinter("zpl", folder)
        t0 = time.monotonic()
        try:
            tally = run_cycles(folder, broker, printer, args.cycles, args.seed)
        finally:
            printer.close()
            broker.close()
        report = {**summary(tally), "seconds": round(time.monotonic() - t0, 1)}
    print(json.dumps(report, indent=1))
    sys.exit(0 if not tally.problems else 1)


if __name__ == "__main__":
    main()
