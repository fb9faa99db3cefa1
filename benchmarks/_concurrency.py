"""Many concurrent streams, each measurement in a fresh process of its own.

A process's peak RSS only ever grows, so each count of streams for each client runs in
a child (``python -m benchmarks._concurrency FORMAT KIND STREAMS DELTAS URL``) that
prints one JSON line: wall and CPU seconds, the CPU seconds of it the cyclic garbage
collector took (timed by `gc.callbacks`), the peak RSS before the streams start (after
imports and building the client) and at the end, and the streams that failed.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import anyio

from ._clients import make_client
from ._payloads import FORMATS
from ._server import pin_client, raise_file_limit


@dataclass(frozen=True)
class Crowd:
    """What one run of ``streams`` concurrent streams cost."""

    streams: int
    wall: float
    cpu: float
    rss_before_kib: int
    rss_peak_kib: int
    errors: int
    first_error: str
    gc_cpu: float = 0.0
    full_collections: int = 0

    @property
    def rss_growth_kib(self) -> int:
        return self.rss_peak_kib - self.rss_before_kib


def run_crowd(plugin: str, kind: str, streams: int, deltas: int, url: str) -> Crowd:
    """Run one measurement in a child process and read what it says."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks._concurrency",
            plugin,
            kind,
            str(streams),
            str(deltas),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{plugin}/{kind} x{streams} failed: {result.stderr[-2000:]}")
    return Crowd(**json.loads(result.stdout.strip().splitlines()[-1]))


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


async def _crowd(plugin: str, kind: str, streams: int, deltas: int, url: str) -> Crowd:
    client = make_client(kind, FORMATS[plugin], url)
    await client.stream(deltas)  # warm up: imports, caches, one connection
    errors: list[str] = []

    async def one() -> None:
        try:
            await client.stream(deltas)
        except Exception as exc:  # counted and reported, not fatal
            errors.append(f"{type(exc).__name__}: {exc}")

    before = _peak_kib()
    collector = _CollectorTime()
    gc.callbacks.append(collector)
    wall, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as group:
        for _ in range(streams):
            group.start_soon(one)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gc.callbacks.remove(collector)
    peak = _peak_kib()
    await client.aclose()
    return Crowd(
        streams,
        wall,
        cpu,
        before,
        peak,
        len(errors),
        errors[0] if errors else "",
        collector.seconds,
        collector.full,
    )


class _CollectorTime:
    """The CPU time the cyclic garbage collector takes, and its full collections."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
            return
        self.seconds += time.process_time() - self._started
        self.full += info["generation"] == 2


def main(argv: list[str]) -> None:
    plugin, kind, streams, deltas, url = argv
    raise_file_limit()
    pin_client()
    crowd = anyio.run(_crowd, plugin, kind, int(streams), int(deltas), url)
    print(json.dumps(asdict(crowd)))


if __name__ == "__main__":
    main(sys.argv[1:])
