"""A whole streamed call through ``registry.create``, next to raw httpx, over real TCP.

Target: at or below the raw-httpx floor end to end: a backend built by the registry
(managed: hooks, retry loop) streaming a long answer from a local `WireServer`, against
the least any client does with the same bytes (``httpx.AsyncClient.stream``,
``aiter_lines``, ``json.loads`` of each data line). Both read the same answer, in
interleaved runs, for each HTTP plugin; prints the median time per event and the
median ratio of pairs. Asserts nothing: machines are noisy.
"""

from __future__ import annotations

import json
import statistics
import time

import anyio
import httpx

from tachikoma_backends_core import registry
from tachikoma_backends_core.conformance.socket_mode import WireScript, ask_socket
from tachikoma_backends_core.http.wire_server import WireServer, response

RUNS = 9
TEXT = "word " * 10_000  # the harness cuts it into deltas: thousands of events


async def _raw(client: httpx.AsyncClient, url: str, body: bytes) -> int:
    events = 0
    async with client.stream("POST", url, content=body) as answer:
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                line = line[6:]
            if line.startswith("{"):
                json.loads(line)
                events += 1
    return events


async def _ours(backend: object) -> int:
    chunks = 0
    async with await backend.complete_stream(ask_socket()) as stream:  # type: ignore[attr-defined]
        async for _ in stream:
            chunks += 1
    return chunks


async def measure(name: str) -> None:
    wire = WireScript.for_plugin(name)
    sent: dict[str, object] = {}

    def answer(received: object) -> list[object]:
        request = received.json()  # type: ignore[attr-defined]
        sent.setdefault("body", request)
        whole = wire.answer(request, TEXT)
        return [response(whole.status, whole.headers, whole.body)]

    with WireServer(answer) as server:  # type: ignore[arg-type]
        settings = wire.socket_settings(server)
        settings.update(timeout=60.0, read_timeout=60.0)
        backend = registry.create(name, **{**wire.harness.test_settings, **settings})
        url = settings["base_url"] + wire.harness.completion_path
        async with backend, httpx.AsyncClient() as client:
            events = await _ours(backend)  # warm up; learns the request body
            body = json.dumps(sent["body"]).encode()
            await _raw(client, url, body)
            raw_times, our_times = [], []
            for _ in range(RUNS):
                started = time.perf_counter()
                await _raw(client, url, body)
                raw_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                await _ours(backend)
                our_times.append(time.perf_counter() - started)
    ratios = [ours / raw for ours, raw in zip(our_times, raw_times, strict=True)]
    per_event = 1e6 / events
    raw, ours = statistics.median(raw_times), statistics.median(our_times)
    print(f"{name}: {events} chunks per answer, {RUNS} interleaved runs")
    print(f"  raw httpx (stream, lines, json.loads): {raw * per_event:6.2f} us/chunk")
    print(f"  registry.create(...).complete_stream : {ours * per_event:6.2f} us/chunk")
    print(f"  ratio (median of pairs): {statistics.median(ratios):.2f}x (target: 1.00x or less)")


async def main() -> None:
    for name in ("claude", "openai", "ollama"):
        await measure(name)


if __name__ == "__main__":
    anyio.run(main)
