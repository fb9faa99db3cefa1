"""The SSE parser: line endings, comments, multi-line data, and bytes cut anywhere."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tachikoma_backends_core import StreamProtocolError
from tachikoma_backends_core.errors import register_secret
from tachikoma_backends_core.http import SSEParser, decode_json


def parse(*pieces: bytes) -> list[tuple[str, str]]:
    parser = SSEParser()
    events = [event for piece in pieces for event in parser.feed(piece)]
    return events + parser.close()


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_separates_lines_and_events(newline: bytes) -> None:
    body = newline.join([b"event: a", b"data: 1", b"", b"event: b", b"data: 2", b"", b""])
    assert parse(body) == [("a", "1"), ("b", "2")]


def test_mixed_line_endings_in_one_stream() -> None:
    assert parse(b"event: a\r\ndata: 1\n\revent: b\rdata: 2\r\n\r\n") == [("a", "1"), ("b", "2")]


def test_comments_are_skipped() -> None:
    body = b": keep-alive\nevent: a\n:another comment\ndata: 1\n\n:\n\n"
    assert parse(body) == [("a", "1")]


def test_data_lines_join_with_newlines() -> None:
    assert parse(b"data: first\ndata:second\ndata:  third\n\n") == [
        ("message", "first\nsecond\n third")
    ]


def test_field_without_colon_has_an_empty_value() -> None:
    assert parse(b"data\ndata: x\n\n") == [("message", "\nx")]


def test_unknown_fields_id_and_retry_are_ignored() -> None:
    assert parse(b"id: 7\nretry: 100\nfoo: bar\nevent: a\ndata: 1\n\n") == [("a", "1")]


def test_event_type_defaults_to_message_and_resets_after_each_event() -> None:
    assert parse(b"event: a\ndata: 1\n\ndata: 2\n\n") == [("a", "1"), ("message", "2")]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert parse(b"event: a\n\ndata: 1\n\n") == [("message", "1")]


def test_an_unfinished_event_at_the_end_is_dropped() -> None:
    assert parse(b"data: 1\n\ndata: 2\n") == [("message", "1")]
    assert parse(b"data: 1\n\ndata: 2") == [("message", "1")]


def test_a_leading_byte_order_mark_is_skipped() -> None:
    assert parse(b"\xef\xbb\xbfdata: 1\n\n") == [("message", "1")]


def test_crlf_split_between_chunks_is_one_line_ending() -> None:
    # The CR ends one piece, the LF starts the next: no extra blank line, no lost event.
    assert parse(b"data: 1\r", b"\ndata: 2\r", b"\n\r", b"\n") == [("message", "1\n2")]


def test_a_cr_at_the_very_end_still_ends_the_line() -> None:
    assert parse(b"data: 1\r\r") == [("message", "1")]


def test_multibyte_characters_split_across_chunks() -> None:
    body = "data: café ☕ 寿司 🍣\n\n".encode()
    cut = body.index("☕".encode()) + 1  # inside the three bytes of ☕
    assert parse(body[:cut], body[cut:]) == [("message", "café ☕ 寿司 🍣")]


def test_invalid_utf8_is_a_protocol_error() -> None:
    with pytest.raises(StreamProtocolError, match="not valid UTF-8"):
        parse(b"data: \xff\xfe\n\n")


def test_unicode_line_separators_inside_data_are_not_line_endings() -> None:
    # JSON may carry U+2028 raw; str.splitlines would split there, SSE must not.
    assert parse("data: a\u2028b\x85c\n\n".encode()) == [("message", "a\u2028b\x85c")]


_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=20
)
_events = st.lists(
    st.tuples(st.sampled_from(["message_start", "ping", "x"]), st.lists(_text, min_size=1)),
    max_size=6,
)


def _encode(events: list[tuple[str, list[str]]], newline: str) -> bytes:
    out = []
    for name, lines in events:
        out.append(f"event: {name}{newline}")
        out.extend(f"data: {line}{newline}" for line in lines)
        out.append(newline)
    return "".join(out).encode()


@settings(max_examples=300, deadline=None)
@given(
    events=_events,
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_split_gives_the_same_events(
    events: list[tuple[str, list[str]]], newline: str, cuts: list[int]
) -> None:
    body = _encode(events, newline)
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    expected = [(name, "\n".join(lines)) for name, lines in events]
    assert parse(*pieces) == parse(body) == expected


# --- Robustness: random bytes, the size cap, id/retry, big events, secrets -------------

SECRET = "sk-test-SECRET-0123456789abcdef"


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    """``body`` cut at ``cuts`` (taken modulo its length): the pieces, in order."""
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def _feed_in_pieces(parser: SSEParser, body: bytes, size: int, fed: list[int]) -> None:
    """Feed ``body`` in ``size``-byte pieces, noting each piece's length in ``fed``."""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        fed.append(len(piece))
        parser.feed(piece)


