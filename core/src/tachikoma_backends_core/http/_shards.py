"""PoolShards: one connection pool of ``max_connections``, kept as several small pools.

Why: httpcore's pool does its bookkeeping by scanning every request it holds and every
connection it has, each time a request arrives or a response is closed. A pool busy with
1 000 streams therefore pays about 1 000 checks per event of each of them, and the cost
of a stream grows with how many others are open: 5 000 concurrent streams over one pool
cost 7x the CPU of 1 000 (``benchmarks/PROFILE.md``). Cut into shards of
`SHARD_CONNECTIONS`, each scan covers one shard.

Each request goes to the first shard with a connection to spare, so calls reuse the
connections of the first shards (a lone caller always the same one), and the
`ConnectionGate` in front admits no more requests than there are connections, so one
always has room: no shard ever queues. A shard is built on its first request.

Keep-alive is counted here, for the whole pool, not by each shard. httpcore closes an
idle connection whenever its pool holds more connections than its keep-alive limit (it
counts them all, busy or not), before it hands that connection to anyone waiting. With
the budget split among shards (100 idle over 16 shards of 64), every connection that
finished an answer under load was closed, and the next call opened a new one: 10 000
streams through 1 000 connections made about 9 700 TCP connections, whose set-up was
most of what the garbage collector had to walk. So each shard keeps its own connections
alive, a finished connection goes straight to the next call, and the pool closes the idle
connections beyond ``max_keepalive_connections`` itself (`PoolShards.trim_idle`, which
the connection calls on each release that `PoolShards.over_budget` says leaves enough
surplus: under load a quarter of the budget, and any once no call is admitted).
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

__all__ = ["SHARD_CONNECTIONS", "PoolShards", "split"]

#: The most connections one shard holds: httpcore's bookkeeping scans a shard's
#: connections (and, for each idle one, all of them again) at every request and release.
SHARD_CONNECTIONS = 8


def split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` near-equal whole shares, largest first."""
    base, extra = divmod(total, parts)
    return [base + (index < extra) for index in range(parts)]


class PoolShards(httpx.AsyncBaseTransport):
    """A transport made of several pools, as one; see the module docstring.

    Args:
        make: builds one shard's transport from its limits.
        limits: the limits of the whole (``max_connections`` must be set).
    """

    def __init__(
        self, make: Callable[[httpx.Limits], httpx.AsyncBaseTransport], limits: httpx.Limits
    ) -> None:
        connections = limits.max_connections or SHARD_CONNECTIONS
        count = -(-connections // SHARD_CONNECTIONS)
        keepalive = limits.max_keepalive_connections
        self.keepalive = connections if keepalive is None else min(keepalive, connections)
        self._make = make
        # A shard keeps every connection it has (none kept at all if the pool keeps none):
        # the pool as a whole trims the idle ones beyond its budget.
        self._sizes = split(connections, count)
        self._limits = [
            httpx.Limits(
                max_connections=size,
                max_keepalive_connections=size if self.keepalive else 0,
                keepalive_expiry=limits.keepalive_expiry,
            )
            for size in self._sizes
        ]
        self._shards: list[httpx.AsyncBaseTransport | None] = [None] * count
        self._busy = [0] * count
        # The shards with a connection to spare, as a heap: the first of them is used.
        self._roomy = list(range(count))
        self._in_flight = 0
        # At least as many connections as are open: each one was opened for a call.
        self._open_at_most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        roomy = self._roomy
        if not roomy:  # the gate in front admits no more than there are connections
            raise httpx.PoolTimeout("every shard of the pool is busy")
        index = roomy[0]
        shard = self._shards[index]
        if shard is None:
            shard = self._shards[index] = self._make(self._limits[index])
        busy = self._busy
        busy[index] += 1
        if busy[index] == self._sizes[index]:
            heapq.heappop(roomy)
        self._in_flight += 1
        if self._in_flight > self._open_at_most:
            self._open_at_most = self._in_flight
        try:
            response = await shard.handle_async_request(request)
        except BaseException:
            self._finished(index)
            raise
        response.stream = _Counted(response.stream, self, index)
        return response

    def _finished(self, index: int) -> None:
        """A response of shard ``index`` was closed: its connection is free again."""
        busy = self._busy
        if busy[index] == self._sizes[index]:
            heapq.heappush(self._roomy, index)
        busy[index] -= 1
        self._in_flight -= 1

    def over_budget(self, admitted: int) -> bool:
        """Whether idle connections may exceed the keep-alive budget enough to trim now.

        ``admitted``: the calls holding a connection or about to (the gate's), whose
        connections are not idle, or will not stay idle. A trim walks every connection,
        so under load it waits for a quarter of the budget of surplus; once nothing is
        admitted the pool is quiet, and any surplus goes.
        """
        surplus = self._open_at_most - max(admitted, self._in_flight) - self.keepalive
        return surplus > 0 and (admitted == 0 or surplus > self.keepalive // 4)

    async def trim_idle(self) -> int:
        """Close the idle connections beyond the keep-alive budget; how many were closed.

        The last shards' go first: calls go to the first shards with a connection to spare.
        """
        open_connections = 0
        idle: list[Any] = []
        for connections in self._connections():
            open_connections += len(connections)
            idle.extend(connection for connection in connections if connection.is_idle())
        closed = 0
        for connection in reversed(idle[self.keepalive :] if self.keepalive else idle):
            # Checked again: while an earlier one closed, a call may have taken this one.
            # (One the pool handed out but that is not yet busy is closed all the same;
            # httpcore then gives its call another connection.)
            if connection.is_idle():
                await connection.aclose()
                closed += 1
        self._open_at_most = max(open_connections - closed, self._in_flight)
        return closed

    def _connections(self) -> Iterator[list[Any]]:
        """Each built shard's connections (httpcore's), where the shard lets us see them.

        httpx keeps a transport's httpcore pool in ``_pool``; a transport without one (a
        mock, another kind) is left to its own keep-alive rules.
        """
        for shard in self._shards:
            pool = getattr(shard, "_pool", None)
            connections = getattr(pool, "connections", None)
            if isinstance(connections, list):
                yield connections

    async def aclose(self) -> None:
        for shard in self._shards:
            if shard is not None:
                await shard.aclose()


class _Counted(httpx.AsyncByteStream):
    """A response body that tells its shard when it is closed (once)."""

    __slots__ = ("_index", "_iterator", "_shards", "_stream")

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, shards: PoolShards, index: int
    ) -> None:
        self._stream = stream
        self._iterator: AsyncIterator[bytes] | None = None
        self._shards = shards
        self._index = index

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        # A plain iterator over the shard's own, so no generator of ours is left suspended.
        if self._iterator is None:
            self._iterator = self._stream.__aiter__()  # type: ignore[union-attr]
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        index, self._index = self._index, -1
        try:
            await self._stream.aclose()  # type: ignore[union-attr]
        finally:
            if index >= 0:
                self._shards._finished(index)
