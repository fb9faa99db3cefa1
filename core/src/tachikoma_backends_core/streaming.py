"""Streams of completion chunks, and how they add up to a response.

A `CompletionStream` wraps whatever async iterator a backend produces and gives
every backend the same guarantees:

* it is an async iterator *and* an async context manager; leaving the block, breaking out,
  exhausting it or failing all close the upstream (HTTP response, permits) exactly once;
* every failure during iteration is a ``BackendError`` (anything else becomes a
  ``StreamProtocolError`` with the original as its cause);
* a stream that ends without a chunk carrying ``finish_reason`` is truncated, and says so;
  a chunk after that final one, or a tool call renamed mid-stream, is a
  ``StreamProtocolError`` too (the lifecycle the conformance suite checks, held at run time);
* ``await stream.collect()`` returns the whole response, including chunks already read;
* ``stream.usage`` is the usage so far: the final one once it arrived, before that what
  the provider reported early (e.g. Anthropic's input tokens at the start), so a
  cancelled stream still accounts for what it cost.

The per-chunk cost is one call into the upstream iterator plus a few attribute updates;
nothing is validated per chunk.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

import anyio
import anyio.lowlevel

from .completion import CompletionChunk, CompletionResponse, FinishReason, Usage
from .errors import BackendError, StreamProtocolError
from .tool_calls import ToolCall

__all__ = ["CompletionStream", "MissingUsageWarning", "StreamAccumulator"]

# Closing upstream resources must not hang a cancelled task forever.
_CLOSE_TIMEOUT_SECONDS = 10.0
# How many text deltas a stream keeps as separate strings before joining them.
_DELTAS_PER_BLOCK = 64


class MissingUsageWarning(UserWarning):
    """A stream finished without usage: its response's ``Usage(0, 0)`` is not a count."""


class StreamAccumulator:
    """Adds chunks up into a `CompletionResponse`.

    Tool-call fragments are joined by ``index``: the first fragment that carries an ``id``
    or ``name`` fixes it, ``arguments_delta`` pieces are concatenated in order.

    It holds the stream to the parts of its lifecycle that would otherwise make the
    chunks a caller rendered disagree with the response: nothing comes after the final
    chunk (the one with ``finish_reason``), and a tool call's fragments never change its
    id or name. Either is a typed error where it happens. Each check is one comparison
    on a field the chunk already carries. (Usage before the finish is left to the
    conformance suite: contract 1 allowed it, and the last usage counts anyway.)
    """

    __slots__ = (
        "_calls",
        "_refusal",
        "_text",
        "_text_blocks",
        "_thinking",
        "finish_reason",
        "model",
        "provider",
        "usage",
    )

    def __init__(self, model: str, provider: str | None = None) -> None:
        self.model = model
        self.provider = provider
        # The text as blocks of `_DELTAS_PER_BLOCK` deltas joined, and the deltas since:
        # a string object costs 49 bytes on top of its few characters, so a stream kept
        # every delta would hold about 11 KB per 200 tokens, and a thousand streams 11 MB.
        self._text: list[str] = []
        self._text_blocks: list[str] = []
        self._refusal: list[str] = []
        self._thinking: list[str] = []
        self._calls: dict[int, tuple[list[str | None], list[str]]] = {}
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None

    def add(self, chunk: CompletionChunk) -> None:
        """Add ``chunk``; `StreamProtocolError` if it breaks the stream's lifecycle."""
        if self.finish_reason is not None:
            raise StreamProtocolError(
                "a chunk came after the final chunk (the stream finished twice, or went on "
                "after its finish): the plugin broke the stream's lifecycle",
                provider=self.provider,
            )
        if chunk.delta:
            text = self._text
            text.append(chunk.delta)
            if len(text) == _DELTAS_PER_BLOCK:
                self._text_blocks.append("".join(text))
                text.clear()
        if chunk.refusal:
            self._refusal.append(chunk.refusal)
        if chunk.thinking:
            self._thinking.append(chunk.thinking)
        for delta in chunk.tool_call_deltas:
            entry = self._calls.get(delta.index)
            if entry is None:
                entry = self._calls[delta.index] = ([None, None], [])
            ident = entry[0]
            if delta.id and ident[0] != delta.id:
                if ident[0] is not None:
                    self._renamed(delta.index, "id", ident[0], delta.id)
                ident[0] = delta.id
            if delta.name and ident[1] != delta.name:
                if ident[1] is not None:
                    self._renamed(delta.index, "name", ident[1], delta.name)
                ident[1] = delta.name
            if delta.arguments_delta:
                entry[1].append(delta.arguments_delta)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason

    def _renamed(self, index: int, what: str, before: str, now: str) -> None:
        raise StreamProtocolError(
            f"tool call #{index} changed its {what} from {before!r} to {now!r} mid-stream",
            provider=self.provider,
        )

    @property
    def text(self) -> str:
        return "".join(self._text_blocks) + "".join(self._text)

    def tool_calls(self) -> list[ToolCall]:
        calls = []
        for index in sorted(self._calls):
            (call_id, name), arguments = self._calls[index]
            if not call_id or not name:
                raise StreamProtocolError(
                    f"streamed tool call #{index} never received its "
                    f"{'id' if not call_id else 'name'}",
                    provider=self.provider,
                )
            calls.append(ToolCall(id=call_id, name=name, arguments="".join(arguments)))
        return calls

    def response(self) -> CompletionResponse:
        """The response so far; raises ``StreamProtocolError`` if no finish was seen."""
        if self.finish_reason is None:
            raise StreamProtocolError(
                "the stream ended without a finish reason (truncated?)", provider=self.provider
            )
        return CompletionResponse(
            content=self.text,
            tool_calls=self.tool_calls(),
            finish_reason=self.finish_reason,
            usage=self.usage or Usage(),
            model=self.model,
            refusal="".join(self._refusal) or None,
            thinking="".join(self._thinking) or None,
        )


