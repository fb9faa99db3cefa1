"""Over a real socket: leaving a stream early closes the connection, and leaves nothing behind.

A tiny HTTP/1.1 server (anyio, no framework) answers ``POST /v1/messages``: a streamed
request gets the opening events of an answer, then the server waits for the client to
hang up; a plain request gets a whole message. Run under asyncio and trio with warnings
as errors, so a generator of httpx's left suspended (trio warns about those) fails it.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import pytest
from pydantic import SecretStr

from tachikoma_backend_claude import ClaudeBackend, ClaudeBackendConfig
from tachikoma_backend_claude._scripting import message_body, message_events, sse_bytes
from tachikoma_backends_core import CompletionRequest, Message

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest(messages=[Message.user("Tell me a long story")])


class Server:
    def __init__(self) -> None:
        self.disconnected = anyio.Event()
        self.half_sent = anyio.Event()
        self.requests: list[dict[str, object]] = []

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += await client.receive()
            head, _, body = raw.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += await client.receive()
            request = json.loads(body)
            self.requests.append(request)
            if request["messages"][0]["content"][0]["text"] == "hang":
                # Half a body, then nothing: the client's complete() waits for the rest.
                await client.send(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b'content-length: 1000\r\n\r\n{"type": "message", '
                )
                self.half_sent.set()
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    await client.receive()
                self.disconnected.set()
                return
            if not request.get("stream"):
                payload = json.dumps(message_body(model=request["model"], text="The end.")).encode()
                await client.send(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                return
            opening = sse_bytes(message_events(model=request["model"], text="Once upon a time")[:4])
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
async def base_url() -> AsyncIterator[tuple[str, Server]]:
    server = Server()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, server.handle)
        yield f"http://127.0.0.1:{port}", server
        group.cancel_scope.cancel()


async def test_leaving_a_stream_early_hangs_up_and_the_backend_goes_on(
    base_url: tuple[str, Server],
) -> None:
    url, server = base_url
    config = ClaudeBackendConfig(api_key=SecretStr("sk-ant-socket-test"), base_url=url)
    async with ClaudeBackend(config) as backend:
        with anyio.fail_after(10):
            async with await backend.complete_stream(REQUEST) as stream:
                async for chunk in stream:
                    assert chunk.delta == "Once upo"
                    break
            await server.disconnected.wait()
            response = await backend.complete(REQUEST)
    assert response.text == "The end."
    assert [r.get("stream", False) for r in server.requests] == [True, False]
    gc.collect()  # any generator left suspended would be finalised (and warned about) now


async def test_cancelling_complete_mid_body_hangs_up_and_leaves_nothing(
    base_url: tuple[str, Server],
) -> None:
    url, server = base_url
    config = ClaudeBackendConfig(api_key=SecretStr("sk-ant-socket-test"), base_url=url)
    async with ClaudeBackend(config) as backend:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(
                    backend.complete, CompletionRequest(messages=[Message.user("hang")])
                )
                await server.half_sent.wait()
                group.cancel_scope.cancel()
            await server.disconnected.wait()
            response = await backend.complete(REQUEST)
    assert response.text == "The end."
    gc.collect()
