"""DecodedBody: a response's body, decoded, that can always be finished.

httpx's ``aiter_bytes`` decodes the content-encoding inside an async generator stacked on
``aiter_raw`` and four generators of httpcore's. When decoding fails (a corrupt gzip
body), ``aiter_bytes`` ends with the error and drops ``aiter_raw`` suspended, out of
anyone's reach: under trio every one of those generators is a ``ResourceWarning`` when
the garbage collector finds it. Here the raw generator is held, decoding happens in a
plain class (which no event loop tracks), and `aclose` unwinds the whole chain whatever
happened before.

The encodings are the ones the kit asks for (`ACCEPT_ENCODING`, sent on every request:
httpx would also offer br and zstd when their packages happen to be installed), decoded
with zlib as httpx does; an encoding nobody asked for passes through untouched, as in
httpx. A decoding failure is ``httpx.DecodingError``, which the connection types.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, AsyncIterator

import httpx

__all__ = ["ACCEPT_ENCODING", "DecodedBody", "read_to_the_end"]

#: What every kit request accepts: what `DecodedBody` decodes, whatever is installed.
ACCEPT_ENCODING = "gzip, deflate"


class _Inflater:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), incrementally."""

    __slots__ = ("_first", "_inflate", "_raw_fallback")

    def __init__(self, encoding: str) -> None:
        wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
        self._inflate = zlib.decompressobj(wbits)
        self._raw_fallback = encoding == "deflate"
        self._first = True

    def decode(self, data: bytes) -> bytes:
        try:
            decoded = self._inflate.decompress(data)
        except zlib.error as exc:
            if not (self._first and self._raw_fallback):
                raise httpx.DecodingError(f"corrupt compressed body: {exc}") from None
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
            self._raw_fallback = False
            return self.decode(data)
        self._first = False
        return decoded

    def flush(self) -> bytes:
        try:
            return self._inflate.flush()
        except zlib.error as exc:  # pragma: no cover - zlib's flush rarely fails
            raise httpx.DecodingError(f"corrupt compressed body: {exc}") from None


class DecodedBody:
    """The decoded body of a streamed ``httpx.Response``; see the module docstring.

    An async iterator of byte pieces. `aclose` (after the response is closed) reads the
    raw chain to its end, so nothing stays suspended.
    """

    __slots__ = ("_decoders", "_done", "_raw")

    _raw: AsyncGenerator[bytes, None]

    def __init__(self, response: httpx.Response) -> None:
        self._done = False
        if response.is_stream_consumed:
            try:  # read already (a mocked answer): its content, decoded
                content = response.content
            except httpx.ResponseNotRead:  # another reader has the stream: nothing here
                content = b""
            self._raw = _once(content)
            self._decoders: list[_Inflater] = []
            return
        # httpx declares an AsyncIterator; it is an async generator.
        self._raw = response.aiter_raw()  # type: ignore[assignment]
        encodings = response.headers.get_list("content-encoding", split_commas=True)
        self._decoders = [
            _Inflater(name)
            for name in reversed([value.strip().lower() for value in encodings])
            if name in ("gzip", "deflate")
        ]

    def __aiter__(self) -> DecodedBody:
        return self

    async def __anext__(self) -> bytes:
        decoders = self._decoders
        while True:
            if self._done:
                raise StopAsyncIteration
            try:
                data = await self._raw.__anext__()
            except StopAsyncIteration:
                self._done = True
                data = b""
                for decoder in decoders:
                    data = decoder.decode(data) + decoder.flush()
                if data:
                    return data
                raise
            if not decoders:
                return data
            for decoder in decoders:
                data = decoder.decode(data)
            if data:
                return data

    async def aclose(self) -> None:
        """End the raw chain: after the response is closed, reading raises at once,
        unwinding every generator below."""
        self._done = True
        await read_to_the_end(self._raw)
        await self._raw.aclose()


async def _once(content: bytes) -> AsyncGenerator[bytes, None]:
    if content:
        yield content


async def read_to_the_end(chunks: AsyncIterator[bytes]) -> None:
    """Read ``chunks`` until they end, however they end: what is left is not ours to
    report (a closed connection's error is the expected way out of a released body)."""
    try:
        async for _ in chunks:
            pass
    except Exception:
        pass