class CompletionStream:
    """The chunks of one streamed completion. See the module docstring for guarantees.

    Examples:
        >>> async def show(backend, request):
        ...     async with await backend.complete_stream(request) as stream:
        ...         async for chunk in stream:
        ...             print(chunk.delta, end="")
        ...     return await stream.collect()
    """

    __slots__ = (
        "_accumulator",
        "_amend",
        "_chunks",
        "_closed",
        "_exhausted",
        "_on_close",
        "_usage_so_far",
        "_warned_no_usage",
    )

    def __init__(
        self,
        chunks: AsyncIterator[CompletionChunk],
        *,
        model: str,
        provider: str | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        usage_so_far: Callable[[], Usage | None] | None = None,
    ) -> None:
        """Wrap ``chunks``.

        Args:
            chunks: the backend's chunk iterator; closed (``aclose``) with the stream.
            model: the model answering (for the collected response).
            provider: the backend's name, for errors.
            on_close: awaited once when the stream closes (release a connection, a permit).
            usage_so_far: what the provider reported before the final usage, if anything;
                read by `usage` until the final usage arrives.
        """
        self._chunks = chunks
        self._on_close = on_close
        self._usage_so_far = usage_so_far
        self._warned_no_usage = False
        self._closed = False
        self._exhausted = False
        self._amend: Callable[[CompletionChunk], CompletionChunk] | None = None
        self._accumulator = StreamAccumulator(model, provider)

    @classmethod
    def from_chunks(
        cls, chunks: Iterable[CompletionChunk], *, model: str, provider: str | None = None
    ) -> CompletionStream:
        """A stream over ready-made chunks, yielding to the event loop between them."""

        async def produce() -> AsyncIterator[CompletionChunk]:
            for chunk in chunks:
                await anyio.lowlevel.checkpoint()
                yield chunk

        return cls(produce(), model=model, provider=provider)

    @property
    def model(self) -> str:
        return self._accumulator.model

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def exhausted(self) -> bool:
        """Whether the stream was read to its end, its finish included, without failing."""
        return self._exhausted

    @property
    def reported_usage(self) -> Usage | None:
        """The usage a chunk carried (the final one's), ``None`` before; unlike `usage`,
        never what the provider reported before it."""
        return self._accumulator.usage

    def amend_chunks(self, amend: Callable[[CompletionChunk], CompletionChunk]) -> None:
        """Hand out (and add up) ``amend(chunk)`` in place of each chunk still to come.

        For chunk hooks with nothing else to do per stream: they cost what ``amend``
        costs, where a stream over this one would add its own step to every chunk.
        ``amend`` must not raise (`Hooks.chunk_caller`'s logs what its hooks raise).
        """
        self._amend = amend

    def add_on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Also await ``callback`` when the stream closes, after what closes it already.

        For a wrapper with nothing to do per chunk (release a permit, say): it adds no
        cost to each chunk, as a stream over this one would. Refused once closed.
        """
        if self._closed:
            raise RuntimeError("the stream is already closed")
        first = self._on_close

        async def then() -> None:
            try:
                if first is not None:
                    await first()
            finally:
                await callback()

        self._on_close = then

    @property
    def usage(self) -> Usage | None:
        """The final usage once it arrived; before that, what the provider reported so far."""
        if self._accumulator.usage is not None:
            return self._accumulator.usage
        return self._usage_so_far() if self._usage_so_far is not None else None

    def __aiter__(self) -> CompletionStream:
        return self

    async def __anext__(self) -> CompletionChunk:
        if self._closed:
            raise StopAsyncIteration
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._exhausted = self._accumulator.finish_reason is not None
            await self.aclose()
            if not self._exhausted:
                raise StreamProtocolError(
                    "the stream ended before the provider finished it (no finish reason)",
                    provider=self._accumulator.provider,
                ) from None
            raise
        except BackendError:
            await self.aclose()
            raise
        except Exception as exc:
            await self.aclose()
            raise StreamProtocolError(
                f"unexpected {type(exc).__name__} while reading the stream: {exc}",
                provider=self._accumulator.provider,
            ) from exc
        try:
            if self._amend is not None:
                chunk = self._amend(chunk)
            self._accumulator.add(chunk)
        except BackendError:
            await self.aclose()
            raise
        return chunk

    async def collect(self) -> CompletionResponse:
        """Read the rest of the stream; return the whole response (earlier chunks too).

        A stream that finished without any usage collects as ``Usage(0, 0)``, with a
        `MissingUsageWarning` (once per stream): the plugin dropped the provider's usage,
        or the provider was asked without it.
        """
        async for _ in self:
            pass
        response = self._accumulator.response()
        if self._accumulator.usage is None and not self._warned_no_usage:
            # Usage(0, 0) would pass for a real count: say it is not one.
            self._warned_no_usage = True
            warnings.warn(
                MissingUsageWarning(
                    f"the {self._accumulator.provider or 'backend'} stream finished without "
                    "reporting usage: its response says Usage(0, 0); a plugin must put the "
                    "provider's usage on the final chunk"
                ),
                stacklevel=2,
            )
        return response

    async def aclose(self) -> None:
        """Close the upstream; idempotent, shielded from cancellation, bounded in time."""
        if self._closed:
            return
        self._closed = True
        with anyio.move_on_after(_CLOSE_TIMEOUT_SECONDS, shield=True):
            close_upstream: Any = getattr(self._chunks, "aclose", None)
            try:
                if close_upstream is not None:
                    await close_upstream()
            finally:
                if self._on_close is not None:
                    await self._on_close()

    async def __aenter__(self) -> CompletionStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
