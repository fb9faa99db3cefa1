"""The SSE parser: line endings, comments, multi-line data, and bytes cut anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tachikoma_backend_claude._wire.sse import SSEParser


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


def test_invalid_utf8_raises() -> None:
    with pytest.raises(UnicodeDecodeError):
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
