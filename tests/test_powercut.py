"""Power cuts (LazyFS) at random moments while scans are typed, print jobs arrive and desired
configurations are pushed, 50 times: nothing acknowledged is lost, no seq is reused, no job is
printed twice, no file is torn, the manifest is whole and an open receipt counts exactly its
stored item scans after every cut."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Broker
from tests.powercycle import run_cycles, summary


@pytest.mark.slow
def test_fifty_power_cuts_lose_nothing_acknowledged(tmp_path: Path, broker: Broker, printers: Any) -> None:
    tally = run_cycles(tmp_path, broker, printers("zpl"), cycles=50, seed=26)
    report = summary(tally)
    print(json.dumps(report))
    assert tally.problems == [], report
    assert (tally.lost, tally.seq_reused, tally.printed_twice, tally.torn, tally.manifest_lost) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert tally.receipt_torn == 0 and tally.receipts_checked >= 10, report
    assert tally.cycles == 50 and tally.scans_acked > 200 and tally.jobs_acked > 50 and tally.configs > 5
