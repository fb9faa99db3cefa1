"""How much CPU does decoding a streamed event cost, next to the naive way?

Target: no more than "httpx line iteration + json.loads" per event, the least any SSE
client must do. Both read the same long transcript (a text answer in 12,500 deltas) in
network-sized pieces; the decoder also builds a CompletionChunk per delta. Prints the
median cost per event of each and the median ratio of interleaved runs; asserts
nothing (machines are noisy).
"""

from __future__ import annotations

from functools import partial

from tachikoma_backend_claude._scripting import message_events, sse_bytes
from tachikoma_backend_claude._wire.stream import ClaudeStreamDecoder

from ._floor import compare_to_floor, cut, decode, sse_floor

RUNS = 15
BODY = sse_bytes(message_events(model="claude-bench", text="word " * 20_000))
PIECES = cut(BODY)
EVENTS = BODY.count(b"\n\n")


def main() -> None:
    print(f"{EVENTS} events, {len(BODY):,} bytes in {len(PIECES)} pieces, {RUNS} runs")
    compare_to_floor(
        "ClaudeStreamDecoder (to chunks)",
        partial(sse_floor, PIECES),
        lambda: decode(ClaudeStreamDecoder(), PIECES),
        count=EVENTS,
        unit="event",
        runs=RUNS,
    )


if __name__ == "__main__":
    main()
