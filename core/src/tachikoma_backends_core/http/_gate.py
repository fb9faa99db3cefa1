"""ConnectionGate: the requests past it are at most the pool's connections; the rest queue.

Why our own queue in front of httpx's pool: httpcore's pool keeps every waiting request
in one list and, each time a request arrives or a response is closed, scans the whole
list (and every connection) to hand out connections. With ``n`` requests waiting that is
``O(n)`` per event, so ``n`` streams over a pool of ``max_connections`` cost ``O(n²)``:
5 000 concurrent streams over the default 1 000 connections spent more than half their
CPU in that scan (``benchmarks/PROFILE.md``). The gate admits at most ``max_connections``
requests to the pool, so the pool never holds a queue, and keeps the others waiting in a
FIFO whose cost per request is constant: one entry, one wake-up.

Uncontended, `ConnectionGate.take` is a counter decrement, with no ``await`` (the send
that follows is the checkpoint). A request waits at most ``pool_timeout``, then gets
httpx's own ``PoolTimeout``, which the connection types as for a pool that ran out.
The slot is given back by `ConnectionGate.leave` when the response is released, and
handed straight to the first waiter, so nobody overtakes the queue.
"""

from __future__ import annotations

from collections import deque

import anyio
import httpx

__all__ = ["ConnectionGate"]


class ConnectionGate:
    """At most ``limit`` holders at once; the others wait in arrival order.

    Args:
        limit: how many may hold a slot at once (the pool's ``max_connections``).
        timeout: the longest wait for a slot, in seconds (the pool timeout).
    """

    __slots__ = ("_free", "_limit", "_timeout", "_waiters")

    def __init__(self, limit: int, timeout: float) -> None:
        self._limit = limit
        self._free = limit
        self._timeout = timeout
        self._waiters: deque[anyio.Event] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def admitted(self) -> int:
        """The slots held: calls past the gate, and those handed a slot not yet awake."""
        return self._limit - self._free

    def take(self) -> bool:
        """Take a free slot if there is one and nobody is waiting; whether one was taken.

        The uncontended path without an ``await`` (`enter` waits when this says no).
        """
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def enter(self) -> None:
        """Take a slot, waiting in line for one if none is free.

        Raises:
            httpx.PoolTimeout: no slot came free within the timeout.
        """
        if self.take():
            return
        ready = anyio.Event()
        self._waiters.append(ready)
        try:
            with anyio.move_on_after(self._timeout):
                await ready.wait()
        except BaseException:
            self._give_up(ready)
            raise
        if not ready.is_set():
            self._give_up(ready)
            raise httpx.PoolTimeout(f"no connection came free within {self._timeout:g} s")

    def leave(self) -> None:
        """Give a slot back: to the first in line, else to the pool of free slots."""
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._free += 1

    def _give_up(self, ready: anyio.Event) -> None:
        if ready.is_set():  # handed a slot in the same instant: pass it on
            self.leave()
        else:
            self._waiters.remove(ready)
