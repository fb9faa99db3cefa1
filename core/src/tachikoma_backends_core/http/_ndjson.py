"""An incremental newline-delimited JSON parser: bytes in, decoded values out.

Ollama (and Acme, the plugin guide's example) stream one JSON object per line. The
network cuts those lines anywhere, so the parser keeps the unfinished line as a list of
pieces and searches only each new piece for its end: linear in the body, however it is
cut. A UTF-8 character cannot contain the byte ``\\n``, so lines are cut as bytes and
decoded whole. Blank lines are skipped, ``\\r\\n`` endings are fine, and the last line
may lack its newline (`close` decodes it). A line that is not JSON, is not UTF-8, or
grows past ``max_line_size`` bytes is a `StreamProtocolError`.

Examples:
    >>> parser = NDJSONParser()
    >>> parser.feed(b'{"delta": "Hel"}\\n{"del')
    [{'delta': 'Hel'}]
    >>> parser.feed(b'ta": "lo"}\\r\\n\\n{"done": true}')
    [{'delta': 'lo'}]
    >>> parser.close()
    [{'done': True}]
"""

from __future__ import annotations

from typing import Any

from tachikoma_backends_core.errors import StreamProtocolError

from ._excerpt import EXCERPT_CONTEXT, excerpt
from ._json import decode_json, scan_json

__all__ = ["DEFAULT_MAX_LINE_SIZE", "NDJSONParser"]

_JSON_WHITESPACE = " \t\r\n"  # a line of only these is blank; anything else must be JSON
#: The longest line kept, in bytes (16 MiB).
DEFAULT_MAX_LINE_SIZE = 16 * 1024 * 1024


class NDJSONParser:
    """Feed it byte chunks with `feed`; call `close` at the end of the stream.

    Args:
        max_line_size: the longest line, in bytes.
        provider: named by the errors it raises.

    Raises:
        StreamProtocolError: a line that is not UTF-8 JSON, or longer than
            ``max_line_size``.
    """

    __slots__ = ("_failure", "_line", "_pending", "_pending_size", "max_line_size", "provider")

    def __init__(
        self, *, max_line_size: int = DEFAULT_MAX_LINE_SIZE, provider: str | None = None
    ) -> None:
        self._pending: list[bytes] = []  # the pieces of a line whose newline has not come
        self._pending_size = 0
        self._line = 0  # lines decoded so far, for error messages
        self._failure: StreamProtocolError | None = None  # due after the values returned
        self.max_line_size = max_line_size
        self.provider = provider

    def feed(self, chunk: bytes) -> list[Any]:
        """The values of the lines completed by ``chunk``, oldest first.

        A bad line after good ones in the same chunk: this call returns the good ones,
        the next `feed` or `close` raises for the bad one.
        """
        self._raise_failure()
        if b"\n" not in chunk:
            self._keep(chunk)
            return []
        lines = chunk.split(b"\n")
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
        rest = lines.pop()
        values = self._decode(lines)
        self._keep(rest)
        return values

    def close(self) -> list[Any]:
        """End of stream: the value of a last line that had no newline, if any."""
        self._raise_failure()
        line = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        return self._decode([line])

    def _keep(self, piece: bytes) -> None:
        if not piece:
            return
        self._pending.append(piece)
        self._pending_size += len(piece)
        if self._pending_size > self.max_line_size:
            self._too_long(self._line + 1, self._pending_size, self._pending)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _decode(self, lines: list[bytes]) -> list[Any]:
        values: list[Any] = []
        append, scan, limit = values.append, scan_json, self.max_line_size
        try:
            for line in lines:
                # The hot path, one line per token: UTF-8 JSON with nothing around it.
                if len(line) <= limit:
                    try:
                        text = line.decode()
                        value, end = scan(text, 0)
                    except (ValueError, StopIteration, RecursionError):
                        pass  # blank, bad, or surrounded by whitespace: the careful way
                    else:
                        if end == len(text):
                            self._line += 1
                            append(value)
                            continue
                self._decode_line(line, values)
        except StreamProtocolError as failure:
            if not values:
                raise
            self._failure = failure  # raised by the next call, after these values
        return values

    def _decode_line(self, line: bytes, values: list[Any]) -> None:
        self._line += 1
        if len(line) > self.max_line_size:
            self._too_long(self._line, len(line), [line])
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            raise StreamProtocolError(
                f"line {self._line} of the stream is not valid UTF-8: {exc.reason}",
                provider=self.provider,
            ) from None
        if text.strip(_JSON_WHITESPACE):
            what = f"line {self._line} of the stream"
            values.append(decode_json(text, what=what, provider=self.provider))

    def _too_long(self, number: int, size: int, pieces: list[bytes]) -> None:
        head: list[bytes] = []
        wanted = 4 * (60 + EXCERPT_CONTEXT)  # bytes enough for that many characters
        for piece in pieces:
            head.append(piece[:wanted])
            wanted -= len(head[-1])
            if wanted <= 0:
                break
        start = b"".join(head).decode(errors="replace")
        raise StreamProtocolError(
            f"line {number} of the stream grew past {self.max_line_size:,} bytes "
            f"({size:,} so far) without ending; it starts {excerpt(start, 60, length=size)}",
            provider=self.provider,
        )
