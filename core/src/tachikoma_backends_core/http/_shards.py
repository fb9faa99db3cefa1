"""PoolShards: one connection pool of ``max_connections``, kept as several small pools.

Why: httpcore's pool does its bookkeeping by scanning every request it holds and every
connection it has, each time a request arrives or a response is closed. A pool busy with
1 000 streams therefore pays about 1 000 checks per event of each of them, and the cost
of a stream grows with how many others are open: 5 000 concurrent streams over one pool
cost 7x the CPU of 1 000 (``benchmarks/PROFILE.md``). Cut into shards of
`SHARD_CONNECTIONS`, each scan covers one shard.

What the settings mean does not change: the shards' connections add up to
``max_connections`` and their idle connections to ``max_keepalive_connections``. Each
request goes to the least busy shard (the first of equals, so a lone caller keeps reusing
the same connection), and the `ConnectionGate` in front admits no more requests than
there are connections, so one always has room: no shard ever queues. A shard is built on
its first request (building all 16 of the default pool's took about 8 ms per backend).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["SHARD_CONNECTIONS", "PoolShards", "split"]

#: The most connections one shard holds.
SHARD_CONNECTIONS = 64


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
        kept = split(connections if keepalive is None else keepalive, count)
        self._make = make
        self._limits = [
            httpx.Limits(max_connections=size, max_keepalive_connections=keep)
            for size, keep in zip(split(connections, count), kept, strict=True)
        ]
        self._shards: list[httpx.AsyncBaseTransport | None] = [None] * count
        self._busy = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        busy = self._busy
        index = busy.index(min(busy))
        shard = self._shards[index]
        if shard is None:
            shard = self._shards[index] = self._make(self._limits[index])
        busy[index] += 1
        try:
            response = await shard.handle_async_request(request)
        except BaseException:
            busy[index] -= 1
            raise
        response.stream = _Counted(response.stream, busy, index)
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            if shard is not None:
                await shard.aclose()


class _Counted(httpx.AsyncByteStream):
    """A response body that tells its shard when it is closed (once)."""

    __slots__ = ("_busy", "_index", "_iterator", "_stream")

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, busy: list[int], index: int
    ) -> None:
        self._stream = stream
        self._iterator: AsyncIterator[bytes] | None = None
        self._busy = busy
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
                self._busy[index] -= 1
