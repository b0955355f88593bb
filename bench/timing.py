"""Timing in interleaved rounds, so a noisy machine's drift hits every side alike.

Each round runs every side in turn (A B A B ...) for a fixed time slice. Throughput is taken
per round, and its median and range are reported; latencies are pooled over all rounds.
"""

from __future__ import annotations

import gc
import inspect
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

Call = Callable[[int], Any]
"""One operation; it gets a running index (to pick its key) and may be sync or async."""


@dataclass
class Series:
    """Measurements of one side."""

    throughputs: list[float] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)

    @property
    def ops(self) -> int:
        return len(self.latencies_ns)

    def ops_s(self) -> float:
        return median(self.throughputs)

    def ops_s_range(self) -> tuple[float, float]:
        return min(self.throughputs), max(self.throughputs)

    def percentile_us(self, q: float) -> float:
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


async def _slice(
    call: Call, counter: itertools.count[int], seconds: float
) -> tuple[float, list[int]]:
    is_async = inspect.iscoroutinefunction(call)
    latencies: list[int] = []
    clock = time.perf_counter_ns
    start = clock()
    deadline = start + int(seconds * 1e9)
    now = start
    while now < deadline or len(latencies) < 3:
        i = next(counter)
        t0 = clock()
        if is_async:
            await call(i)
        else:
            call(i)
        now = clock()
        latencies.append(now - t0)
    return len(latencies) / ((now - start) / 1e9), latencies


async def interleave(
    sides: Mapping[str, Call], *, rounds: int, seconds: float, warmup: bool = True
) -> dict[str, Series]:
    """Run ``sides`` in ``rounds`` interleaved slices of ``seconds`` each (after a warm-up).

    Garbage is collected before every slice, so no side pays for another's.
    """
    counters = {name: itertools.count() for name in sides}
    results = {name: Series() for name in sides}
    if warmup:
        for name, call in sides.items():
            await _slice(call, counters[name], seconds / 4)
    for _ in range(rounds):
        for name, call in sides.items():
            gc.collect()
            throughput, latencies = await _slice(call, counters[name], seconds)
            results[name].throughputs.append(throughput)
            results[name].latencies_ns.extend(latencies)
    return results
