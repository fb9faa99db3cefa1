"""HttpConnection over real sockets: the pool it is given is the pool in effect.

A tiny HTTP/1.1 server (anyio, no framework) on 127.0.0.1 counts connections: how many
in all and how many at once. ``POST /stream`` answers the opening line of a stream, then
holds the connection until the client hangs up; ``GET /huge-error`` answers a 500 that
claims a 1 GiB body and writes it until the client hangs up. httpx silently ignores
``limits=`` when a transport is also passed, which left a plugin on httpx's default pool
while it believed it had set its own: these tests would have caught that. Run under
asyncio and trio with warnings as errors, so nothing of httpx's left suspended passes.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.abc
import pytest

from tachikoma_backends_core import BackendTimeoutError, ServerError
from tachikoma_backends_core.http import (
    MAX_ERROR_BODY,
    HttpConnection,
    HttpPluginConfig,
    StreamDecoder,
    error_from_response,
)
from tachikoma_backends_core.streaming import CompletionStream

pytestmark = pytest.mark.anyio

NewDecoder = Callable[[], StreamDecoder]  # a fixture of conftest.py
ONE_GIB = 1 << 30
PIECE = b"x" * 65536


class Config(HttpPluginConfig):
    model: str = "kit-1"


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.error_bytes_sent = 0
        self.hung_up = anyio.Event()

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            async with client:
                while True:  # one connection, several requests (keep-alive)
                    path = await _read_request(client)
                    if path is None:
                        return
                    if path == "/stream":
                        await self._stream(client)
                        return
                    await self._huge_error(client)
                    return
        finally:
            self.open -= 1

    async def _stream(self, client: anyio.abc.SocketStream) -> None:
        opening = b'{"model": "kit-1"}\n{"delta": "Once"}\n'
        await client.send(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
            + f"{len(opening):x}\r\n".encode()
            + opening
            + b"\r\n"
        )
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            await client.receive()  # the story never ends; wait for the client to leave

    async def _huge_error(self, client: anyio.abc.SocketStream) -> None:
        await client.send(
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\n"
            + f"content-length: {ONE_GIB}\r\n\r\n".encode()
        )
        try:
            while self.error_bytes_sent < ONE_GIB:
                await client.send(PIECE)
                self.error_bytes_sent += len(PIECE)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self.hung_up.set()


async def _read_request(client: anyio.abc.SocketStream) -> str | None:
    """The path of the next request (its body skipped), or ``None`` at the end."""
    raw = b""
    try:
        while b"\r\n\r\n" not in raw:
            raw += await client.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        body += await client.receive()
    return lines[0].split(b" ")[1].decode()


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Server]]:
    server = Server()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, server.handle)
        yield f"http://127.0.0.1:{port}", server
        group.cancel_scope.cancel()


def connect(url: str, **settings: Any) -> HttpConnection:
    return HttpConnection(
        Config(base_url=url, **settings),
        provider="kit",
        label="Kit",
        headers={},
        error_from_response=functools.partial(error_from_response, provider="kit"),
    )


async def test_max_connections_streams_open_at_once_and_one_more_waits_its_turn(
    served: tuple[str, Server], new_decoder: NewDecoder
) -> None:
    url, server = served
    connection = connect(url, max_connections=3, max_keepalive_connections=3)

    async def open_stream() -> CompletionStream:
        return await connection.stream("POST", "/stream", decoder=new_decoder(), model="m")

    with anyio.fail_after(10):
        streams = [await open_stream() for _ in range(3)]
        assert (server.open, server.connections) == (3, 3), "N streams, N connections at once"
        late: list[CompletionStream] = []

        async def one_more() -> None:
            late.append(await open_stream())

        async with anyio.create_task_group() as group:
            group.start_soon(one_more)
            await anyio.wait_all_tasks_blocked()
            assert not late, "the N+1th stream must wait for a free connection"
            assert server.connections == 3
            await streams[0].aclose()  # a connection comes free
        assert len(late) == 1, "the waiting stream got the connection that came free"
        for stream in [*streams[1:], *late]:
            await stream.aclose()
        await connection.aclose()
    assert server.connections == 4
    assert server.most_open == 3, "never more connections than max_connections"
    gc.collect()  # any generator left suspended would be finalised (and warned about) now


async def test_running_out_of_connections_is_a_typed_retryable_timeout(
    served: tuple[str, Server], new_decoder: NewDecoder
) -> None:
    url, server = served
    connection = connect(url, max_connections=1, max_keepalive_connections=1, pool_timeout=0.2)
    with anyio.fail_after(10):
        async with await connection.stream(
            "POST", "/stream", decoder=new_decoder(), model="m"
        ) as stream:
            with pytest.raises(BackendTimeoutError) as raised:
                await connection.stream("POST", "/stream", decoder=new_decoder(), model="m")
            assert not stream.closed
        await connection.aclose()
    assert raised.value.retryable is True
    assert raised.value.provider == "kit"
    assert "max_connections=1" in raised.value.message
    assert server.most_open == 1


async def test_a_huge_error_page_is_not_read_whole(served: tuple[str, Server]) -> None:
    url, server = served
    bodies: list[bytes] = []

    def mapping(status: int, headers: Any, body: bytes) -> ServerError:
        bodies.append(body)
        return ServerError(f"HTTP {status}", provider="kit", status_code=status)

    connection = HttpConnection(
        Config(base_url=url), provider="kit", label="Kit", headers={}, error_from_response=mapping
    )
    with anyio.fail_after(10):
        with pytest.raises(ServerError):
            await connection.read("GET", "/huge-error")
        await server.hung_up.wait()
        await connection.aclose()
    assert [len(body) for body in bodies] == [MAX_ERROR_BODY]
    # What the server got out before the hang-up: the cap plus socket buffers, not 1 GiB.
    assert server.error_bytes_sent < 64 * 1024 * 1024, server.error_bytes_sent
    gc.collect()
