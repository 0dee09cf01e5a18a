"""Decode throughput on one core and time per payload, next to biip's bare parse of the same
payloads in the same run.

    python bench/decode.py [--n 50000]

The payload mix is what a dock sees: signed RET1 labels, GS1-128 SSCCs with GS, S10 and UPS
numbers, station commands, plain order numbers, and some bad reads.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable

import biip

from edge_agent.decode import Decoder
from simulators.samples import DEMO_KEY, gs1_128_sscc, ret1_label, s10

TARGET_PER_S = 50_000


def payload_mix(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    makers: list[Callable[[int], str]] = [
        lambda i: ret1_label(f"R{i:06d}", f"SO-{i}"),
        lambda i: ret1_label(f"R{i:06d}", f"SO-{i}")[:-1] + "A",  # forged (or lucky)
        gs1_128_sscc,
        lambda i: f"(00){gs1_128_sscc(i)[5:23]}",
        s10,
        lambda i: "1Z5R89390357567127",
        lambda i: "CMD:MODE:INSPECT",
        lambda i: f"]C0ORDER-{i}",
        lambda i: f"RR{i:08d}0SE",
    ]
    return [rng.choice(makers)(i) for i in range(n)]


def measure(fn: Callable[[str], object], payloads: list[str]) -> tuple[float, float, float]:
    for p in payloads[:1000]:
        fn(p)  # warm caches (regex compilation, data set loading)
    start = time.perf_counter()
    for p in payloads:
        fn(p)
    total = time.perf_counter() - start
    samples = []
    for p in payloads[:20000]:
        t0 = time.perf_counter_ns()
        fn(p)
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    p50 = statistics.median(samples) / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    return len(payloads) / total, p50, p99


def biip_bare(payload: str) -> object:
    try:
        return biip.parse(payload)
    except Exception:  # biip raises on what is not a barcode it knows; that is its answer
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    payloads = payload_mix(args.n)
    decoder = Decoder({"K1": DEMO_KEY})
    ours = measure(decoder.decode, payloads)
    base = measure(biip_bare, payloads)
    print(f"payloads: {len(payloads)} (mixed kinds), one core")
    print(f"{'':24}{'payloads/s':>12}{'p50 us':>10}{'p99 us':>10}")
    print(f"{'edge-agent decode':24}{ours[0]:>12,.0f}{ours[1]:>10.1f}{ours[2]:>10.1f}")
    print(f"{'biip.parse (baseline)':24}{base[0]:>12,.0f}{base[1]:>10.1f}{base[2]:>10.1f}")
    print(f"ratio to baseline: {ours[0] / base[0]:.2f}x throughput")
    verdict = "meets" if ours[0] >= TARGET_PER_S else "MISSES"
    print(f"target {TARGET_PER_S:,} payloads/s: {verdict}")


if __name__ == "__main__":
    main()
