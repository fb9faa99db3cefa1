"""The pool in front of httpx: calls beyond max_connections queue in order, and a big pool
is kept as small shards whose limits add up to the configured ones."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from tachikoma_backends_core.http import HttpConnection, HttpPluginConfig, error_from_response
from tachikoma_backends_core.http._gate import ConnectionGate
from tachikoma_backends_core.http._shards import SHARD_CONNECTIONS, PoolShards, split
from tachikoma_backends_core.http.wire_server import WireServer, response

pytestmark = pytest.mark.anyio


class Config(HttpPluginConfig):
    base_url: str = "http://127.0.0.1:1"
    model: str = "m"


async def test_the_gate_admits_up_to_its_limit_then_serves_in_arrival_order() -> None:
    gate = ConnectionGate(2, timeout=10)
    await gate.enter()
    await gate.enter()
    admitted: list[int] = []

    async def wait(number: int) -> None:
        await gate.enter()
        admitted.append(number)

    async with anyio.create_task_group() as group:
        for number in range(3):
            group.start_soon(wait, number)
            await anyio.wait_all_tasks_blocked()
        assert (admitted, gate.waiting) == ([], 3)
        for expected in ([0], [0, 1], [0, 1, 2]):
            gate.leave()
            await anyio.wait_all_tasks_blocked()
            assert admitted == expected


async def test_take_gets_a_free_slot_without_waiting_and_never_jumps_the_line() -> None:
    gate = ConnectionGate(1, timeout=10)
    assert gate.take()
    assert not gate.take()  # none free
    got: list[bool] = []

    async def wait() -> None:
        await gate.enter()
        got.append(True)

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        gate.leave()  # handed to the waiter, not left free
        assert not gate.take()
    assert got == [True]


async def test_a_wait_past_the_timeout_is_httpx_pool_timeout_and_leaves_the_line() -> None:
    gate = ConnectionGate(1, timeout=0.05)
    await gate.enter()
    with pytest.raises(httpx.PoolTimeout):
        await gate.enter()
    assert gate.waiting == 0
    gate.leave()
    with anyio.fail_after(1):
        await gate.enter()  # the slot came back: no wait


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    gate = ConnectionGate(1, timeout=10)
    await gate.enter()
    with anyio.move_on_after(0.01):
        await gate.enter()
    assert gate.waiting == 0
    gate.leave()
    with anyio.fail_after(1):
        await gate.enter()


class Body(httpx.AsyncByteStream):
    """A streamed body, as the network's are (a body given whole is never closed)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"ok"


async def test_shards_add_up_to_the_configured_limits_and_are_built_when_used() -> None:
    made: list[httpx.Limits] = []

    def make(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
        made.append(limits)
        return httpx.MockTransport(lambda request: httpx.Response(200, stream=Body()))

    shards = PoolShards(make, httpx.Limits(max_connections=1000, max_keepalive_connections=100))
    limits = shards._limits
    assert len(limits) == -(-1000 // SHARD_CONNECTIONS)
    assert sum(limit.max_connections or 0 for limit in limits) == 1000
    assert sum(limit.max_keepalive_connections or 0 for limit in limits) == 100
    assert all(
        (limit.max_connections or 0) <= SHARD_CONNECTIONS
        and (limit.max_keepalive_connections or 0) <= (limit.max_connections or 0)
        for limit in limits
    )
    assert made == [], "no shard before its first request"
    for _ in range(3):  # one caller after another: the same shard, reused
        answer = await shards.handle_async_request(httpx.Request("GET", "http://x/"))
        await answer.aread()
        await answer.aclose()
    assert made == [limits[0]]
    held = await shards.handle_async_request(httpx.Request("GET", "http://x/"))
    await shards.handle_async_request(httpx.Request("GET", "http://x/"))
    assert made == limits[:2], "a second caller at once goes to the least busy shard"
    await held.aclose()
    await shards.aclose()
    assert split(10, 3) == [4, 3, 3]


async def test_more_calls_than_connections_all_complete_through_the_shards() -> None:
    def answer(_: Any) -> list[bytes]:
        return [response(200, {"content-type": "application/json"}, b"{}")]

    with WireServer(answer) as server:
        connection = HttpConnection(
            Config(base_url=server.url, max_connections=SHARD_CONNECTIONS + 6),
            provider="kit",
            label="Kit",
            headers={},
            error_from_response=functools.partial(error_from_response, provider="kit"),
        )
        assert isinstance(connection.client._transport, PoolShards)
        bodies: list[bytes] = []

        async def call() -> None:
            bodies.append(await connection.read("POST", "/x", json={}))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                for _ in range(3 * SHARD_CONNECTIONS):
                    group.start_soon(call)
        await connection.aclose()
    assert bodies == [b"{}"] * (3 * SHARD_CONNECTIONS)
