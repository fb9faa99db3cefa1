"""Over a real socket: the requests as a server reads them, streams, and leaving early.

A tiny HTTP/1.1 server (anyio, no framework) plays Ollama. It records each request as
it arrived (the request line, the headers, the body) and answers a streamed
``/api/chat`` with its NDJSON lines in chunked transfer encoding, one line per chunk, a
``"stream": false`` one with the whole answer, ``/api/version`` with its version and
``/api/pull`` with progress lines. A chat whose text is ``"hang"``, or a pull of
``"huge"``, gets an opening, then the server waits for the client to hang up. Runs
under asyncio and trio with warnings as errors, so a generator of httpx's left suspended
(trio warns about those) fails it.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import pytest
from pydantic import SecretStr

from tachikoma_backend_ollama import OllamaBackend, OllamaBackendConfig, plugin
from tachikoma_backend_ollama._scripting import chat_answer, chat_lines, ndjson_bytes, pull_lines
from tachikoma_backends_core import CompletionRequest, FinishReason, Message, PullProgress, Usage

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest(messages=[Message.user("Tell me a long story")])
HANG = CompletionRequest(messages=[Message.user("hang")])
STORY = "Once upon a time, a socket was opened."
USAGE = Usage(12, 9)


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
            if target == "/api/version":
                await self.send_json(client, {"version": "0.32.15"})
            elif target == "/api/pull":
                await self.pull(client, seen.body["model"])
            elif seen.body["messages"][-1]["content"] == "hang":
                await self.hang(client, seen.body["model"])
            elif seen.body.get("stream", True):
                await self.send_lines(client, chat_lines(model=seen.body["model"], text=STORY,
                                                         usage=USAGE))  # fmt: skip
            else:
                answer = chat_answer(model=seen.body["model"], text=STORY, usage=USAGE)
                await self.send_json(client, answer)

    @staticmethod
    async def send_json(client: anyio.abc.SocketStream, answer: dict[str, Any]) -> None:
        payload = json.dumps(answer).encode()
        await client.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n"
            b"connection: close\r\n" + f"content-length: {len(payload)}\r\n\r\n".encode() + payload
        )

    @staticmethod
    async def send_lines(client: anyio.abc.SocketStream, lines: list[Any]) -> None:
        await client.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for line in lines:
            data = ndjson_bytes([line])
            await client.send(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await client.send(b"0\r\n\r\n")

    async def hang_after(self, client: anyio.abc.SocketStream, opening: bytes) -> None:
        await client.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
            + f"{len(opening):x}\r\n".encode()
            + opening
            + b"\r\n"
        )
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            await client.receive()  # it never ends; wait for the client to leave
        self.disconnected.set()

    async def hang(self, client: anyio.abc.SocketStream, model: str) -> None:
        await self.hang_after(client, ndjson_bytes(chat_lines(model=model, text=STORY)[:2]))

    async def pull(self, client: anyio.abc.SocketStream, model: str) -> None:
        if model == "huge":
            await self.hang_after(client, ndjson_bytes(pull_lines()[:2]))
        else:
            await self.send_lines(client, pull_lines())


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
    """No OLLAMA_HOST nor OLLAMA_API_KEY from the developer's environment."""
    for variable in OllamaBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)


