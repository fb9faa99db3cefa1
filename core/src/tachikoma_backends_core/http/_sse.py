"""An incremental Server-Sent Events parser: bytes in, ``(event, data)`` pairs out.

Why our own: the network hands us bytes in arbitrary pieces. A piece may end inside a
line, between the ``\\r`` and ``\\n`` of a CRLF, or inside a multibyte UTF-8 character,
and the parser must not care. It follows the WHATWG event-stream rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
lines end with CRLF, LF or CR; ``:`` starts a comment; several ``data:`` lines join with
``\\n``; a blank line dispatches the event; a leading byte-order mark is skipped; an event
left unfinished at the end of the stream is dropped; ``id`` sets `SSEParser.last_event_id`
and ``retry`` sets `SSEParser.retry`.

The hot path works on whole events, not lines: the text is cut at blank lines, and an
event of the usual shapes (one ``data: ...`` line, as OpenAI sends them, or ``event: x``
then one ``data: ...`` line, as Anthropic does) is sliced out with a ``str.find`` or two.
Anything else (comments, several data lines, other fields) takes the general
line-by-line path.

Linear in the body, whatever the pieces: an unfinished event is kept as a list of pieces
and only the new piece is searched for the blank line, so a 5 MB event arriving in 4 KiB
reads costs one pass, not one pass per read. An event that grows past ``max_event_size``
without ending is a `StreamProtocolError`, not a memory blow-up.

Examples:
    >>> parser = SSEParser()
    >>> parser.feed(b"event: ping\\ndata: {}\\n\\nevent: pi")
    [('ping', '{}')]
    >>> parser.feed(b"ng\\r\\nid: 7\\ndata: a\\ndata: b\\r\\n\\r\\n")
    [('ping', 'a\\nb')]
    >>> parser.last_event_id
    '7'
"""

from __future__ import annotations

import codecs

from tachikoma_backends_core.errors import StreamProtocolError

from ._excerpt import EXCERPT_CONTEXT, excerpt

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEParser"]

#: The largest unfinished event kept, in characters (16 MiB): far above any provider's
#: events, far below what would hurt a process.
DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
_DEFAULT_EVENT = "message"


