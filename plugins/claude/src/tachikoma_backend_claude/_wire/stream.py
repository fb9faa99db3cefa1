"""Turn a Messages API event stream into `CompletionChunk`s.

The events (https://platform.claude.com/docs/en/build-with-claude/streaming) and what
each becomes:

| Event | Chunk |
|---|---|
| ``message_start`` | none; records the model and the input usage (``start_usage``) |
| ``content_block_start`` (``text``) | its text, if any |
| ``content_block_start`` (``tool_use``) | a `ToolCallDelta` with the call's ``id`` and ``name`` |
| ``content_block_delta`` ``text_delta`` | a text chunk |
| ``content_block_delta`` ``input_json_delta`` | a `ToolCallDelta` with an arguments fragment |
| ``content_block_delta`` ``thinking_delta`` | a chunk whose ``thinking`` is that text |
| ``content_block_delta`` (signature, citations) | none |
| ``content_block_stop`` | ``"{}"`` as arguments for a tool call that streamed none |
| ``message_delta`` | none; records ``stop_reason`` and the output usage |
| ``message_stop`` | the final chunk: finish reason and cumulative usage |
| ``ping``, unknown future events | none |
| ``error`` | raises the mapped error (``overloaded_error`` -> ``OverloadedError``, ...) |

Tool calls are numbered densely (0, 1, 2 in the order their blocks start), whatever the
content-block indexes; server-side tool blocks are not the caller's to run and are left
out, as `decode_message` does. The final chunk is always the last: events after
``message_stop`` are ignored. A stream whose body ends before ``message_stop``, or whose
data is not JSON, raises ``StreamProtocolError``.

Cost per event: one JSON decode, a few dict lookups and one slotted dataclass; no
validation (``Usage`` is built once per stream). The repository's
``benchmarks/claude_stream_parsing.py`` compares it with httpx's line iteration plus
``json.loads``.
"""

from __future__ import annotations

from typing import Any

from tachikoma_backends_core.completion import CompletionChunk, Usage
from tachikoma_backends_core.errors import BackendError, StreamProtocolError
from tachikoma_backends_core.http import SSEParser, decode_json, scan_json
from tachikoma_backends_core.tool_calls import ToolCallDelta

from . import PROVIDER
from .decode import finish_reason_for, tool_arguments
from .errors import error_from_event

__all__ = ["ClaudeStreamDecoder"]

_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class _ToolBlock:
    """A streaming ``tool_use`` block: its call number, and whether arguments arrived."""

    __slots__ = ("initial_input", "ordinal", "streamed")

    def __init__(self, ordinal: int, initial_input: object) -> None:
        self.ordinal = ordinal
        self.streamed = False
        self.initial_input = initial_input


