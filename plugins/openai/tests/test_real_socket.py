"""Over a real socket: the requests as a server reads them, streams, and leaving early.

A tiny HTTP/1.1 server (anyio, no framework) plays an OpenAI-compatible server that
wants no key, and an Azure OpenAI resource. It records each request as it arrived (the
request line, the headers, the body) and answers a streamed request with a whole chunk
stream in chunked transfer encoding, one event per chunk, or a plain request with a
``chat.completion``. A request whose text is ``"hang"`` gets the opening of a stream,
then the server waits for the client to hang up. Runs under asyncio and trio with
warnings as errors, so a generator of httpx's left suspended (trio warns about those)
fails it.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import pytest
from pydantic import SecretStr

from tachikoma_backend_openai import OpenAIBackend, OpenAIBackendConfig, plugin
from tachikoma_backend_openai._scripting import completion_body, sse_bytes, stream_chunks
from tachikoma_backends_core import CompletionRequest, FinishReason, Message, Usage

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest(messages=[Message.user("Tell me a long story")])
HANG = CompletionRequest(messages=[Message.user("hang")])
STORY = "Once upon a time, a socket was opened."
USAGE = Usage(12, 9, cache_read_input_tokens=0, reasoning_tokens=0)
AZURE_KEY = "azure-socket-key-0123456789"
API_VERSION = "2024-10-21"


@dataclass
class Seen:
    """A request as it arrived on the socket."""

    method: str
    target: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)


class Server:
    def __init__(self) -> None:
        self.disconnected = anyio.Event()
        self.requests: list[Seen] = []

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += await client.receive()
            head, _, body = raw.partition(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _version = request_line.split(" ")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines)
            }
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                body += await client.receive()
            seen = Seen(method, target, headers, json.loads(body) if body else {})
            self.requests.append(seen)
            if method == "GET":
                await self.send_json(client, {"object": "list", "data": []})
                return
            model = seen.body["model"]
            if seen.body["messages"][-1]["content"] == "hang":
                await self.hang(client, model)
                return
            if seen.body.get("stream"):
                await self.send_stream(client, model)
                return
            await self.send_json(client, completion_body(model=model, text=STORY, usage=USAGE))

    @staticmethod
    async def send_json(client: anyio.abc.SocketStream, answer: dict[str, Any]) -> None:
        payload = json.dumps(answer).encode()
        await client.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
            + f"content-length: {len(payload)}\r\n\r\n".encode()
            + payload
        )

    @staticmethod
    async def send_stream(client: anyio.abc.SocketStream, model: str) -> None:
        await client.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for chunk in stream_chunks(model=model, text=STORY, usage=USAGE):
            event = sse_bytes([chunk], done=False)
            await client.send(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        done = b"data: [DONE]\n\n"
        await client.send(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")

    async def hang(self, client: anyio.abc.SocketStream, model: str) -> None:
        opening = sse_bytes(stream_chunks(model=model, text=STORY)[:2], done=False)
        await client.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
            + f"{len(opening):x}\r\n".encode()
            + opening
            + b"\r\n"
        )
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            await client.receive()  # the story never ends; wait for the client to leave
        self.disconnected.set()


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Server]]:
    server = Server()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, server.handle)
        yield f"http://127.0.0.1:{port}", server
        group.cancel_scope.cancel()


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OPENAI_API_KEY (nor AZURE_*) from the developer's environment."""
    for variable in OpenAIBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)


async def test_a_keyless_compatible_server_streams_completes_and_answers_health(
    served: tuple[str, Server],
) -> None:
    url, server = served
    async with plugin.create(base_url=f"{url}/v1", model="local-model", max_retries=0) as local:
        with anyio.fail_after(10):
            stream = await local.complete_stream(REQUEST)
            async with stream:
                streamed = await stream.collect()
            completed = await local.complete(REQUEST)
            healthy = await local.health_check()
    assert streamed.text == STORY
    assert streamed.finish_reason is FinishReason.STOP
    assert streamed.usage == USAGE
    assert completed.text == STORY
    assert completed.usage == USAGE
    assert healthy is True
    assert [(r.method, r.target) for r in server.requests] == [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
    ]
    for seen in server.requests:
        assert "authorization" not in seen.headers, "no key, so no authorization header"
        assert "api-key" not in seen.headers
        assert seen.headers["host"] == url.removeprefix("http://")
    streamed_body, plain_body = server.requests[0].body, server.requests[1].body
    assert server.requests[0].headers["content-type"] == "application/json"
    assert streamed_body["stream"] is True
    assert streamed_body["stream_options"] == {"include_usage": True}
    assert streamed_body["model"] == "local-model"
    assert "stream" not in plain_body
    gc.collect()  # any generator left suspended would be finalised (and warned about) now


