"""Turn a Chat Completions event stream into `CompletionChunk`s.

OpenAI streams ``data: {chunk}`` events, each a ``chat.completion.chunk`` whose
``choices[0].delta`` carries a piece of the answer, then ``finish_reason`` on a chunk of
its own, then (with ``stream_options.include_usage``) a usage-only chunk whose
``choices`` is empty, then ``data: [DONE]``. The core's stream has one final chunk with
both the finish reason and the usage, so the finish is held until the usage arrives (or
``[DONE]``, or the end of the body) and sent out then, once.

| Event | Chunk |
|---|---|
| ``delta.content`` | a text chunk |
| ``delta.refusal`` | a chunk whose ``refusal`` is that piece |
| ``delta.tool_calls[]`` | `ToolCallDelta`s (see below) |
| ``delta.reasoning_content`` / ``reasoning`` (DeepSeek, vLLM, OpenRouter) | a ``thinking`` chunk |
| ``delta.role``, empty deltas | none |
| ``finish_reason`` | none yet: held for the final chunk |
| ``choices: []`` with ``usage`` | the final chunk, if the finish came; else kept |
| ``[DONE]`` | the final chunk, if not sent yet |
| ``{"error": ...}`` | raises the mapped error (after the chunks before it) |
| Azure filter chunks (no ``delta``), other choices than the first | none |

**Tool calls.** Fragments are keyed by ``index`` and renumbered densely (0, 1, 2 in the
order calls first appear), so interleaved fragments of parallel calls each join their own
call, and a server counting from 1 (or -1) still yields 0, 1, ... An index that comes
back with another call's ``id`` and a name (Ollama numbers every call 0) opens a new
call; a new ``id`` without a name does not (GLM-4's demo server sends one per fragment).
A call's ``id`` and
``name`` are taken once, from the first fragment that has them, never joined: servers that
repeat them on every fragment (vLLM, LM Studio) do not get ``"call_1call_1"``. A fragment
without an ``index`` (Gemini, older Ollama) continues the call before it, unless it brings
a new ``id``, which starts a new call. Arguments sent as an object (GLM) are serialised.

**Forgiven, as OpenAI-compatible servers need:** no usage at all (the final chunk then
has none), no ``[DONE]`` (the end of the body after a finish ends the stream), usage on
every chunk or before the finish (the last one seen counts), an empty
``finish_reason`` (``""``: not a finish), unknown finish reasons, extra fields, ``data:``
keep-alives that are empty or start with ``:``. A body that ends with no finish at all is
cut: ``StreamProtocolError``.
"""

from __future__ import annotations

from typing import Any

from tachikoma_backends_core.completion import CompletionChunk, Usage
from tachikoma_backends_core.http import EventStreamDecoder, SSEParser, decode_json, scan_json
from tachikoma_backends_core.tool_calls import ToolCallDelta

from . import PROVIDER
from .decode import content_text, finish_reason_for, reasoning_text, tool_arguments, usage_from
from .errors import error_from_payload

__all__ = ["OpenAIStreamDecoder"]

_DONE = "[DONE]"
_PLAIN_DELTA = frozenset({"content", "role"})  # a delta that is text and nothing else


class _Call:
    """A streamed tool call: its dense number, its id, whether it has its name, and
    whether its id and name went out."""

    __slots__ = ("announced", "id", "named", "ordinal")

    def __init__(self, ordinal: int) -> None:
        self.ordinal = ordinal
        self.id: str | None = None
        self.named = False
        self.announced = False


