"""How much CPU does decoding a streamed Chat Completions chunk cost, next to the naive way?

Target: no more than "httpx line iteration + json.loads" per event, the least any SSE
client must do. Both read the same long transcript (a text answer in 20,000 deltas, as
OpenAI streams it: a role chunk, the deltas, the finish chunk, the usage-only chunk and
``[DONE]``) in network-sized pieces; the decoder also builds a CompletionChunk per delta.
Prints the median cost per event of each and the median ratio of interleaved runs, with
its spread; asserts nothing (machines are noisy).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from httpx._decoders import LineDecoder, TextDecoder

from tachikoma_backend_openai._scripting import sse_bytes, stream_chunks
from tachikoma_backend_openai._wire.stream import OpenAIStreamDecoder

RUNS = 15
PIECE = 1400  # bytes per read, about one TCP segment
# "_scripting" cuts the text into 8-character deltas: 160,000 characters make 20,000.
BODY = sse_bytes(stream_chunks(model="gpt-bench", text="word " * 32_000))
PIECES = [BODY[i : i + PIECE] for i in range(0, len(BODY), PIECE)]
EVENTS = BODY.count(b"\n\n")


def naive() -> None:
    """httpx's own aiter_lines machinery, then json.loads on every data line."""
    text, lines = TextDecoder(), LineDecoder()
    for piece in PIECES:
        for line in lines.decode(text.decode(piece)):
            if line.startswith("data:"):
                data = line[5:].lstrip()
                if data != "[DONE]":
                    json.loads(data)


def ours() -> None:
    decoder = OpenAIStreamDecoder()
    for piece in PIECES:
        decoder.feed(piece)
    decoder.close()


def seconds(function: Callable[[], None]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    ours()  # warm up both (imports, caches) before timing
    naive()
    # Interleaved, so a burst of load on the machine hits both sides alike.
    pairs = [(seconds(naive), seconds(ours)) for _ in range(RUNS)]
    baseline = statistics.median(n for n, _ in pairs) / EVENTS * 1e6
    decoded = statistics.median(o for _, o in pairs) / EVENTS * 1e6
    ratios = sorted(o / n for n, o in pairs)
    quartiles = statistics.quantiles(ratios, n=4)
    print(f"{EVENTS} events, {len(BODY):,} bytes in {len(PIECES)} pieces, {RUNS} runs")
    print(f"naive (httpx lines + json.loads): {baseline:6.2f} us/event")
    print(f"OpenAIStreamDecoder (to chunks) : {decoded:6.2f} us/event")
    print(
        f"ratio (median of pairs)         : {statistics.median(ratios):6.2f}x "
        f"(quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}, "
        f"range {ratios[0]:.2f}-{ratios[-1]:.2f}; target: 1.00x or less)"
    )


if __name__ == "__main__":
    main()
