"""How much CPU does decoding a streamed Ollama ``/api/chat`` line cost, next to the naive way?

Target: no more than "httpx line iteration + json.loads" per line, the least any NDJSON
client must do. Both read the same long transcript (a text answer in 20,000 lines, as
Ollama streams it: one ``done: false`` line per piece of text, then the ``done`` line with
the counts) in network-sized pieces; the decoder also builds a CompletionChunk per line.
Prints the median cost per line of each and the median ratio of interleaved runs, with
its spread; asserts nothing (machines are noisy).
"""

from __future__ import annotations

from functools import partial

from tachikoma_backend_ollama._scripting import chat_lines, ndjson_bytes
from tachikoma_backend_ollama._wire.stream import OllamaStreamDecoder

from ._floor import compare_to_floor, cut, decode, ndjson_floor

RUNS = 15
# "_scripting" cuts the text into 8-character pieces: 160,000 characters make 20,000.
BODY = ndjson_bytes(chat_lines(model="llama3.2", text="word " * 32_000))
PIECES = cut(BODY)
LINES = BODY.count(b"\n")


def main() -> None:
    print(f"{LINES} lines, {len(BODY):,} bytes in {len(PIECES)} pieces, {RUNS} runs")
    compare_to_floor(
        "OllamaStreamDecoder (to chunks)",
        partial(ndjson_floor, PIECES),
        lambda: decode(OllamaStreamDecoder(), PIECES),
        count=LINES,
        unit="line",
        runs=RUNS,
    )


if __name__ == "__main__":
    main()
