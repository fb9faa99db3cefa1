"""The three ways to talk to one wire format: the floor, our plugin, the official SDK.

Each `Client` makes a non-streamed request (`Client.request`) or reads a whole stream
(`Client.stream`, the number of items it yielded). They are built inside the event loop
and closed with `Client.aclose`.

* ``floor``: raw httpx doing the least any client must: ``json.dumps`` of the request,
  then the body's lines and ``json.loads`` of each payload line (``[DONE]`` skipped), or
  of a whole answer. Its pool is the plugins' and SDKs' default (1000 connections, 100
  kept alive).
* ``ours``: our plugin through ``registry.create``: the managed backend, hooks, retry loop.
  ``hook`` and ``limiter`` add one pass-through chunk hook, or a rate limiter whose
  budgets never bind.
* ``sdk``: the official SDK (``anthropic``, ``openai``, ``ollama``), its retries off.
  Imported only when asked for: the SDKs are benchmark-only dependencies.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any, Protocol

import httpx

from tachikoma_backends_core import CompletionRequest, Hooks, Message, hookimpl, registry
from tachikoma_backends_core.rate_limit import RateLimitConfig, RateLimiter

from ._payloads import PROMPT, WireFormat, model_name

KINDS = ("floor", "ours", "hook", "limiter", "sdk")
_TIMEOUT = 600.0
_KEY = "bench-key"
#: Budgets no benchmark comes near: every acquire takes the limiter's uncontended path.
GENEROUS = RateLimitConfig(
    requests_per_minute=10**9, tokens_per_minute=10**12, max_concurrent=100_000
)


class Client(Protocol):
    async def request(self) -> None: ...

    async def stream(self, deltas: int) -> int: ...

    async def aclose(self) -> None: ...


def sdk_installed(wire: WireFormat) -> bool:
    return importlib.util.find_spec(wire.sdk) is not None


def make_client(kind: str, wire: WireFormat, server: str) -> Client:
    """A client of ``kind`` (one of `KINDS`) for ``wire`` at ``server``."""
    if kind == "floor":
        return FloorClient(wire, server)
    if kind == "sdk":
        return _SDK_CLIENTS[wire.plugin](wire, server)
    return PluginClient(wire, server, hook=kind == "hook", limiter=kind == "limiter")


class FloorClient:
    def __init__(self, wire: WireFormat, server: str) -> None:
        self._url = wire.url(server)
        self._wire = wire
        self._bodies: dict[int | None, Any] = {}
        self._client = httpx.AsyncClient(
            timeout=_TIMEOUT,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            headers={"content-type": "application/json"},
        )

    def _body(self, deltas: int | None) -> bytes:
        body = self._bodies.get(deltas)
        if body is None:
            body = self._bodies[deltas] = json.loads(self._wire.request_body(deltas))
        return json.dumps(body).encode()

    async def request(self) -> None:
        answer = await self._client.post(self._url, content=self._body(None))
        answer.raise_for_status()
        json.loads(answer.content)

    async def stream(self, deltas: int) -> int:
        events = 0
        loads = json.loads
        sse = self._wire.sse
        async with self._client.stream("POST", self._url, content=self._body(deltas)) as answer:
            answer.raise_for_status()
            async for line in answer.aiter_lines():
                if sse:
                    if not line.startswith("data:") or line.endswith("[DONE]"):
                        continue
                    line = line[5:]
                elif not line:
                    continue
                loads(line)
                events += 1
        return events

    async def aclose(self) -> None:
        await self._client.aclose()


class _PassThrough:
    """One chunk hook that looks at every chunk and changes nothing."""

    def __init__(self) -> None:
        self.seen = 0

    @hookimpl
    def tachikoma_chunk(self, chunk: Any) -> None:
        self.seen += 1


class PluginClient:
    def __init__(self, wire: WireFormat, server: str, *, hook: bool, limiter: bool) -> None:
        settings: dict[str, Any] = {"base_url": server + wire.base_path, "timeout": _TIMEOUT}
        if wire.plugin != "ollama":
            settings["api_key"] = _KEY
        if limiter:
            settings["rate_limiter"] = RateLimiter(GENEROUS)
        backend: Any = registry.create(wire.plugin, **settings)
        if hook:
            hooks = Hooks()
            hooks.register(_PassThrough(), name="pass-through")
            backend = backend.with_options(hooks=hooks)
        self._backend = backend
        self._requests: dict[int | None, CompletionRequest] = {}

    def _request(self, deltas: int | None) -> CompletionRequest:
        request = self._requests.get(deltas)
        if request is None:
            request = self._requests[deltas] = CompletionRequest(
                messages=[Message.user(PROMPT)], model=model_name(deltas), max_tokens=1024
            )
        return request

    async def request(self) -> None:
        await self._backend.complete(self._request(None))

    async def stream(self, deltas: int) -> int:
        chunks = 0
        async with await self._backend.complete_stream(self._request(deltas)) as stream:
            async for _ in stream:
                chunks += 1
        return chunks

    async def aclose(self) -> None:
        await self._backend.aclose()


_MESSAGES = [{"role": "user", "content": PROMPT}]


class AnthropicClient:
    def __init__(self, wire: WireFormat, server: str) -> None:
        import anthropic

        self._client: Any = anthropic.AsyncAnthropic(
            api_key=_KEY, base_url=server + wire.base_path, max_retries=0, timeout=_TIMEOUT
        )

    async def request(self) -> None:
        await self._client.messages.create(
            model=model_name(None), max_tokens=1024, messages=_MESSAGES
        )

    async def stream(self, deltas: int) -> int:
        events = 0
        stream = await self._client.messages.create(
            model=model_name(deltas), max_tokens=1024, messages=_MESSAGES, stream=True
        )
        async with stream:
            async for _ in stream:
                events += 1
        return events

    async def aclose(self) -> None:
        await self._client.close()


class OpenAIClient:
    def __init__(self, wire: WireFormat, server: str) -> None:
        import openai

        self._client: Any = openai.AsyncOpenAI(
            api_key=_KEY, base_url=server + wire.base_path, max_retries=0, timeout=_TIMEOUT
        )

    async def request(self) -> None:
        await self._client.chat.completions.create(model=model_name(None), messages=_MESSAGES)

    async def stream(self, deltas: int) -> int:
        events = 0
        stream = await self._client.chat.completions.create(
            model=model_name(deltas),
            messages=_MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for _ in stream:
                events += 1
        return events

    async def aclose(self) -> None:
        await self._client.close()


class OllamaClient:
    def __init__(self, wire: WireFormat, server: str) -> None:
        import ollama

        self._client: Any = ollama.AsyncClient(host=server + wire.base_path, timeout=_TIMEOUT)

    async def request(self) -> None:
        await self._client.chat(model=model_name(None), messages=_MESSAGES)

    async def stream(self, deltas: int) -> int:
        events = 0
        async for _ in await self._client.chat(
            model=model_name(deltas), messages=_MESSAGES, stream=True
        ):
            events += 1
        return events

    async def aclose(self) -> None:
        await self._client.close()


_SDK_CLIENTS: dict[str, type[AnthropicClient | OpenAIClient | OllamaClient]] = {
    "claude": AnthropicClient,
    "openai": OpenAIClient,
    "ollama": OllamaClient,
}
