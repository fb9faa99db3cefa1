"""The benchmarks: our plugins against raw httpx (the floor) and the official SDKs.

``python -m benchmarks`` (``make bench``) starts a loopback server in a process of its
own (`_server`), serving each provider's precomputed bytes, and measures the client's CPU
for each wire format: non-streamed requests, one long stream (bare, with a pass-through
chunk hook, with a rate limiter that never blocks), thousands of concurrent streams, and
a cold start. It writes ``benchmarks/RESULTS.md`` and a plot; see `__main__` for the
options. The modules named after one thing (``claude_stream_parsing``, ``http_parsers``,
``rate_limiter_acquire``, ``redis_rate_limit`` ...) are micro-benchmarks of one part,
each runnable on its own: ``python -m benchmarks.http_parsers``.

Ratios are measured side by side, in interleaved repetitions, on one machine: nothing
here asserts a time.
"""