async def test_streams_completes_and_answers_health(served: tuple[str, Server]) -> None:
    url, server = served
    async with plugin.create(base_url=url, num_ctx=8192, max_retries=0) as ollama:
        with anyio.fail_after(10):
            stream = await ollama.complete_stream(REQUEST)
            async with stream:
                streamed = await stream.collect()
            completed = await ollama.complete(REQUEST)
            healthy = await ollama.health_check()
    assert streamed.text == STORY
    assert streamed.finish_reason is FinishReason.STOP
    assert streamed.usage == USAGE
    assert stream.model == "llama3.2"
    assert completed.text == STORY
    assert completed.usage == USAGE
    assert healthy is True
    assert [(r.method, r.target) for r in server.requests] == [
        ("POST", "/api/chat"),
        ("POST", "/api/chat"),
        ("GET", "/api/version"),
    ]
    for seen in server.requests:
        assert "authorization" not in seen.headers, "no key, so no authorization header"
        assert seen.headers["host"] == url.removeprefix("http://")
    streamed_body, plain_body = server.requests[0].body, server.requests[1].body
    assert server.requests[0].headers["content-type"] == "application/json"
    assert streamed_body["stream"] is True
    assert plain_body["stream"] is False
    assert streamed_body["options"] == plain_body["options"] == {"num_ctx": 8192}
    gc.collect()  # any generator left suspended would be finalised (and warned about) now


async def test_a_key_and_a_path_prefix_reach_the_server(served: tuple[str, Server]) -> None:
    # A reverse proxy in front of Ollama, at a path, wanting a bearer token.
    url, server = served
    config = OllamaBackendConfig(base_url=f"{url}/ollama/", api_key=SecretStr("proxy-key-42"))
    async with OllamaBackend(config) as ollama:
        with anyio.fail_after(10):
            await ollama.complete(REQUEST)
    (seen,) = server.requests
    assert seen.target == "/ollama/api/chat"
    assert seen.headers["authorization"] == "Bearer proxy-key-42"
    gc.collect()


async def test_a_pull_streams_its_progress(served: tuple[str, Server]) -> None:
    url, server = served
    async with OllamaBackend(OllamaBackendConfig(base_url=url)) as ollama:
        with anyio.fail_after(10):
            events = [event async for event in ollama.pull_model("llama3.2")]
    assert [e.status for e in events] == [line["status"] for line in pull_lines()]
    assert events[-1] == PullProgress("success")
    assert server.requests[0].body == {"model": "llama3.2", "stream": True}
    gc.collect()


async def test_leaving_a_stream_early_hangs_up_and_the_backend_goes_on(
    served: tuple[str, Server],
) -> None:
    url, server = served
    async with OllamaBackend(OllamaBackendConfig(base_url=url)) as ollama:
        with anyio.fail_after(10):
            async with await ollama.complete_stream(HANG) as stream:
                async for chunk in stream:
                    assert chunk.delta == STORY[:8]
                    break
            await server.disconnected.wait()
            response = await ollama.complete(REQUEST)
    assert response.text == STORY
    assert [r.body.get("stream") for r in server.requests] == [True, False]
    gc.collect()


async def test_leaving_a_pull_early_hangs_up_and_the_backend_goes_on(
    served: tuple[str, Server],
) -> None:
    url, server = served
    async with OllamaBackend(OllamaBackendConfig(base_url=url)) as ollama:
        with anyio.fail_after(10):
            pull = ollama.pull_model("huge")
            assert isinstance(pull, AsyncGenerator), "closeable, as its docstring says"
            async with contextlib.aclosing(pull) as pulling:
                async for event in pulling:
                    assert event.status == "pulling manifest"
                    break
            await server.disconnected.wait()
            healthy = await ollama.health_check()
    assert healthy is True
    gc.collect()


async def test_cancelling_a_stream_mid_body_hangs_up_and_leaves_nothing(
    served: tuple[str, Server],
) -> None:
    url, server = served
    async with OllamaBackend(OllamaBackendConfig(base_url=url)) as ollama:
        with anyio.fail_after(10):
            first = anyio.Event()

            async def read_forever() -> None:
                async with await ollama.complete_stream(HANG) as stream:
                    async for _chunk in stream:
                        first.set()

            async with anyio.create_task_group() as group:
                group.start_soon(read_forever)
                await first.wait()
                group.cancel_scope.cancel()
            await server.disconnected.wait()
            response = await ollama.complete(REQUEST)
    assert response.text == STORY
    gc.collect()
