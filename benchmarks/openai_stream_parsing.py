"""How much CPU does decoding a streamed Chat Completions chunk cost, next to the naive way?

Target: no more than "httpx line iteration + json.loads" per event, the least any SSE
client must do. Both read the same long transcript (a text answer in 20,000 deltas, as
OpenAI streams it: a role chunk, the deltas, the finish chunk, the usage-only chunk and
``[DONE]``) in network-sized pieces; the decoder also builds a CompletionChunk per delta.
Prints the median cost per event of each and the median ratio of interleaved runs, with
its spread; asserts nothing (machines are noisy).
"""

from __future__ import annotations

from functools import partial

from tachikoma_backend_openai._scripting import sse_bytes, stream_chunks
from tachikoma_backend_openai._wire.stream import OpenAIStreamDecoder

from ._floor import compare_to_floor, cut, decode, sse_floor

RUNS = 15
# "_scripting" cuts the text into 8-character deltas: 160,000 characters make 20,000.
BODY = sse_bytes(stream_chunks(model="gpt-bench", text="word " * 32_000))
PIECES = cut(BODY)
EVENTS = BODY.count(b"\n\n")


def main() -> None:
    print(f"{EVENTS} events, {len(BODY):,} bytes in {len(PIECES)} pieces, {RUNS} runs")
    compare_to_floor(
        "OpenAIStreamDecoder (to chunks)",
        partial(sse_floor, PIECES, skip_done=True),
        lambda: decode(OpenAIStreamDecoder(), PIECES),
        count=EVENTS,
        unit="event",
        runs=RUNS,
    )


if __name__ == "__main__":
    main()
