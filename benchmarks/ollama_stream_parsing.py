"""How much CPU does decoding a streamed Ollama ``/api/chat`` line cost, next to the naive way?

Target: no more than "httpx line iteration + json.loads" per line, the least any NDJSON
client must do. Both read the same long transcript (a text answer in 20,000 lines, as
Ollama streams it: one ``done: false`` line per piece of text, then the ``done`` line with
the counts) in network-sized pieces; the decoder also builds a CompletionChunk per line.
Prints the median cost per line of each and the median ratio of interleaved runs, with
its spread; asserts nothing (machines are noisy).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from httpx._decoders import LineDecoder, TextDecoder

from tachikoma_backend_ollama._scripting import chat_lines, ndjson_bytes
from tachikoma_backend_ollama._wire.stream import OllamaStreamDecoder

RUNS = 15
PIECE = 1400  # bytes per read, about one TCP segment
# "_scripting" cuts the text into 8-character pieces: 160,000 characters make 20,000.
BODY = ndjson_bytes(chat_lines(model="llama3.2", text="word " * 32_000))
PIECES = [BODY[i : i + PIECE] for i in range(0, len(BODY), PIECE)]
LINES = BODY.count(b"\n")


def naive() -> None:
    """httpx's own aiter_lines machinery, then json.loads on every non-blank line."""
    text, lines = TextDecoder(), LineDecoder()
    for piece in PIECES:
        for line in lines.decode(text.decode(piece)):
            if line:
                json.loads(line)
    for line in lines.flush():
        if line:
            json.loads(line)


def ours() -> None:
    decoder = OllamaStreamDecoder()
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
    baseline = statistics.median(n for n, _ in pairs) / LINES * 1e6
    decoded = statistics.median(o for _, o in pairs) / LINES * 1e6
    ratios = sorted(o / n for n, o in pairs)
    quartiles = statistics.quantiles(ratios, n=4)
    print(f"{LINES} lines, {len(BODY):,} bytes in {len(PIECES)} pieces, {RUNS} runs")
    print(f"naive (httpx lines + json.loads): {baseline:6.2f} us/line")
    print(f"OllamaStreamDecoder (to chunks) : {decoded:6.2f} us/line")
    print(
        f"ratio (median of pairs)         : {statistics.median(ratios):6.2f}x "
        f"(quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}, "
        f"range {ratios[0]:.2f}-{ratios[-1]:.2f}; target: 1.00x or less)"
    )


if __name__ == "__main__":
    main()
