"""How much CPU does decoding a streamed event cost, next to the naive way?

Target: no more than "httpx line iteration + json.loads" per event, the least any SSE
client must do. Both read the same long transcript (a text answer in 12,500 deltas) in
network-sized pieces; the decoder also builds a CompletionChunk per delta. Prints the
median cost per event of each and the median ratio of interleaved runs; asserts
nothing (machines are noisy).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from httpx._decoders import LineDecoder, TextDecoder

from tachikoma_backend_claude._scripting import message_events, sse_bytes
from tachikoma_backend_claude._wire.stream import ClaudeStreamDecoder

RUNS = 15
PIECE = 1400  # bytes per read, about one TCP segment
BODY = sse_bytes(message_events(model="claude-bench", text="word " * 20_000))
PIECES = [BODY[i : i + PIECE] for i in range(0, len(BODY), PIECE)]
EVENTS = BODY.count(b"\n\n")


def naive() -> None:
    """httpx's own aiter_lines machinery, then json.loads on every data line."""
    text, lines = TextDecoder(), LineDecoder()
    for piece in PIECES:
        for line in lines.decode(text.decode(piece)):
            if line.startswith("data:"):
                json.loads(line[5:])


def ours() -> None:
    decoder = ClaudeStreamDecoder()
    for piece in PIECES:
        decoder.feed(piece)
    decoder.close()


def seconds(function: Callable[[], None]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    # Interleaved, so a burst of load on the machine hits both sides alike.
    pairs = [(seconds(naive), seconds(ours)) for _ in range(RUNS)]
    baseline = statistics.median(n for n, _ in pairs) / EVENTS * 1e6
    decoded = statistics.median(o for _, o in pairs) / EVENTS * 1e6
    ratio = statistics.median(o / n for n, o in pairs)
    print(f"{EVENTS} events, {len(BODY):,} bytes in {len(PIECES)} pieces")
    print(f"naive (httpx lines + json.loads): {baseline:6.2f} us/event")
    print(f"ClaudeStreamDecoder (to chunks) : {decoded:6.2f} us/event")
    print(f"ratio (median of pairs)         : {ratio:6.2f}x (target: 1.00x or less)")


if __name__ == "__main__":
    main()