async def test_an_azure_resource_dated_api(served: tuple[str, Server]) -> None:
    url, server = served
    config = OpenAIBackendConfig(
        azure_endpoint=url,
        azure_api_key=SecretStr(AZURE_KEY),
        azure_deployment="dep-1",
        api_version=API_VERSION,
    )
    async with OpenAIBackend(config) as backend:
        with anyio.fail_after(10):
            completed = await backend.complete(REQUEST)
            streamed = await (await backend.complete_stream(REQUEST)).collect()
            healthy = await backend.health_check()
    assert (completed.text, streamed.text, healthy) == (STORY, STORY, True)
    chat = f"/openai/deployments/dep-1/chat/completions?api-version={API_VERSION}"
    assert [(r.method, r.target) for r in server.requests] == [
        ("POST", chat),
        ("POST", chat),
        ("GET", f"/openai/models?api-version={API_VERSION}"),
    ]
    for seen in server.requests:
        assert seen.headers["api-key"] == AZURE_KEY
        assert "authorization" not in seen.headers
    gc.collect()


async def test_an_azure_resource_v1_api(served: tuple[str, Server]) -> None:
    url, server = served
    config = OpenAIBackendConfig(
        azure_endpoint=f"{url}/", azure_api_key=SecretStr(AZURE_KEY), azure_deployment="dep-1"
    )
    async with OpenAIBackend(config) as backend:
        with anyio.fail_after(10):
            completed = await backend.complete(REQUEST)
            streamed = await (await backend.complete_stream(REQUEST)).collect()
            healthy = await backend.health_check()
    assert (completed.text, streamed.text, healthy) == (STORY, STORY, True)
    assert [(r.method, r.target) for r in server.requests] == [
        ("POST", "/openai/v1/chat/completions"),
        ("POST", "/openai/v1/chat/completions"),
        ("GET", "/openai/v1/models"),
    ]
    assert [r.body["model"] for r in server.requests[:2]] == ["dep-1", "dep-1"]
    for seen in server.requests:
        assert seen.headers["api-key"] == AZURE_KEY
        assert "authorization" not in seen.headers
    gc.collect()


async def test_leaving_a_stream_early_hangs_up_and_the_backend_goes_on(
    served: tuple[str, Server],
) -> None:
    url, server = served
    config = OpenAIBackendConfig(api_key=SecretStr("sk-openai-socket-test"), base_url=f"{url}/v1")
    async with OpenAIBackend(config) as backend:
        with anyio.fail_after(10):
            async with await backend.complete_stream(HANG) as stream:
                async for chunk in stream:
                    assert chunk.delta == STORY[:8]
                    break
            await server.disconnected.wait()
            response = await backend.complete(REQUEST)
    assert response.text == STORY
    assert [r.body.get("stream", False) for r in server.requests] == [True, False]
    assert server.requests[0].headers["authorization"] == "Bearer sk-openai-socket-test"
    gc.collect()


async def test_cancelling_a_stream_mid_body_hangs_up_and_leaves_nothing(
    served: tuple[str, Server],
) -> None:
    url, server = served
    config = OpenAIBackendConfig(api_key=SecretStr("sk-openai-socket-test"), base_url=f"{url}/v1")
    async with OpenAIBackend(config) as backend:
        with anyio.fail_after(10):
            first = anyio.Event()

            async def read_forever() -> None:
                async with await backend.complete_stream(HANG) as stream:
                    async for _chunk in stream:
                        first.set()

            async with anyio.create_task_group() as group:
                group.start_soon(read_forever)
                await first.wait()
                group.cancel_scope.cancel()
            await server.disconnected.wait()
            response = await backend.complete(REQUEST)
    assert response.text == STORY
    gc.collect()
