"""EventStreamDecoder and the parsers: what was decoded before a failure is never lost."""

from __future__ import annotations

from typing import Any

import pytest

from tachikoma_backends_core import (
    CompletionChunk,
    FinishReason,
    OverloadedError,
    StreamProtocolError,
    Usage,
)
from tachikoma_backends_core.http import EventStreamDecoder, NDJSONParser, SSEParser

FINISH = b'{"finish": "stop"}\n'


class Lines(EventStreamDecoder[Any]):
    """``{"delta"}`` lines, ``{"overloaded": true}`` fails, ``{"finish"}`` ends."""

    def __init__(self) -> None:
        super().__init__(NDJSONParser(provider="kit"), provider="kit")

    def decode_event(self, event: Any) -> CompletionChunk | None:
        if event.get("overloaded"):
            raise OverloadedError("busy", provider="kit")
        if "finish" in event:
            return CompletionChunk.final_chunk(Usage(1, 2), FinishReason(event["finish"]))
        return CompletionChunk.text(event["delta"]) if event["delta"] else None


def test_a_stream_decodes_to_its_final_chunk_and_ignores_what_follows() -> None:
    decoder = Lines()
    chunks = decoder.feed(b'{"delta": "a"}\n{"delta": ""}\n' + FINISH + b'{"delta": "late"}\n')
    assert [(c.delta, c.finish_reason) for c in chunks] == [("a", None), ("", FinishReason.STOP)]
    assert (decoder.started, decoder.finished) == (True, True)
    assert decoder.close() == []


def test_an_error_before_the_start_raises_at_once() -> None:
    with pytest.raises(OverloadedError):
        Lines().feed(b'{"overloaded": true}\n{"delta": "a"}\n')


def test_an_error_after_chunks_comes_after_them() -> None:
    decoder = Lines()
    chunks = decoder.feed(b'{"delta": "a"}\n{"overloaded": true}\n')
    assert [c.delta for c in chunks] == ["a"]
    with pytest.raises(OverloadedError):
        decoder.feed(FINISH)


@pytest.mark.parametrize("event", [b'"text"\n', b'{"other": 1}\n', b"[1]\n"])
def test_an_event_of_the_wrong_shape_is_a_protocol_error(event: bytes) -> None:
    with pytest.raises(StreamProtocolError, match="malformed event in the stream"):
        Lines().feed(event)


def test_a_stream_without_its_final_event_is_cut() -> None:
    decoder = Lines()
    decoder.feed(b'{"delta": "a"}\n')
    with pytest.raises(StreamProtocolError, match="ended before its final event"):
        decoder.close()


def test_ndjson_values_before_a_bad_line_come_first() -> None:
    parser = NDJSONParser()
    assert parser.feed(b'{"a": 1}\n<html>\n{"b": 2}\n') == [{"a": 1}]
    with pytest.raises(StreamProtocolError, match="line 2"):
        parser.feed(b"")


def test_a_bad_first_ndjson_line_raises_at_once() -> None:
    with pytest.raises(StreamProtocolError, match="line 1"):
        NDJSONParser().feed(b'<html>\n{"a": 1}\n')


def test_sse_events_before_bytes_that_are_not_utf8_come_first() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: ok\n\ndata: \xff\n\n") == [("message", "ok")]
    with pytest.raises(StreamProtocolError, match="not valid UTF-8"):
        parser.close()