class ClaudeStreamDecoder:
    """Feed it the response body's bytes (`feed`), then call `close` at its end.

    Examples:
        >>> decoder = ClaudeStreamDecoder()
        >>> decoder.feed(b'event: message_start\\ndata: {"type": "message_start", '
        ...     b'"message": {"model": "claude-x", "usage": {"input_tokens": 3}}}\\n\\n')
        []
        >>> [chunk] = decoder.feed(b'event: content_block_delta\\ndata: {"type": '
        ...     b'"content_block_delta", "index": 0, '
        ...     b'"delta": {"type": "text_delta", "text": "Hi"}}\\n\\n')
        >>> chunk.delta, chunk.finish_reason
        ('Hi', None)
        >>> decoder.model, decoder.started, decoder.finished
        ('claude-x', True, False)
    """

    __slots__ = (
        "_counts",
        "_pending",
        "_sse",
        "_stop_reason",
        "_tools",
        "finished",
        "model",
        "start_usage",
        "started",
    )

    def __init__(self) -> None:
        self._sse = SSEParser(provider=PROVIDER)
        self._tools: dict[int, _ToolBlock] = {}
        self._counts = dict.fromkeys(_USAGE_KEYS, 0)
        self._stop_reason: object = None
        self._pending: BackendError | None = None  # a failure after the chunks before it
        self.model: str | None = None
        # The usage message_start reported (the input tokens): what a stream left before
        # its end cost, as far as anyone knows.
        self.start_usage: Usage | None = None
        self.started = False  # message_start seen
        self.finished = False  # message_stop seen: the final chunk went out

    def feed(self, data: bytes) -> list[CompletionChunk]:
        """The chunks completed by ``data`` (often none, sometimes several).

        A failure once the message started (an ``error`` event, bad JSON) comes after the
        chunks that preceded it: this call returns those, the next `feed` or `close`
        raises it.
        """
        self._raise_pending()
        events = self._sse.feed(data)  # StreamProtocolError for bytes that are not UTF-8
        return self._handle(events) if events else []

    def close(self) -> list[CompletionChunk]:
        """End of the body: the last chunks, or ``StreamProtocolError`` if it was cut."""
        self._raise_pending()
        events = self._sse.close()
        chunks: list[CompletionChunk] = []
        self._handle_into(events, chunks)  # at the very end, a failure is raised at once
        if not self.finished:
            raise StreamProtocolError(
                "the stream ended before its message_stop event (truncated)", provider=PROVIDER
            )
        return chunks

    def usage_so_far(self) -> Usage | None:
        """What the stream cost so far, before its final usage: ``start_usage``."""
        return self.start_usage

    def _raise_pending(self) -> None:
        if self._pending is not None:
            error, self._pending = self._pending, None
            raise error

    def _handle(self, events: list[tuple[str, str]]) -> list[CompletionChunk]:
        chunks: list[CompletionChunk] = []
        try:
            self._handle_into(events, chunks)
        except BackendError as error:
            if not self.started:
                raise  # before message_start: the request itself failed
            self._pending = error
        return chunks

    def _handle_into(self, events: list[tuple[str, str]], chunks: list[CompletionChunk]) -> None:
        append, scan, chunk_type = chunks.append, scan_json, CompletionChunk
        for name, data in events:
            if self.finished:
                break  # the final chunk must stay the last
            if name == "ping":
                continue
            try:
                payload, end = scan(data, 0)
                if end != len(data):
                    raise ValueError("trailing data")
            except (StopIteration, ValueError, RecursionError):
                # The careful way: leading space, or an error.
                payload = decode_json(data, what=f"the stream's {name!r} event", provider=PROVIDER)
            try:
                if name == "content_block_delta":
                    # The hot path, one event per token: a text delta, inline.
                    delta = payload["delta"]
                    if delta["type"] == "text_delta":
                        text = delta["text"]
                        if text.__class__ is not str:
                            raise TypeError("text_delta.text must be a string")
                        if text:
                            append(chunk_type(delta=text))
                        continue
                chunk = self._event(name, payload)
            except BackendError:
                raise  # an error event, already typed (InvalidRequestError is a ValueError)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise StreamProtocolError(
                    f"malformed {name!r} event in the stream ({type(exc).__name__}: {exc})",
                    provider=PROVIDER,
                ) from None
            if chunk is not None:
                append(chunk)

    def _event(self, name: str, payload: Any) -> CompletionChunk | None:
        kind = payload.get("type", name) if name == "message" else name
        if kind == "content_block_delta":
            delta = payload["delta"]
            delta_type = delta["type"]
            if delta_type == "text_delta":
                text = delta["text"]
                return CompletionChunk(delta=text) if text else None
            if delta_type == "input_json_delta":
                block = self._tools.get(payload["index"])
                fragment = delta.get("partial_json")
                if block is None or not fragment:
                    return None  # a server tool's input, or an empty fragment
                block.streamed = True
                return CompletionChunk(
                    tool_call_deltas=(ToolCallDelta(block.ordinal, arguments_delta=fragment),)
                )
            if delta_type == "thinking_delta":
                thinking = delta.get("thinking")
                return CompletionChunk(thinking=thinking) if thinking else None
            return None  # signature_delta, citations_delta, ...
        if kind == "content_block_start":
            return self._block_start(payload["index"], payload["content_block"])
        if kind == "content_block_stop":
            block = self._tools.get(payload["index"])
            if block is None or block.streamed:
                return None
            # No input_json_delta at all: the call's arguments are its (empty) input.
            arguments = tool_arguments(block.initial_input)
            return CompletionChunk(
                tool_call_deltas=(ToolCallDelta(block.ordinal, arguments_delta=arguments),)
            )
        if kind == "message_start":
            message = payload["message"]
            model = message.get("model")
            self.model = model if isinstance(model, str) else None
            self._add_usage(message.get("usage"))
            self.start_usage = Usage(**self._counts)
            self.started = True
            return None
        if kind == "message_delta":
            stop_reason = payload["delta"].get("stop_reason")
            if stop_reason is not None:
                self._stop_reason = stop_reason
            self._add_usage(payload.get("usage"))
            return None
        if kind == "message_stop":
            self.finished = True
            return CompletionChunk(
                usage=Usage(**self._counts),
                finish_reason=finish_reason_for(self._stop_reason, bool(self._tools)),
            )
        if kind == "error":
            raise error_from_event(payload)
        return None  # an event type added after this release

    def _block_start(self, index: int, block: dict[str, Any]) -> CompletionChunk | None:
        block_type = block["type"]
        if block_type == "text":
            text = block.get("text")
            return CompletionChunk(delta=text) if text else None
        if block_type == "thinking":
            thinking = block.get("thinking")
            return CompletionChunk(thinking=thinking) if thinking else None
        if block_type != "tool_use":
            return None  # redacted_thinking, server_tool_use, ...
        call_id, name = block["id"], block["name"]
        if not (isinstance(call_id, str) and isinstance(name, str)):
            raise TypeError("a tool_use block's id and name must be strings")
        ordinal = len(self._tools)
        self._tools[index] = _ToolBlock(ordinal, block.get("input") or {})
        return CompletionChunk(tool_call_deltas=(ToolCallDelta(ordinal, call_id, name),))

    def _add_usage(self, usage: object) -> None:
        """Counts in ``message_delta`` are cumulative: a value given replaces the old one."""
        if not isinstance(usage, dict):
            return
        counts = self._counts
        for key in _USAGE_KEYS:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                counts[key] = value