def _leaked(shown: str) -> list[str]:
    """The 12-character pieces of `SECRET` that show in ``shown``."""
    pieces = (SECRET[i : i + 12] for i in range(len(SECRET) - 11))
    return [piece for piece in pieces if piece in shown]


# Bytes that look like SSE: they reach the field, CR, BOM and UTF-8 paths that uniform
# random bytes seldom do.
_sse_tokens = st.sampled_from(
    [b"data:", b"data: x", b"event: e", b"id: 7", b"id:\x00", b"retry: 25", b"retry: x",
     b":", b" ", b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b"\xe2\x98", b"\x95", b"\xff", b"\x00"]
)  # fmt: skip
_sse_noise = st.one_of(st.binary(), st.lists(_sse_tokens).map(b"".join))


@settings(max_examples=300, deadline=None)
@given(
    body=_sse_noise,
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    max_event_size=st.sampled_from([8, 64, 16 * 1024 * 1024]),
)
def test_random_bytes_in_random_pieces_raise_only_stream_protocol_errors(
    body: bytes, cuts: list[int], max_event_size: int
) -> None:
    parser = SSEParser(max_event_size=max_event_size)
    try:
        for piece in _split(body, cuts):
            for name, data in parser.feed(piece):
                assert isinstance(name, str)
                assert isinstance(data, str)
        parser.close()
    except StreamProtocolError:
        pass  # a typed error is the one acceptable failure; anything else fails the test


# A transcript for the model below: each line is a field line as sent (never blank).
_line_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=12
)
_raw_value = st.one_of(_line_text, _line_text.map(lambda text: " " + text))
_retry_value = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(lambda n: f" {n}"),
    st.sampled_from([" abc", " 1.5", " -1", "", " ", " 12a", " \u0663"]),  # U+0663: digit
    _raw_value,
)
_field_line = st.one_of(
    _raw_value.map(lambda value: ":" + value),  # a comment
    _raw_value.map(lambda value: "data:" + value),
    st.just("data"),
    _raw_value.map(lambda value: "event:" + value),
    st.one_of(_raw_value, st.tuples(_line_text, _line_text).map("\0".join)).map(
        lambda value: "id:" + value
    ),
    st.just("id"),
    _retry_value.map(lambda value: "retry:" + value),
    _raw_value.map(lambda value: "foo:" + value),
)
# Mostly the usual "event: NAME" + "data: PAYLOAD" shape, which takes the fast path.
_usual_block = st.tuples(_line_text, _line_text).map(
    lambda pair: [f"event: {pair[0]}", f"data: {pair[1]}"]
)
_block = st.one_of(_usual_block, st.lists(_field_line, max_size=5))


def _model(blocks: list[list[str]]) -> tuple[list[tuple[str, str]], str, int | None]:
    """What the WHATWG rules make of complete blocks: (events, last event id, retry)."""
    events: list[tuple[str, str]] = []
    last_id, retry = "", None
    for lines in blocks:
        name, data = "", []
        for line in lines:
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id" and "\0" not in value:
                last_id = value
            elif field == "retry" and value and all(c in "0123456789" for c in value):
                retry = int(value)
        if data:
            events.append((name or "message", "\n".join(data)))
    return events, last_id, retry


@st.composite
def _transcripts(
    draw: st.DrawFn,
) -> tuple[bytes, tuple[list[tuple[str, str]], str, int | None]]:
    """A valid stream with mixed line endings and its expected (events, id, retry)."""
    blocks = draw(st.lists(_block, max_size=6))
    lines: list[str] = []
    for block in blocks:
        lines += block
        lines += [""] * draw(st.integers(min_value=1, max_value=2))  # the blank line(s)
    trailing = draw(st.lists(_field_line, max_size=3))  # an unfinished event: dropped
    lines += trailing
    out = ["\ufeff"] if draw(st.booleans()) else []
    previous = ""
    for number, line in enumerate(lines):
        last = number == len(lines) - 1
        choices = ["\n", "\r\n", "\r", ""] if last and trailing else ["\n", "\r\n", "\r"]
        ending = draw(st.sampled_from(choices))
        if not line and previous == "\r" and ending == "\n":
            ending = "\r\n"  # a CR then an LF would be one CRLF, not a blank line
        out.append(line + ending)
        previous = ending
    return "".join(out).encode(), _model(blocks)


