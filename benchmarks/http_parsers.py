"""Do the HTTP kit's stream parsers stay linear, and what do they cost per event?

1. Linearity: ONE event (SSEParser) or line (NDJSONParser, a JSON string value) of
   4 MiB and of 8 MiB, fed in 4 KiB pieces as a network delivers it. A linear parser
   takes twice as long for twice the bytes (ratio ~2); one that searches its whole
   buffer again at every piece takes four times as long (ratio ~4).
2. Per-event cost: 20,000 small events fed in 1400-byte pieces (about one TCP segment),
   our parser plus `decode_json` per payload, next to the floor any client pays:
   "httpx line iteration + json.loads". SSE is measured in two shapes: with an
   ``event:`` line (Anthropic's, the parser's fast path) and ``data:`` only (OpenAI's).

Every timing is a median of interleaved runs (a burst of load on the machine hits both
sides alike), with the spread (min-max) of the per-run ratios. Asserts nothing: machines
are noisy.
"""

from __future__ import annotations

import json
import statistics
import time

from tachikoma_backends_core.http import NDJSONParser, SSEParser, decode_json

from ._floor import cut, ndjson_floor, seconds, sse_floor

MIB = 1024 * 1024
BIG_RUNS = 9
BIG_PIECE = 4096
SMALL_RUNS = 15
SMALL_PIECE = 1400
EVENTS = 20_000
WHAT = "the stream's event"


def spread(ratios: list[float]) -> str:
    return f"{min(ratios):.2f}-{max(ratios):.2f}"


# --- 1. Linearity: one big event ---------------------------------------------------------


def sse_big(size: int) -> list[bytes]:
    return cut(b"data: " + b"word " * (size // 5) + b"\n\n", BIG_PIECE)


def ndjson_big(size: int) -> list[bytes]:
    return cut(b'"' + b"word " * (size // 5) + b'"\n', BIG_PIECE)


def parse_sse(pieces: list[bytes]) -> int:
    parser = SSEParser()
    events = [event for piece in pieces for event in parser.feed(piece)]
    events += parser.close()
    return len(events)


def parse_ndjson(pieces: list[bytes]) -> int:
    parser = NDJSONParser()
    values = [value for piece in pieces for value in parser.feed(piece)]
    values += parser.close()
    return len(values)


def linearity() -> None:
    cases = [
        ("SSEParser   ", parse_sse, sse_big(4 * MIB), sse_big(8 * MIB)),
        ("NDJSONParser", parse_ndjson, ndjson_big(4 * MIB), ndjson_big(8 * MIB)),
    ]
    print(f"1. One event of 4 MiB vs 8 MiB in {BIG_PIECE:,}-byte pieces ({BIG_RUNS} runs)")
    for name, parse, small, large in cases:
        pairs = [(seconds(parse, small), seconds(parse, large)) for _ in range(BIG_RUNS)]
        ratios = [t8 / t4 for t4, t8 in pairs]
        t4 = statistics.median(t for t, _ in pairs)
        t8 = statistics.median(t for _, t in pairs)
        print(
            f"   {name}: 4 MiB {t4 * 1e3:7.1f} ms, 8 MiB {t8 * 1e3:7.1f} ms, "
            f"t(8)/t(4) {statistics.median(ratios):4.2f} (spread {spread(ratios)}; "
            f"~2 linear, ~4 quadratic), {8 / t8:6.0f} MiB/s"
        )


# --- 2. Per-event cost next to the naive floor ---------------------------------------------


def sse_small(with_event_line: bool) -> list[bytes]:
    head = "event: content_block_delta\n" if with_event_line else ""
    body = "".join(
        f"{head}data: {json.dumps({'index': i, 'delta': 'word '})}\n\n" for i in range(EVENTS)
    )
    return cut(body.encode(), SMALL_PIECE)


def ndjson_small() -> list[bytes]:
    body = "".join(
        json.dumps({"index": i, "delta": "word ", "done": False}) + "\n" for i in range(EVENTS)
    )
    return cut(body.encode(), SMALL_PIECE)


def sse_ours(pieces: list[bytes]) -> None:
    parser = SSEParser()
    for piece in pieces:
        for _, data in parser.feed(piece):
            decode_json(data, what=WHAT)
    for _, data in parser.close():
        decode_json(data, what=WHAT)


def ndjson_ours(pieces: list[bytes]) -> None:
    parser = NDJSONParser()
    for piece in pieces:
        parser.feed(piece)
    parser.close()


def per_event() -> None:
    cases = [
        ("SSE, event+data lines", sse_floor, sse_ours, sse_small(with_event_line=True)),
        ("SSE, data lines only ", sse_floor, sse_ours, sse_small(with_event_line=False)),
        ("NDJSON               ", ndjson_floor, ndjson_ours, ndjson_small()),
    ]
    print(
        f"2. {EVENTS:,} small events in {SMALL_PIECE:,}-byte pieces ({SMALL_RUNS} runs): "
        "us/event, naive = httpx lines + json.loads"
    )
    for name, naive, ours, pieces in cases:
        pairs = [(seconds(naive, pieces), seconds(ours, pieces)) for _ in range(SMALL_RUNS)]
        ratios = [o / n for n, o in pairs]
        baseline = statistics.median(n for n, _ in pairs) / EVENTS * 1e6
        decoded = statistics.median(o for _, o in pairs) / EVENTS * 1e6
        print(
            f"   {name} ({sum(map(len, pieces)):,} bytes): naive {baseline:5.2f}, "
            f"ours {decoded:5.2f}, ratio {statistics.median(ratios):4.2f}x "
            f"(spread {spread(ratios)}; 1.00x or less: no dearer than the floor)"
        )


def main() -> None:
    start = time.perf_counter()
    linearity()
    per_event()
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
