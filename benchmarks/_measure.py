"""The in-process measurements: client CPU per request and per streamed event.

Every client of a wire format is built once; then, repetition after repetition, each
does its share in turn (the order rotating), so that a burst of load on the machine falls
on all of them alike. CPU is this process's (`time.process_time`): the server runs in
another process, on another core.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ._clients import Client, make_client
from ._payloads import FORMATS


@dataclass
class FormatSamples:
    """CPU seconds per request and per streamed delta, one sample per repetition."""

    request: dict[str, list[float]] = field(default_factory=dict)
    stream: dict[str, list[float]] = field(default_factory=dict)


def median_and_range(values: Sequence[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def paired_ratios(top: Sequence[float], bottom: Sequence[float]) -> list[float]:
    """``top[i] / bottom[i]``: the ratio within each repetition."""
    return [a / b for a, b in zip(top, bottom, strict=True)]


async def _cpu(work: Callable[[], Awaitable[object]], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        await work()
    return time.process_time() - started


async def measure_format(
    plugin: str, server: str, kinds: Sequence[str], *, requests: int, deltas: int, runs: int
) -> FormatSamples:
    """CPU per request (``requests`` in a row) and per delta (one stream of ``deltas``);
    a part whose count is 0 is left out."""
    wire = FORMATS[plugin]
    clients: dict[str, Client] = {kind: make_client(kind, wire, server) for kind in kinds}
    samples = FormatSamples()
    try:
        for client in clients.values():  # warm up: imports, caches, connections
            await client.request()
            await client.stream(min(deltas, 500) or 1)
        for run in range(runs):
            order = list(kinds[run % len(kinds) :]) + list(kinds[: run % len(kinds)])
            for kind in order if requests else ():
                seconds = await _cpu(clients[kind].request, requests)
                samples.request.setdefault(kind, []).append(seconds / requests)
            for kind in order if deltas else ():
                started = time.process_time()
                await clients[kind].stream(deltas)
                seconds = time.process_time() - started
                samples.stream.setdefault(kind, []).append(seconds / deltas)
    finally:
        for client in clients.values():
            await client.aclose()
    return samples
