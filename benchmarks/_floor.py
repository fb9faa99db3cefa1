"""What the stream benchmarks share: the floor any client pays, and paired timing.

The floor is the least any client must do with a stream: httpx's own line machinery
(the decoders behind ``aiter_lines``) and ``json.loads`` on every payload line. Each
benchmark times it against ours on the same pieces, interleaved, so a burst of load on
the machine hits both sides alike, and prints medians and the spread of the ratios.
Not a benchmark itself: the helpers of the micro-benchmarks (``python -m benchmarks.NAME``).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from httpx._decoders import LineDecoder, TextDecoder

#: Bytes per read: about one TCP segment.
PIECE = 1400


class Decoder(Protocol):
    def feed(self, data: bytes) -> Any: ...

    def close(self) -> Any: ...


def cut(body: bytes, size: int = PIECE) -> list[bytes]:
    """``body`` in reads of ``size`` bytes, as a network delivers it."""
    return [body[i : i + size] for i in range(0, len(body), size)]


def _lines(pieces: Iterable[bytes]) -> Iterable[str]:
    text, lines = TextDecoder(), LineDecoder()
    for piece in pieces:
        yield from lines.decode(text.decode(piece))
    yield from lines.flush()


def sse_floor(pieces: list[bytes], *, skip_done: bool = False) -> None:
    """The lines, then ``json.loads`` on every ``data:`` line (``[DONE]`` skipped when
    the provider sends one: that check is part of any client of it)."""
    for line in _lines(pieces):
        if line.startswith("data:"):
            if skip_done and line.endswith("[DONE]"):
                continue
            json.loads(line[5:])


def ndjson_floor(pieces: list[bytes]) -> None:
    """The lines, then ``json.loads`` on every non-blank one."""
    for line in _lines(pieces):
        if line:
            json.loads(line)


def decode(decoder: Decoder, pieces: list[bytes]) -> None:
    """Feed ``pieces`` to ``decoder``, then close it."""
    for piece in pieces:
        decoder.feed(piece)
    decoder.close()


def seconds(function: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def spread(ratios: list[float]) -> str:
    """The quartiles and the range of ``ratios``."""
    ordered = sorted(ratios)
    quartiles = statistics.quantiles(ordered, n=4)
    return (
        f"quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}, range {ordered[0]:.2f}-{ordered[-1]:.2f}"
    )


def compare_to_floor(
    name: str,
    floor: Callable[[], object],
    ours: Callable[[], object],
    *,
    count: int,
    unit: str,
    runs: int,
) -> None:
    """Time ``floor`` and ``ours`` in ``runs`` interleaved pairs; print the cost per
    ``unit`` (``count`` of them per run) and the median ratio, with its spread."""
    ours()  # warm up both (imports, caches) before timing
    floor()
    pairs = [(seconds(floor), seconds(ours)) for _ in range(runs)]
    baseline = statistics.median(n for n, _ in pairs) / count * 1e6
    decoded = statistics.median(o for _, o in pairs) / count * 1e6
    ratios = [o / n for n, o in pairs]
    print(f"naive (httpx lines + json.loads): {baseline:6.2f} us/{unit}")
    print(f"{name:<32}: {decoded:6.2f} us/{unit}")
    print(
        f"ratio (median of pairs)         : {statistics.median(ratios):6.2f}x "
        f"({spread(ratios)}; target: 1.00x or less)"
    )