def _run(pieces: list[bytes]) -> tuple[list[tuple[str, str]], str, int | None]:
    parser = SSEParser()
    events = [event for piece in pieces for event in parser.feed(piece)]
    events += parser.close()
    return events, parser.last_event_id, parser.retry


@settings(max_examples=300, deadline=None)
@given(transcript=_transcripts(), cuts=st.lists(st.integers(min_value=0), max_size=16))
def test_any_split_of_a_full_transcript_gives_the_same_events_id_and_retry(
    transcript: tuple[bytes, tuple[list[tuple[str, str]], str, int | None]], cuts: list[int]
) -> None:
    body, expected = transcript
    assert _run([body]) == expected
    assert _run(_split(body, cuts)) == expected


def test_byte_by_byte_feeding_of_a_full_transcript() -> None:
    body = (
        b"\xef\xbb\xbf: hello\r\nid: 1\rretry: 250\nevent: a\r\ndata: x\rdata:  y\n\r\n"
        b"data: caf\xc3\xa9\r\rid\nevent: b\ndata: z\n\ndata: dropped\r"
    )
    expected = ([("a", "x\n y"), ("message", "caf\u00e9"), ("b", "z")], "", 250)
    assert _run([body]) == expected
    assert _run([body[i : i + 1] for i in range(len(body))]) == expected


_NEVER_ENDING = {
    "one-long-line": b"data: " + b"x" * 100_000,
    "many-lines": b"data: 0123456789\n" * 6_000,
    "comments-crlf": b": keep-alive\r\n" * 8_000,
    "cr-lines": b"data: 0123456789\r" * 6_000,
}


@pytest.mark.parametrize("body", list(_NEVER_ENDING.values()), ids=list(_NEVER_ENDING))
@pytest.mark.parametrize("size", [64, 1, 500])
def test_an_event_that_never_ends_is_a_typed_error_near_the_cap(body: bytes, size: int) -> None:
    parser = SSEParser(max_event_size=1000, provider="acme")
    pieces: list[int] = []
    with pytest.raises(StreamProtocolError, match="grew past 1,000 characters") as caught:
        _feed_in_pieces(parser, body, size, pieces)
    fed = sum(pieces)
    # Raised by the piece that crossed the cap (counted in characters: CRLF is one).
    buffered = body[:fed].decode().replace("\r\n", "\n").replace("\r", "\n")
    assert len(buffered) <= 1000 + size
    if size == 64 and b"\r\n" not in body:
        assert fed <= 1100
    assert caught.value.provider == "acme"
    assert len(str(caught.value)) < 400  # it quotes the start, not the whole event


@pytest.mark.parametrize("size", [1, 64, 4096])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_an_event_right_under_the_cap_passes(size: int, newline: str) -> None:
    # Unfinished, the event is at most "data: " + 993 characters + one newline: 1000.
    data = "y" * 993
    body = f"data: {data}{newline}{newline}data: next{newline}{newline}".encode()
    parser = SSEParser(max_event_size=1000)
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    events = [event for piece in pieces for event in parser.feed(piece)]
    assert events + parser.close() == [("message", data), ("message", "next")]


def test_an_id_with_a_nul_is_ignored() -> None:
    parser = SSEParser()
    assert parser.feed(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        ("message", "a"),
        ("message", "b"),
    ]
    assert parser.last_event_id == "1"


def test_retry_is_set_by_digits_only() -> None:
    parser = SSEParser()

    def retry_after(chunk: bytes) -> int | None:
        parser.feed(chunk)
        return parser.retry

    assert retry_after(b"") is None
    assert retry_after(b"retry: abc\n\n") is None
    assert retry_after(b"retry: 250\n\n") == 250
    for ignored in (b"abc", b"1.5", b"-1", b" 1", b"12a", b"", "\u0663".encode()):
        assert retry_after(b"retry: " + ignored + b"\n\n") == 250, ignored
    assert retry_after(b"retry:0\n\n") == 0


def test_a_retry_of_thousands_of_digits_is_not_a_crash() -> None:
    # int() refuses strings over 4,300 digits (CPython 3.11+, and 3.10.7+): a ValueError
    # must not escape the parser; ignoring the field or a typed error are both fine.
    parser = SSEParser()
    try:
        events = parser.feed(b"retry: " + b"9" * 5000 + b"\ndata: x\n\n")
    except StreamProtocolError:
        return
    assert events == [("message", "x")]


