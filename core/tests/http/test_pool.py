"""The pool in front of httpx: calls beyond max_connections queue in order, and a big pool
is kept as small shards whose connections add up to the configured ones, reused under load
and kept idle within max_keepalive_connections."""

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
    # Each shard keeps its own connections; the pool trims to the budget of 100 itself.
    assert shards.keepalive == 100
    assert all(
        0 < (limit.max_connections or 0) <= SHARD_CONNECTIONS
        and limit.max_keepalive_connections == limit.max_connections
        for limit in limits
    )
    keeping_none = PoolShards(make, httpx.Limits(max_connections=20, max_keepalive_connections=0))
    assert [limit.max_keepalive_connections for limit in keeping_none._limits] == [0, 0, 0]
    assert made == [], "no shard before its first request"
    for _ in range(3):  # one caller after another: the same shard, reused
        answer = await shards.handle_async_request(httpx.Request("GET", "http://x/"))
        await answer.aread()
        await answer.aclose()
    assert made == [limits[0]]
    held = [
        await shards.handle_async_request(httpx.Request("GET", "http://x/"))
        for _ in range(SHARD_CONNECTIONS)
    ]
    assert made == [limits[0]], "callers at once fill the first shard"
    held.append(await shards.handle_async_request(httpx.Request("GET", "http://x/")))
    assert made == limits[:2], "the first shard full, the next call goes to the second"
    await held[0].aclose()
    held.append(await shards.handle_async_request(httpx.Request("GET", "http://x/")))
    assert shards._busy[:2] == [SHARD_CONNECTIONS, 1], "a freed connection is used first"
    for answer in held[1:]:
        await answer.aclose()
    assert shards._busy[:2] == [0, 0]
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


def _answer_json(_: Any) -> list[bytes]:
    return [response(200, {"content-type": "application/json"}, b"{}")]


def _kit(server: WireServer, **settings: Any) -> HttpConnection:
    return HttpConnection(
        Config(base_url=server.url, **settings),
        provider="kit",
        label="Kit",
        headers={},
        error_from_response=functools.partial(error_from_response, provider="kit"),
    )


async def _settle(server: WireServer, at_most: int) -> int:
    """The server's open connections, once they are at most ``at_most`` (or 5 s passed):
    a socket the client closed is seen closed by the server a moment later."""
    with anyio.move_on_after(5):
        while server.open_connections > at_most:  # noqa: ASYNC110 - the server's thread
            await anyio.sleep(0.01)
    return server.open_connections


async def test_under_load_a_finished_connection_is_reused_not_closed_and_reopened() -> None:
    """More calls in flight than max_keepalive_connections: each connection that finishes
    an answer serves the next call. (httpcore alone closes it, as its pool then holds
    more connections than its keep-alive limit, and the next call opens a new one.)"""
    connections, keepalive, callers, calls_each = 4 * SHARD_CONNECTIONS, 2, 64, 6
    with WireServer(_answer_json) as server:
        connection = _kit(server, max_connections=connections, max_keepalive_connections=keepalive)

        async def caller() -> None:
            for _ in range(calls_each):
                assert await connection.read("POST", "/x", json={}) == b"{}"

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for _ in range(callers):  # twice the connections: a queue at the gate
                    group.start_soon(caller)
        opened = server.connections
        kept = await _settle(server, keepalive)
        await connection.aclose()
    # Each connection opened about once (a few more: as the callers finish one by one the
    # surplus is trimmed, and a call after a trim may open one again), where closing
    # every finished connection opens one per call.
    assert connections <= opened <= 2 * connections < callers * calls_each, opened
    assert kept <= keepalive, f"{kept} idle connections kept, the budget is {keepalive}"


async def test_idle_connections_beyond_the_keepalive_budget_are_closed_once_calls_end() -> None:
    connections, keepalive = 3 * SHARD_CONNECTIONS, 5
    with WireServer(_answer_json) as server:
        connection = _kit(server, max_connections=connections, max_keepalive_connections=keepalive)
        release, all_started = anyio.Event(), anyio.Event()
        started = 0

        async def slow_call() -> None:
            nonlocal started
            async with await connection.events("GET", "/x", parser=_Whole()) as events:
                started += 1
                if started == connections:
                    all_started.set()
                await release.wait()
                async for _ in events:
                    pass

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for _ in range(connections):  # every connection busy at once
                    group.start_soon(slow_call)
                await all_started.wait()
                assert server.open_connections == connections
                release.set()
            kept = await _settle(server, keepalive)
            # The connections kept are reused: a burst as large again opens only the rest.
            before = server.connections
            async with anyio.create_task_group() as group:
                for _ in range(keepalive):
                    group.start_soon(functools.partial(connection.read, "POST", "/x", json={}))
            reopened = server.connections - before
        await connection.aclose()
    assert kept == keepalive
    assert reopened == 0


class _Whole:
    """A parser that makes the whole body one event."""

    def __init__(self) -> None:
        self._body = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._body += chunk
        return []

    def close(self) -> list[bytes]:
        return [self._body]
