"""Turn an Ollama ``/api/chat`` NDJSON stream into `CompletionChunk`s.

Each line is a whole JSON answer-so-far piece (see `decode`): ``message.content`` is a
text chunk, ``message.thinking`` a thinking chunk, ``message.tool_calls`` whole calls
(each one `ToolCallDelta` with id, name and all its arguments; they may come on any line,
the last included, several on one), and the line with ``done: true`` the final chunk,
with the finish reason and the token counts. An ``{"error": ...}`` line raises its
mapped error after the chunks before it; a body that ends before ``done`` is cut.

The kit's `NDJSONParser` takes lines cut anywhere and several per read; its
`EventStreamDecoder` holds a failure until the chunks before it are out.
"""

from __future__ import annotations

from typing import Any

from tachikoma_backends_core.completion import CompletionChunk
from tachikoma_backends_core.http import EventStreamDecoder, NDJSONParser
from tachikoma_backends_core.tool_calls import ToolCallDelta

from . import PROVIDER
from .decode import finish_reason_for, tool_call_from, usage_from
from .errors import error_from_message

__all__ = ["OllamaStreamDecoder"]


class OllamaStreamDecoder(EventStreamDecoder[Any]):
    """Feed it the response body's bytes (`feed`), then call `close` at its end.

    Examples:
        >>> decoder = OllamaStreamDecoder()
        >>> decoder.feed(b'{"model": "llama3.2", "message": {"role": "assistant", '
        ...     b'"content": "Hi"}, "done": false}\\n')[0].delta
        'Hi'
        >>> final = decoder.feed(b'{"model": "llama3.2", "message": {"role": "assistant", '
        ...     b'"content": ""}, "done": true, "done_reason": "stop", '
        ...     b'"prompt_eval_count": 26, "eval_count": 1}\\n')
        >>> final[0].finish_reason, final[0].usage.total_tokens, decoder.model
        (<FinishReason.STOP: 'stop'>, 27, 'llama3.2')
    """

    def __init__(self) -> None:
        super().__init__(NDJSONParser(provider=PROVIDER), provider=PROVIDER)
        self._calls = 0  # tool calls seen: the next one's number

    def decode_event(self, event: Any) -> CompletionChunk | None:
        message = event.get("message")
        done = event.get("done")
        if self.model is not None and not done and message:
            # The hot path, one line per token: text and nothing else.
            text = message.get("content")
            if text and text.__class__ is str and len(message) == 2 and "role" in message:
                return CompletionChunk(delta=text)
        error = event.get("error")
        if error:
            raise error_from_message(str(error))
        if self.model is None:
            model = event.get("model")
            self.model = model if isinstance(model, str) and model else None
        text, thinking = "", ""
        calls: tuple[ToolCallDelta, ...] = ()
        if message:
            text = message.get("content") or ""
            thinking = message.get("thinking") or ""
            if not (isinstance(text, str) and isinstance(thinking, str)):
                raise TypeError("message content and thinking must be strings")
            calls = tuple(self._call(call) for call in message.get("tool_calls") or ())
        if done:
            return CompletionChunk(
                delta=text,
                tool_call_deltas=calls,
                thinking=thinking,
                usage=usage_from(event),
                finish_reason=finish_reason_for(event.get("done_reason"), self._calls > 0),
            )
        if not (text or thinking or calls):
            return None
        return CompletionChunk(delta=text, tool_call_deltas=calls, thinking=thinking)

    def _call(self, call: Any) -> ToolCallDelta:
        parsed = tool_call_from(call, self._calls)
        delta = ToolCallDelta(self._calls, parsed.id, parsed.name, parsed.arguments)
        self._calls += 1
        return delta
