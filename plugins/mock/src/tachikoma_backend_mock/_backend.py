"""A scripted backend: queue responses, force failures, read back every request.

Behaviour is that of a well-behaved provider, so tests written against the mock hold for
real ones: text streams in several chunks, tool calls stream as fragments, the last chunk
carries usage and finish reason, and what the mock declares it cannot do (images, other
models, more than 4 096 output tokens) is refused with a typed error.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Literal

import anyio
import anyio.lowlevel

from tachikoma_backends_core import (
    Backend,
    BackendCapabilities,
    BackendError,
    BackendInfo,
    BackendTimeoutError,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    CompletionStream,
    FinishReason,
    HealthReport,
    ImagePart,
    InvalidRequestError,
    ModelNotFoundError,
    StreamProtocolError,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tachikoma_backends_core.plugin import distribution_version

__all__ = ["MockBackend", "MockCall", "MockResponse"]

MAX_CONTEXT_TOKENS = 100_000
MAX_OUTPUT_TOKENS = 4_096
_WORDS = re.compile(r"\s*\S+\s*|\s+")
_ARGUMENT_FRAGMENT = 8  # characters per streamed tool-argument fragment


@dataclass(frozen=True)
class MockResponse:
    """A scripted reply. Immutable; the ``with_*`` methods return new replies.

    Examples:
        >>> MockResponse.text("Hi").with_usage(Usage.new(3, 1)).usage.total_tokens
        4
    """

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=lambda: Usage.new(100, 50))
    finish_reason: FinishReason | None = None
    #: Chunks delivered before the stream breaks (``None``: it does not break).
    break_after_chunks: int | None = None
    #: What the broken stream raises; ``None`` ends it silently, without its final chunk.
    stream_error: BackendError | None = None
    #: Where the reply stops coming (``None``: it does not); see `with_stall`.
    stall: Literal["before_response", "mid_body"] | None = None

    @classmethod
    def text(cls, content: str) -> MockResponse:
        return cls(content=content)

    def with_tool_call(self, call: ToolCall) -> MockResponse:
        return replace(self, tool_calls=(*self.tool_calls, call))

    def with_usage(self, usage: Usage) -> MockResponse:
        return replace(self, usage=usage)

    def with_finish_reason(self, finish_reason: FinishReason) -> MockResponse:
        return replace(self, finish_reason=finish_reason)

    def with_stream_failure(
        self, error: BackendError | None = None, *, after_chunks: int = 1
    ) -> MockResponse:
        """Break the stream after ``after_chunks`` chunks: raise ``error``, or, when it is
        ``None``, just stop (a connection cut before the final chunk).

        A non-streamed ``complete`` of this reply fails the same way: the body never
        arrived whole.
        """
        return replace(self, break_after_chunks=after_chunks, stream_error=error)

    def with_stall(self, at: Literal["before_response", "mid_body"]) -> MockResponse:
        """Stop answering ``at`` a point, as a hung provider does: before anything
        (``"before_response"``) or after the first streamed chunk (``"mid_body"``; a
        plain call gets nothing). The call then waits for the backend's ``timeout``
        and fails with `BackendTimeoutError`, or, without one, until it is cancelled."""
        return replace(self, stall=at)

    @property
    def effective_finish_reason(self) -> FinishReason:
        """The given reason, else ``FinishReason.natural`` for the tool calls."""
        return self.finish_reason or FinishReason.natural(bool(self.tool_calls))


@dataclass(frozen=True)
class MockCall:
    """A request the mock received, and whether it was asked to stream it."""

    request: CompletionRequest
    streamed: bool


class MockBackend(Backend):
    """In-memory backend with scripted replies. Safe to share between tasks and threads.

    Examples:
        >>> backend = MockBackend()
        >>> backend.queue_response(MockResponse.text("Hello, world!"))
    """

    def __init__(
        self,
        *,
        model: str = "mock-model",
        default_reply: str = "Mock response",
        chunk_delay: float = 0.0,
        timeout: float | None = None,
    ) -> None:
        self._info = BackendInfo(
            name="mock",
            version=distribution_version("tachikoma-backend-mock"),
            default_model=model,
            available_models=[model],
            capabilities=BackendCapabilities(
                streaming=True,
                tool_calling=True,
                vision=False,
                json_mode=True,
                max_context_tokens=MAX_CONTEXT_TOKENS,
                max_output_tokens=MAX_OUTPUT_TOKENS,
            ),
        )
        self._default_reply = default_reply
        self._chunk_delay = chunk_delay
        self._timeout = timeout
        self._health_stalled = False
        self._closed = False
        self._lock = threading.Lock()
        self._replies: deque[MockResponse | BackendError] = deque()
        self._calls: list[MockCall] = []
        self._failure: BackendError | None = None
        self._attempts = 0
        self._open_streams = 0

    @property
    def info(self) -> BackendInfo:
        return self._info

    # -- scripting --------------------------------------------------------------------

    def queue_response(self, response: MockResponse) -> None:
        """Answer the next request with ``response`` (first queued, first used)."""
        with self._lock:
            self._replies.append(response)

    def queue_failure(self, error: BackendError) -> None:
        """Fail the next request (only that one) with ``error``, in queue order."""
        _check_error(error, "queue_failure")
        with self._lock:
            self._replies.append(error)

    def set_failure(self, error: BackendError) -> None:
        """Fail every call with (a copy of) ``error`` until `clear_failure`."""
        _check_error(error, "set_failure")
        with self._lock:
            self._failure = error

    def clear_failure(self) -> None:
        with self._lock:
            self._failure = None

    def stall_health_checks(self) -> None:
        """Make health checks hang from now on, as against a provider that stopped
        answering: each waits for the ``timeout`` (then reports unhealthy) or until it
        is cancelled."""
        self._health_stalled = True

    @property
    def closed(self) -> bool:
        """Whether `aclose` ran (a real backend's connection pool would be closed)."""
        return self._closed

    def get_requests(self) -> list[CompletionRequest]:
        """Every request received (failed calls are not recorded), oldest first."""
        with self._lock:
            return [call.request for call in self._calls]

    def get_calls(self) -> list[MockCall]:
        """Like `get_requests`, with whether each request was streamed."""
        with self._lock:
            return list(self._calls)

    def last_request(self) -> CompletionRequest | None:
        with self._lock:
            return self._calls[-1].request if self._calls else None

    def clear_requests(self) -> None:
        with self._lock:
            self._calls.clear()

    @property
    def attempts(self) -> int:
        """Calls of `complete` and `complete_stream`, failed ones included.

        Unlike `get_requests`, this counts what a provider would count as requests, so
        tests can see retries (the conformance suite's attempt counting uses it).
        """
        with self._lock:
            return self._attempts

    @property
    def open_streams(self) -> int:
        """Streams handed out and not closed yet (each would hold a connection)."""
        with self._lock:
            return self._open_streams

    # -- the contract -----------------------------------------------------------------

    def _accept(self, request: CompletionRequest, streamed: bool) -> tuple[MockResponse, str]:
        """Check ``request`` like a provider would, record it, and pick its reply."""
        with self._lock:
            self._attempts += 1
            failure = self._failure
        if failure is not None:
            raise _fresh_copy(failure)
        model = request.model or self._info.default_model
        if model not in self._info.available_models:
            raise ModelNotFoundError(
                f"model {model!r} is not available; the mock serves {self._info.available_models}",
                provider="mock",
                status_code=404,
            )
        if request.max_tokens is not None and request.max_tokens > MAX_OUTPUT_TOKENS:
            raise InvalidRequestError(
                f"max_tokens={request.max_tokens} exceeds the mock's limit of "
                f"{MAX_OUTPUT_TOKENS} output tokens",
                field="max_tokens",
                provider="mock",
                status_code=400,
            )
        for index, message in enumerate(request.messages):
            if not isinstance(message.content, str) and any(
                isinstance(part, ImagePart) for part in message.content
            ):
                raise InvalidRequestError(
                    "the mock backend does not accept images (vision is not supported)",
                    field=f"messages[{index}].content",
                    provider="mock",
                    status_code=400,
                )
        with self._lock:
            scripted = self._replies.popleft() if self._replies else None
            if isinstance(scripted, BackendError):
                raise _fresh_copy(scripted)  # a failed call is not recorded, as with set_failure
            self._calls.append(MockCall(request, streamed))
        if scripted is not None:
            return scripted, model
        reply = self._default_reply
        if request.json_mode:
            reply = json.dumps({"response": reply})
        return MockResponse.text(reply), model

    async def _stall(self) -> None:
        """Wait as a call to a hung provider does: for the timeout, or forever."""
        if self._timeout is None:
            await anyio.sleep_forever()
            return  # never reached: sleep_forever ends only by cancellation
        await anyio.sleep(self._timeout)
        raise BackendTimeoutError(
            f"the mock's scripted provider stalled for the {self._timeout:g} s timeout",
            provider="mock",
        )

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        response, model = self._accept(request, streamed=False)
        await anyio.lowlevel.checkpoint()
        if response.stall is not None:
            await self._stall()
        if response.break_after_chunks is not None:
            raise _fresh_copy(response.stream_error or _TRUNCATED)
        return CompletionResponse(
            content=response.content,
            tool_calls=list(response.tool_calls),
            finish_reason=response.effective_finish_reason,
            usage=response.usage,
            model=model,
        )

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        response, model = self._accept(request, streamed=True)
        await anyio.lowlevel.checkpoint()
        if response.stall == "before_response":
            await self._stall()
        with self._lock:
            self._open_streams += 1
        # Like Anthropic's message_start: the input tokens are known before any text.
        reported_early = Usage(response.usage.input_tokens, 0)
        return CompletionStream(
            self._produce(response),
            model=model,
            provider="mock",
            on_close=self._stream_closed,
            usage_so_far=lambda: reported_early,
        )

    async def _stream_closed(self) -> None:
        with self._lock:
            self._open_streams -= 1

    async def _produce(self, response: MockResponse) -> AsyncIterator[CompletionChunk]:
        chunks = _chunks_of(response)
        if response.break_after_chunks is not None:
            chunks = chunks[: response.break_after_chunks]
        for index, chunk in enumerate(chunks):
            if index == 1 and response.stall == "mid_body":
                await self._stall()
            if self._chunk_delay:
                await anyio.sleep(self._chunk_delay)
            else:
                await anyio.lowlevel.checkpoint()
            yield chunk
        if response.stream_error is not None:
            raise _fresh_copy(response.stream_error)
        # A silent break just ends here; CompletionStream reports the missing finish.

    async def check_health(self) -> HealthReport:
        """Unhealthy with the failure `set_failure` set, or the timeout of a stalled check."""
        if self._health_stalled:
            try:
                await self._stall()
            except BackendTimeoutError as error:
                return HealthReport.failed(error)
        with self._lock:
            failure = self._failure
        return HealthReport.ok() if failure is None else HealthReport.failed(_fresh_copy(failure))

    async def health_check(self) -> bool:
        return (await self.check_health()).healthy

    async def aclose(self) -> None:
        self._closed = True


_TRUNCATED = StreamProtocolError(
    "the mock's scripted response was cut off before it finished", provider="mock"
)


def _check_error(error: object, method: str) -> None:
    if not isinstance(error, BackendError):
        raise TypeError(f"{method} takes a BackendError, not {type(error).__name__}")


def _fresh_copy(error: BackendError) -> BackendError:
    """A copy per raise, so repeated raises neither chain tracebacks nor share notes."""
    fresh = copy.copy(error)
    notes = getattr(error, "__notes__", None)
    if notes is not None:
        fresh.__notes__ = list(notes)  # type: ignore[attr-defined]  # a 3.11+ attribute
    return fresh


def _chunks_of(response: MockResponse) -> list[CompletionChunk]:
    """Text a word or two per chunk, each tool call as fragments, then the final chunk."""
    chunks = [CompletionChunk.text(piece) for piece in _WORDS.findall(response.content or "")]
    for index, call in enumerate(response.tool_calls):
        chunks.append(_delta_chunk(ToolCallDelta(index=index, id=call.id, name=call.name)))
        arguments = call.arguments
        for start in range(0, len(arguments), _ARGUMENT_FRAGMENT):
            fragment = arguments[start : start + _ARGUMENT_FRAGMENT]
            chunks.append(_delta_chunk(ToolCallDelta(index=index, arguments_delta=fragment)))
    chunks.append(CompletionChunk.final_chunk(response.usage, response.effective_finish_reason))
    return chunks


def _delta_chunk(delta: ToolCallDelta) -> CompletionChunk:
    return CompletionChunk(tool_call_deltas=(delta,))