def test_last_event_id_persists_across_events_until_set_again() -> None:
    parser = SSEParser()
    assert parser.last_event_id == ""
    assert parser.feed(b"id: 42\nevent: a\ndata: 1\n\n") == [("a", "1")]
    assert parser.last_event_id == "42"
    assert parser.feed(b"event: b\ndata: 2\n\ndata: 3\n\n") == [("b", "2"), ("message", "3")]
    assert parser.last_event_id == "42"
    parser.feed(b"id: 43\n\n")  # set even by an event that has no data
    assert parser.last_event_id == "43"
    parser.feed(b"id\ndata: 4\n\n")  # an empty id resets it (WHATWG)
    assert parser.last_event_id == ""
    parser.feed(b"id: 44\ndata: 5\n")  # not finished: not applied
    assert parser.close() == []
    assert parser.last_event_id == ""


def test_a_one_mebibyte_event_in_small_pieces_is_one_intact_event() -> None:
    # Multibyte characters, so 4 KiB pieces cut inside some of them.
    unit = "word \u00e9\u2603\U0001f363 0123456789 "
    data = (unit * (1024 * 1024 // len(unit.encode()) + 1))[: 1024 * 1024]
    body = b"event: big\r\ndata: " + data.encode() + b"\r\n\r\ndata: after\n\n"
    parser = SSEParser()
    events = []
    for start in range(0, len(body), 4096):
        events += parser.feed(body[start : start + 4096])
    events += parser.close()
    assert len(events) == 2
    assert events[0][0] == "big"
    assert events[0][1] == data
    assert events[1] == ("message", "after")


# JSON decoding of SSE payloads lives in decode_json, not in the parser.


def test_decode_json_reads_sse_payloads() -> None:
    what = "the stream's 'message' event"
    assert decode_json('{"delta": "Hi"}', what=what) == {"delta": "Hi"}
    assert decode_json(' {"a": [1, 2]}\n', what=what) == {"a": [1, 2]}
    with pytest.raises(StreamProtocolError, match="'message' event does not carry JSON"):
        decode_json("[DONE]", what=what, provider="acme")


def test_decode_json_quotes_at_most_about_80_characters() -> None:
    text = "not json " + "".join(f"<{i:04d}>" for i in range(300))
    with pytest.raises(StreamProtocolError) as caught:
        decode_json(text, what="the stream's 'delta' event")
    shown = str(caught.value)
    assert text[:80] in shown
    assert text[:81] not in shown
    assert f"({len(text):,} characters)" in shown


def test_decode_json_of_deep_nesting_is_a_typed_error() -> None:
    # json raises RecursionError (not a ValueError) past ~1,000 levels.
    with pytest.raises(StreamProtocolError):
        decode_json("[" * 100_000, what="the stream's 'delta' event")


@pytest.mark.parametrize("filler", range(40, 100, 3))
def test_decode_json_errors_never_show_a_registered_secret(filler: int) -> None:
    register_secret(SECRET)
    text = "x" * filler + SECRET + " and then some more text that is not JSON either"
    with pytest.raises(StreamProtocolError) as caught:
        decode_json(text, what="the stream's 'message' event", provider="acme")
    assert _leaked(str(caught.value)) == []
    assert _leaked(repr(caught.value)) == []


def test_too_long_event_errors_never_show_a_registered_secret() -> None:
    # The error quotes the start of the unfinished event: a secret cut by the network
    # between two pieces must not show in part either.
    register_secret(SECRET)
    leaks: dict[int, list[str]] = {}
    for filler in range(70):
        body = ("data: " + "x" * filler + SECRET + "y" * 2000).encode()
        parser = SSEParser(max_event_size=1000)
        with pytest.raises(StreamProtocolError) as caught:
            _feed_in_pieces(parser, body, 64, [])
        shown = str(caught.value) + repr(caught.value)
        if _leaked(shown):
            leaks[filler] = _leaked(shown)
    assert leaks == {}


def test_parsing_one_event_is_linear_in_its_size(
    cost_ratio: Callable[[Callable[[bytes], None], bytes, bytes], float],
) -> None:
    # Issue 13, defect 2: one 5 MB line arriving in 4 KiB reads blocked the loop for
    # seconds, each read re-scanning all that came before (about 1,000x the work here).
    size = 4 * 1024 * 1024

    def feed(body: bytes) -> None:
        parser = SSEParser(max_event_size=size + 1024)
        for start in range(0, len(body), 4096):
            parser.feed(body[start : start + 4096])

    one = b"data: " + b"x" * (size - 8) + b"\n\n"
    many = (b"data: " + b"x" * 4088 + b"\n\n") * (size // 4096)
    assert len(one) == len(many)
    ratio = cost_ratio(feed, one, many)
    assert ratio < 10, f"one 4 MiB event cost {ratio:.1f}x as much as 1,024 small ones"
