"""The clock verdict: pure rules, the kernel's answer on this machine, and the field on events."""

from __future__ import annotations

from edge_agent.clock import (
    EARLIEST_PLAUSIBLE,
    STA_UNSYNC,
    TIME_ERROR,
    ClockWatch,
    kernel_clock_synced,
    synced_from,
)


def test_rules() -> None:
    now = EARLIEST_PLAUSIBLE + 1000
    assert synced_from(0, 0, now) is True
    assert synced_from(0, STA_UNSYNC, now) is False
    assert synced_from(TIME_ERROR, 0, now) is False
    assert synced_from(0, 0, EARLIEST_PLAUSIBLE - 86400 * 365) is False  # a Pi booting in 1970 or last year


def test_kernel_answer_is_a_verdict_and_cached(mocker) -> None:  # type: ignore[no-untyped-def]
    verdict = kernel_clock_synced()  # the real adjtimex of this machine
    assert isinstance(verdict, bool)
    assert kernel_clock_synced(now=0.0) is False
    asked = mocker.patch("edge_agent.clock.kernel_clock_synced", return_value=False)
    watch = ClockWatch(every_s=60)
    for _ in range(1000):
        assert watch.synced is False
    assert asked.call_count == 1  # stamping scans does not ask the kernel each time
