"""A blocking facade over any backend, for scripts and notebooks without an event loop.

Same behaviour as the async API (same types, same errors); the async backend runs on an
event loop in a background daemon thread, so forgetting `SyncBackend.close` can
never hang the interpreter at exit.

Examples:
    >>> from tachikoma_backends_core import sync, CompletionRequest, Message
    >>> with sync.create("mock") as backend:  # doctest: +SKIP
    ...     print(backend.complete(CompletionRequest(messages=[Message.user("Hi")])).text)
    Mock response
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from .backend import Backend, BackendInfo
from .completion import CompletionChunk, CompletionRequest, CompletionResponse
from .errors import BackendError
from .streaming import CompletionStream

__all__ = ["SyncBackend", "SyncCompletionStream", "create"]

_T = TypeVar("_T")
_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 30.0
_END_OF_STREAM: Any = object()


class _EventLoopThread:
    """An anyio event loop in a daemon thread, driven through a blocking portal."""

    def __init__(self, async_backend: str) -> None:
        handoff: queue.Queue[BlockingPortal | BaseException] = queue.Queue(maxsize=1)

        async def serve() -> None:
            async with BlockingPortal() as portal:
                handoff.put(portal)
                await portal.sleep_until_stopped()

        def run() -> None:
            try:
                anyio.run(serve, backend=async_backend)
            except BaseException as exc:  # reported to the thread that waits on handoff
                handoff.put(exc)

        self._thread = threading.Thread(target=run, name="tachikoma-sync-loop", daemon=True)
        self._thread.start()
        started = handoff.get(timeout=_START_TIMEOUT_SECONDS)
        if isinstance(started, BaseException):
            raise started
        self.portal = started

    def call(self, func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        return self.portal.call(func, *args)

    def stop(self) -> None:
        self.portal.call(self.portal.stop)
        self._thread.join(timeout=_STOP_TIMEOUT_SECONDS)


class SyncCompletionStream:
    """Blocking iterator over a `CompletionStream`; also a context manager."""

    def __init__(self, loop: _EventLoopThread, stream: CompletionStream) -> None:
        self._loop = loop
        self._stream = stream

    def __iter__(self) -> Iterator[CompletionChunk]:
        return self

    def __next__(self) -> CompletionChunk:
        async def next_chunk() -> Any:
            try:
                return await self._stream.__anext__()
            except StopAsyncIteration:
                return _END_OF_STREAM

        chunk = self._loop.call(next_chunk)
        if chunk is _END_OF_STREAM:
            raise StopIteration
        return chunk  # type: ignore[no-any-return]

    def collect(self) -> CompletionResponse:
        """Read the rest; return the whole response (see ``CompletionStream.collect``)."""
        return self._loop.call(self._stream.collect)

    def close(self) -> None:
        self._loop.call(self._stream.aclose)

    def __enter__(self) -> SyncCompletionStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class SyncBackend:
    """Blocking access to ``backend``. Close it (or use ``with``) to stop its loop thread.

    ``async_backend`` picks the event loop the backend runs on: ``"asyncio"`` or ``"trio"``.
    """

    def __init__(self, backend: Backend, *, async_backend: str = "asyncio") -> None:
        self._backend = backend
        self._loop = _EventLoopThread(async_backend)
        self._closed = False

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def info(self) -> BackendInfo:
        return self._backend.info

    def _call(self, func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        if self._closed:
            raise BackendError(f"{self!r} is closed")
        return self._loop.call(func, *args)

    def complete(self, request: CompletionRequest) -> CompletionResponse:
        return self._call(self._backend.complete, request)

    def complete_stream(self, request: CompletionRequest) -> SyncCompletionStream:
        return SyncCompletionStream(self._loop, self._call(self._backend.complete_stream, request))

    def health_check(self) -> bool:
        return self._call(self._backend.health_check)

    def close(self) -> None:
        """Close the backend and stop the loop thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.call(self._backend.aclose)
        finally:
            self._loop.stop()

    def __enter__(self) -> SyncBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SyncBackend {self._backend!r}>"


def create(name: str, /, *, async_backend: str = "asyncio", **config: Any) -> SyncBackend:
    """A blocking backend of plugin ``name``: ``sync.create("mock")``."""
    from . import registry

    return SyncBackend(registry.create(name, **config), async_backend=async_backend)