class OpenAIStreamDecoder(EventStreamDecoder[tuple[str, str]]):
    """Feed it the response body's bytes (`feed`), then call `close` at its end.

    Examples:
        >>> decoder = OpenAIStreamDecoder()
        >>> decoder.feed(b'data: {"model": "gpt-x", "choices": [{"index": 0, '
        ...     b'"delta": {"role": "assistant", "content": "Hi"}}]}\\n\\n')[0].delta
        'Hi'
        >>> decoder.feed(b'data: {"choices": [{"index": 0, "delta": {}, '
        ...     b'"finish_reason": "stop"}]}\\n\\n')
        []
        >>> final = decoder.feed(b'data: {"choices": [], "usage": {"prompt_tokens": 5, '
        ...     b'"completion_tokens": 1}}\\n\\ndata: [DONE]\\n\\n')
        >>> final[0].finish_reason, final[0].usage.total_tokens, decoder.model
        (<FinishReason.STOP: 'stop'>, 6, 'gpt-x')
    """

    def __init__(self) -> None:
        super().__init__(SSEParser(provider=PROVIDER), provider=PROVIDER)
        self._calls: dict[object, _Call] = {}  # by index: the latest call with it
        self._count = 0  # calls seen: the next one's number
        self._last_call: _Call | None = None
        self._finish: object = None  # the finish_reason seen, held for the final chunk
        self._usage: Usage | None = None

    def end_of_body(self) -> CompletionChunk | None:
        """A finish seen without ``[DONE]`` or usage after it still ends the stream."""
        return self._final() if self._finish is not None else None

    def decode_event(self, event: tuple[str, str]) -> CompletionChunk | None:
        data = event[1]
        try:
            payload, end = scan_json(data, 0)
            if end != len(data):
                raise ValueError("trailing data")
        except (StopIteration, ValueError, RecursionError):
            if data == _DONE:
                return self._final() if self._finish is not None else None
            if not data or data[0] == ":":
                return None  # a keep-alive some relays send as data
            payload = decode_json(data, what="the stream's data", provider=PROVIDER)
        # The hot path, one event per token: a text delta, once the stream is under way.
        choices = payload.get("choices")
        if choices and self.model is not None and not payload.get("usage"):
            choice = choices[0]
            delta = choice.get("delta")
            if delta and not choice.get("finish_reason") and not payload.get("error"):
                text = delta.get("content")
                if (
                    text.__class__ is str
                    and text
                    and (len(delta) == 1 or delta.keys() <= _PLAIN_DELTA)
                ):
                    return CompletionChunk(delta=text)
        return self._event(payload)

    def _event(self, payload: Any) -> CompletionChunk | None:
        """Any event but a plain text delta: errors, the model, usage, the finish, tools."""
        if payload.get("error"):
            raise error_from_payload(payload)
        if self.model is None:
            model = payload.get("model")
            if model and isinstance(model, str):
                self.model = model
        usage = payload.get("usage")
        if usage:
            self._usage = usage_from(usage)
        choices = payload.get("choices")
        if not choices:
            # The usage-only chunk after the finish (or a server's empty keep-alive).
            return self._final() if self._finish is not None and usage else None
        choice = choices[0]
        delta = choice.get("delta")
        finish = choice.get("finish_reason")
        chunk = self._delta(delta) if delta else None
        if finish:
            self._finish = finish
        return chunk

    def _delta(self, delta: dict[str, Any]) -> CompletionChunk | None:
        text = delta.get("content")
        if text and text.__class__ is not str:
            text = content_text(text)  # a list of parts (Mistral's magistral)
        fragments = delta.get("tool_calls")
        calls = tuple(self._fragment(fragment) for fragment in fragments) if fragments else ()
        refusal = delta.get("refusal")
        thinking = reasoning_text(delta)
        if not (text or calls or refusal or thinking):
            return None
        return CompletionChunk(
            delta=text or "", tool_call_deltas=calls, refusal=refusal or "", thinking=thinking
        )

    def _fragment(self, fragment: dict[str, Any]) -> ToolCallDelta:
        function = fragment.get("function") or {}
        call_id = fragment.get("id") or None
        name = function.get("name") or None
        key = fragment.get("index")
        if isinstance(key, int):
            call = self._calls.get(key)
            if call is not None and name and call.named and call_id not in (None, call.id):
                # The index reused by another named call (Ollama numbers each 0); a new id
                # without a name is still the same call (GLM-4's demo server).
                call = None
        else:
            # No index: the call before it, unless this fragment opens another one.
            last = self._last_call
            reuse = last is not None and (call_id is None or call_id == last.id)
            call, key = (last, None) if reuse else (None, ("no index", self._count))
        if call is None:
            call = self._calls[key] = _Call(self._count)
            self._count += 1
        self._last_call = call
        announce = not call.announced and (call_id is not None or name is not None)
        if announce:
            call.announced = call_id is not None and name is not None
        if call.id is None and call_id is not None:
            call.id = call_id
        call.named = call.named or name is not None
        arguments = tool_arguments(function.get("arguments"))
        if announce:
            return ToolCallDelta(call.ordinal, call_id, name, arguments)
        return ToolCallDelta(call.ordinal, arguments_delta=arguments)

    def _final(self) -> CompletionChunk:
        reason = finish_reason_for(self._finish, self._count > 0)
        return CompletionChunk(usage=self._usage, finish_reason=reason)
