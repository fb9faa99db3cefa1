"""EventStreamDecoder: a provider's stream decoder, minus what every one of them repeats.

A provider's stream is bytes -> events (one of the kit's parsers) -> chunks (the
provider's own reading of each event). Everything around that reading is the same for
every provider, and easy to get subtly wrong, so it is here:

* the chunks before a failure come out before it: a failure in the middle of one read
  is held and raised by the next `feed` or `close`, so nothing already decoded is lost;
* before the stream started, a failure is raised at once: it is the request's failure,
  and ``HttpConnection.stream`` raises it from the ``await``;
* an event that does not have the shape the provider documents (a missing key, a wrong
  type) is a `StreamProtocolError` naming the event, not a ``KeyError``;
* nothing after the final chunk is decoded (it must stay the last);
* a stream whose body ends before its final chunk is cut: `StreamProtocolError`, unless
  `end_of_body` says the end of the body completes it.

A subclass implements `decode_event`, returning a chunk, or ``None`` for an event that
makes none; the chunk carrying a ``finish_reason`` ends the stream.

Examples:
    >>> from tachikoma_backends_core import CompletionChunk, FinishReason, Usage
    >>> from tachikoma_backends_core.http import NDJSONParser
    >>> class Lines(EventStreamDecoder):
    ...     def decode_event(self, event):
    ...         if "finish" in event:
    ...             return CompletionChunk.final_chunk(Usage(1, 2), FinishReason(event["finish"]))
    ...         return CompletionChunk.text(event["delta"])
    >>> decoder = Lines(NDJSONParser(), provider="acme")
    >>> [chunk.delta for chunk in decoder.feed(b'{"delta": "Hi"}\\n{"oops": 1}\\n')]
    ['Hi']
    >>> decoder.feed(b"")
    Traceback (most recent call last):
    ...
    tachikoma_backends_core.errors.StreamProtocolError: malformed event in the stream ...
"""

from __future__ import annotations

import abc
from typing import Generic, Protocol, TypeVar

from tachikoma_backends_core.completion import CompletionChunk, Usage
from tachikoma_backends_core.errors import BackendError, StreamProtocolError

__all__ = ["EventParser", "EventStreamDecoder"]

EventT = TypeVar("EventT")


class EventParser(Protocol[EventT]):
    """Bytes in, events out: `SSEParser` (``(event, data)`` pairs) or `NDJSONParser`."""

    def feed(self, chunk: bytes) -> list[EventT]: ...

    def close(self) -> list[EventT]: ...


class EventStreamDecoder(abc.ABC, Generic[EventT]):
    """Base of a provider's `StreamDecoder`; see the module docstring.

    Args:
        parser: the parser of the provider's framing.
        provider: named by the errors raised here.

    Attributes:
        started: an event was decoded without failing (set it yourself for a provider
            whose stream starts with a dedicated event).
        finished: the chunk with the finish reason went out.
        model: the answering model, if the stream names it (set it in `decode_event`).
    """

    def __init__(self, parser: EventParser[EventT], *, provider: str) -> None:
        self._parser = parser
        self._failure: BackendError | None = None
        self.provider = provider
        self.started = False
        self.finished = False
        self.model: str | None = None

    @abc.abstractmethod
    def decode_event(self, event: EventT) -> CompletionChunk | None:
        """The chunk ``event`` makes, if any; raise the mapped error for an error event.

        ``KeyError``, ``TypeError``, ``AttributeError`` and ``ValueError`` raised here
        become a `StreamProtocolError` (the event did not have the documented shape).
        """

    def usage_so_far(self) -> Usage | None:
        """What the provider reported before its final usage; ``None`` unless overridden."""
        return None

    def end_of_body(self) -> CompletionChunk | None:
        """The final chunk the end of the body itself completes, if any.

        For a provider that holds its finish for something that may never come (OpenAI's
        usage chunk, from a server that sends none): ``None`` (the default) means the body
        ended too soon.
        """
        return None

    def feed(self, data: bytes) -> list[CompletionChunk]:
        """The chunks ``data`` completes; a failure after some of them comes next call."""
        self._raise_failure()
        events = self._parser.feed(data)  # its failures already come after its events
        chunks: list[CompletionChunk] = []
        try:
            self._decode(events, chunks)
        except BackendError as failure:
            if not self.started:
                raise  # the request's failure: raised from the await of the stream
            self._failure = failure
        return chunks

    def close(self) -> list[CompletionChunk]:
        """The end of the body: the last chunks, or `StreamProtocolError` if it was cut."""
        self._raise_failure()
        chunks: list[CompletionChunk] = []
        self._decode(self._parser.close(), chunks)
        last = None if self.finished else self.end_of_body()
        if last is not None:
            chunks.append(last)
            self.finished = last.finish_reason is not None
        if not self.finished:
            raise StreamProtocolError(
                "the stream ended before its final event (cut short)", provider=self.provider
            )
        return chunks

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _decode(self, events: list[EventT], chunks: list[CompletionChunk]) -> None:
        if self.finished:
            return  # the final chunk must stay the last
        decode, append = self.decode_event, chunks.append
        for event in events:
            try:
                chunk = decode(event)
            except BackendError:
                raise
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                raise StreamProtocolError(
                    f"malformed event in the stream ({type(exc).__name__}: {_said(exc)})",
                    provider=self.provider,
                ) from None
            self.started = True
            if chunk is not None:
                append(chunk)
                if chunk.finish_reason is not None:
                    self.finished = True
                    return  # nothing after the final chunk


def _said(exc: BaseException) -> str:
    """An exception's text, short: a KeyError's repr of the key, at most 120 characters."""
    text = str(exc)
    return text if len(text) <= 120 else text[:120] + "..."