class SSEParser:
    """Feed it byte chunks with `feed`; call `close` at the end of the stream.

    Args:
        max_event_size: the longest event (in characters) kept while it is unfinished.
        provider: named by the errors it raises.

    Attributes:
        last_event_id: the value of the last ``id`` field seen (``""`` before any).
        retry: the reconnection time in milliseconds of the last valid ``retry`` field.

    Raises:
        StreamProtocolError: bytes that are not UTF-8, or an event longer than
            ``max_event_size``.
    """

    __slots__ = (
        "_decoder",
        "_failure",
        "_held_cr",
        "_pending",
        "_pending_ends_line",
        "_pending_size",
        "_started",
        "last_event_id",
        "max_event_size",
        "provider",
        "retry",
    )

    def __init__(
        self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE, provider: str | None = None
    ) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._failure: StreamProtocolError | None = None  # due after the events returned
        self._started = False  # whether the byte-order-mark check is done
        self._held_cr = False  # a CR ended the last piece: it may be half of a CRLF
        self._pending: list[str] = []  # the pieces of an event whose blank line has not come
        self._pending_size = 0
        self._pending_ends_line = False  # the pending text ends with "\n"
        self.max_event_size = max_event_size
        self.provider = provider
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """The events completed by ``chunk``, oldest first, as ``(event, data)``.

        Bytes that are not UTF-8 after complete events in the same chunk: this call
        returns those events, the next `feed` or `close` raises.
        """
        if self._failure is not None:
            raise self._failure
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            failure = StreamProtocolError(
                f"the event stream is not valid UTF-8: {exc.reason}", provider=self.provider
            )
            # What came before the bad bytes is good: its events still come out first.
            events = self._feed_text(bytes(exc.object[: exc.start]).decode())
            if not events:
                raise failure from None
            self._failure = failure
            return events
        return self._feed_text(text)

    def _feed_text(self, text: str) -> list[tuple[str, str]]:
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._held_cr:
            self._held_cr = False
            text = "\r" + text
        if "\r" in text:
            if text[-1] == "\r":  # wait for the next byte: it may be the LF of a CRLF
                self._held_cr = True
                text = text[:-1]
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if self._pending:
            if "\n\n" not in text and not (self._pending_ends_line and text[:1] == "\n"):
                self._keep(text)
                return []
            text = "".join(self._pending) + text
        elif "\n\n" not in text:
            self._keep(text)
            return []
        blocks = text.split("\n\n")
        rest = blocks.pop()
        self._pending, self._pending_size = [], 0
        events = self._dispatch(blocks)
        self._keep(rest)
        return events

    def close(self) -> list[tuple[str, str]]:
        """End of stream: flush; an event without its closing blank line is dropped."""
        if self._failure is not None:
            raise self._failure
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            # A character cut at the very end: it belongs to an unfinished event, which
            # is dropped anyway, so it is no reason to fail the stream.
            self._decoder.reset()
        text = "".join(self._pending) + ("\n" if self._held_cr else "")
        self._pending, self._pending_size, self._held_cr = [], 0, False
        return self._dispatch(text.split("\n\n")[:-1])

    def _keep(self, text: str) -> None:
        """Add ``text`` to the unfinished event, within ``max_event_size``."""
        if not text:
            return
        self._pending.append(text)
        self._pending_size += len(text)
        self._pending_ends_line = text[-1] == "\n"
        if self._pending_size > self.max_event_size:
            start = _head(self._pending, 60 + EXCERPT_CONTEXT)
            raise StreamProtocolError(
                f"an event of the stream grew past {self.max_event_size:,} characters "
                f"without ending (it starts {excerpt(start, 60, length=self._pending_size)}); "
                "the stream is not the SSE it should be",
                provider=self.provider,
            )

    def _dispatch(self, blocks: list[str]) -> list[tuple[str, str]]:
        """The events of complete blocks (each the lines before one blank line)."""
        events: list[tuple[str, str]] = []
        for block in blocks:
            # The usual shapes, sliced directly: "data: PAYLOAD" (OpenAI's) and
            # "event: NAME\ndata: PAYLOAD" (Anthropic's).
            if block.startswith("data: ") and "\n" not in block:
                events.append((_DEFAULT_EVENT, block[6:]))
                continue
            if block.startswith("event: "):
                newline = block.find("\n")
                if (
                    newline > 7  # a name, not "event: " alone (that is "message")
                    and block.startswith("data: ", newline + 1)
                    and block.find("\n", newline + 1) < 0
                ):
                    events.append((block[7:newline], block[newline + 7 :]))
                    continue
            event = self._block_event(block)
            if event is not None:
                events.append(event)
        return events

    def _block_event(self, block: str) -> tuple[str, str] | None:
        """The general case: one block, line by line, per the WHATWG rules."""
        name = ""
        data: list[str] = []
        for line in block.split("\n"):
            if not line or line[0] == ":":
                continue  # a leading blank line (no event to dispatch yet), or a comment
            field, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                if "\0" not in value:
                    self.last_event_id = value
            elif field == "retry" and value.isascii() and value.isdigit() and len(value) < 16:
                self.retry = int(value)  # (thousands of digits: ignored, not a crash)
        if not data:
            return None  # an event without data is not dispatched
        return (name or _DEFAULT_EVENT, "\n".join(data))


def _head(pieces: list[str], size: int) -> str:
    """The first ``size`` characters of the joined ``pieces``, joining no more than that."""
    head: list[str] = []
    for piece in pieces:
        head.append(piece)
        size -= len(piece)
        if size <= 0:
            break
    return "".join(head)
