"""An incremental Server-Sent Events parser: bytes in, ``(event, data)`` pairs out.

Why our own: the network hands us bytes in arbitrary pieces. A piece may end inside a
line, between the ``\\r`` and ``\\n`` of a CRLF, or inside a multibyte UTF-8 character,
and the parser must not care. It follows the WHATWG event-stream rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
lines end with CRLF, LF or CR; ``:`` starts a comment; several ``data:`` lines join with
``\\n``; a blank line dispatches the event; a leading byte-order mark is skipped; an event
left unfinished at the end of the stream is dropped.

The hot path works on whole events, not lines: the text is cut at blank lines, and an
event of the usual shape (``event: x`` then one ``data: ...`` line, as Anthropic sends
them) is sliced out with two ``str.find`` calls. Anything else (comments, several data
lines, other fields) takes the general line-by-line path.

Examples:
    >>> parser = SSEParser()
    >>> parser.feed(b"event: ping\\ndata: {}\\n\\nevent: pi")
    [('ping', '{}')]
    >>> parser.feed(b"ng\\r\\ndata: a\\ndata: b\\r\\n\\r\\n")
    [('ping', 'a\\nb')]
"""

from __future__ import annotations

import codecs

__all__ = ["SSEParser"]

_DEFAULT_EVENT = "message"


class SSEParser:
    """Feed it byte chunks with `feed`; call `close` at the end of the stream.

    Raises ``UnicodeDecodeError`` for bytes that are not UTF-8 (the stream decoder turns
    that into a ``StreamProtocolError``).
    """

    __slots__ = ("_buffer", "_decoder", "_started")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._buffer = ""  # the start of an event whose closing blank line has not come
        self._started = False  # whether the byte-order-mark check is done

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """The events completed by ``chunk``, oldest first, as ``(event, data)``."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        text = self._buffer + text
        if "\r" in text:
            # A CR at the very end may be the first half of a CRLF: wait for the next byte.
            held = text.endswith("\r")
            text = _normalise(text[:-1] if held else text)
            if held:
                text += "\r"
        if "\n\n" not in text:
            self._buffer = text
            return []
        blocks = text.split("\n\n")
        self._buffer = blocks.pop()
        return _events(blocks)

    def close(self) -> list[tuple[str, str]]:
        """End of stream: flush; an event without its closing blank line is dropped."""
        text = _normalise(self._buffer + self._decoder.decode(b"", final=True))
        self._buffer = ""
        return _events(text.split("\n\n")[:-1])


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _events(blocks: list[str]) -> list[tuple[str, str]]:
    """The events of complete blocks (each the lines before one blank line)."""
    events: list[tuple[str, str]] = []
    for block in blocks:
        # The usual shape, sliced directly: "event: NAME\ndata: PAYLOAD".
        if block.startswith("event: "):
            newline = block.find("\n")
            if (
                newline > 7  # a name, not "event: " alone (that is "message")
                and block.startswith("data: ", newline + 1)
                and block.find("\n", newline + 1) < 0
            ):
                events.append((block[7:newline], block[newline + 7 :]))
                continue
        event = _block_event(block)
        if event is not None:
            events.append(event)
    return events


def _block_event(block: str) -> tuple[str, str] | None:
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
        # "id" and "retry" steer browser reconnection, which we do not do.
    if not data:
        return None  # an event without data is not dispatched
    return (name or _DEFAULT_EVENT, "\n".join(data))
