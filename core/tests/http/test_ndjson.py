"""The NDJSON parser: lines cut anywhere, blank lines, CRLF, the size cap, typed errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tachikoma_backends_core import StreamProtocolError
from tachikoma_backends_core.errors import register_secret
from tachikoma_backends_core.http import NDJSONParser

SECRET = "sk-test-SECRET-0123456789abcdef"


def parse(*pieces: bytes, max_line_size: int = 16 * 1024 * 1024) -> list[Any]:
    parser = NDJSONParser(max_line_size=max_line_size)
    values = [value for piece in pieces for value in parser.feed(piece)]
    return values + parser.close()


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    """``body`` cut at ``cuts`` (taken modulo its length): the pieces, in order."""
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def _feed_in_pieces(parser: NDJSONParser, body: bytes, size: int, fed: list[int]) -> None:
    """Feed ``body`` in ``size``-byte pieces, noting each piece's length in ``fed``."""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        fed.append(len(piece))
        parser.feed(piece)


def _leaked(shown: str) -> list[str]:
    """The 12-character pieces of `SECRET` that show in ``shown``."""
    pieces = (SECRET[i : i + 12] for i in range(len(SECRET) - 11))
    return [piece for piece in pieces if piece in shown]


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def _transcripts(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    """Values one per line (LF or CRLF, blank lines between); the body and json.loads'."""
    values = draw(st.lists(_json_values, max_size=8))
    ensure_ascii = draw(st.booleans())
    lines: list[str] = []
    for value in values:
        lines += draw(st.lists(st.sampled_from(["", "  ", "\t"]), max_size=2))  # blank lines
        lines.append(json.dumps(value, ensure_ascii=ensure_ascii))
    body = "".join(line + draw(st.sampled_from(["\n", "\r\n"])) for line in lines)
    without_last_newline = draw(st.booleans())
    if lines and without_last_newline:
        body = body.removesuffix("\n").removesuffix("\r")  # the last line without its newline
    expected = [json.loads(line) for line in lines if line.strip()]
    return body.encode(), expected


@settings(max_examples=300, deadline=None)
@given(transcript=_transcripts(), cuts=st.lists(st.integers(min_value=0), max_size=16))
def test_any_split_gives_the_values_of_json_loads_per_line(
    transcript: tuple[bytes, list[Any]], cuts: list[int]
) -> None:
    body, expected = transcript
    assert parse(body) == expected
    assert parse(*_split(body, cuts)) == expected


# Bytes that look like NDJSON: they reach the JSON, UTF-8 and blank-line paths that
# uniform random bytes seldom do.
_ndjson_tokens = st.sampled_from(
    [b"{", b"}", b"[", b"]", b'"', b":", b",", b"1", b"null", b"tru", b"e", b" ", b"\n",
     b"\r", b"\r\n", b"\xc3", b"\xa9", b"\xe2\x98\x95", b"\xff", b"\x00", b"\\"]
)  # fmt: skip
_ndjson_noise = st.one_of(st.binary(), st.lists(_ndjson_tokens).map(b"".join))


@settings(max_examples=300, deadline=None)
@given(
    body=_ndjson_noise,
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    max_line_size=st.sampled_from([4, 64, 16 * 1024 * 1024]),
)
def test_random_bytes_in_random_pieces_raise_only_stream_protocol_errors(
    body: bytes, cuts: list[int], max_line_size: int
) -> None:
    parser = NDJSONParser(max_line_size=max_line_size)
    try:
        for piece in _split(body, cuts):
            parser.feed(piece)
        parser.close()
    except StreamProtocolError:
        pass  # a typed error is the one acceptable failure; anything else fails the test


_NEVER_ENDING = {
    "json-string": b'{"text": "' + b"x" * 100_000,
    "digits": b"1" * 100_000,
    "multibyte": "\u2603".encode() * 40_000,
}


@pytest.mark.parametrize("body", list(_NEVER_ENDING.values()), ids=list(_NEVER_ENDING))
@pytest.mark.parametrize("size", [64, 1, 500])
def test_a_line_that_never_ends_is_a_typed_error_near_the_cap(body: bytes, size: int) -> None:
    parser = NDJSONParser(max_line_size=1000, provider="acme")
    parser.feed(b'{"first": 1}\n\n')
    pieces: list[int] = []
    with pytest.raises(StreamProtocolError, match="line 3 of the stream grew past 1,000") as caught:
        _feed_in_pieces(parser, body, size, pieces)
    fed = sum(pieces)
    assert fed <= 1000 + size  # raised by the piece that crossed the cap
    if size == 64:
        assert fed <= 1100
    assert caught.value.provider == "acme"
    assert len(str(caught.value)) < 400  # it quotes the start, not the whole line


def test_a_complete_line_over_the_cap_in_one_piece_is_a_typed_error() -> None:
    with pytest.raises(StreamProtocolError, match="line 2 of the stream grew past 1,000"):
        parse(b"1\n" + json.dumps("x" * 999).encode() + b"\n", max_line_size=1000)


@pytest.mark.parametrize("size", [1, 64, 4096])
def test_a_line_right_at_the_cap_passes(size: int) -> None:
    line = json.dumps("y" * 998).encode()  # 1000 bytes with its quotes
    assert len(line) == 1000
    body = line + b"\n" + line + b"\n2"
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    assert parse(*pieces, max_line_size=1000) == ["y" * 998, "y" * 998, 2]


def test_a_multibyte_character_split_across_pieces_decodes() -> None:
    body = '{"k": "caf\u00e9 \u2603 \U0001f363"}\n'.encode()
    expected = [{"k": "caf\u00e9 \u2603 \U0001f363"}]
    for cut in range(len(body) + 1):
        assert parse(body[:cut], body[cut:]) == expected, cut
    assert parse(*(body[i : i + 1] for i in range(len(body)))) == expected


def test_a_line_of_invalid_utf8_names_its_line_number() -> None:
    with pytest.raises(StreamProtocolError, match=r"^line 3 of the stream is not valid UTF-8"):
        parse(b'{"a": 1}\n\n"\xff\xfe"\n{"b": 2}\n')


def test_invalid_utf8_in_the_last_line_without_newline_is_a_typed_error() -> None:
    parser = NDJSONParser()
    assert parser.feed(b'{"a": 1}\n"caf\xc3') == [{"a": 1}]
    with pytest.raises(StreamProtocolError, match="line 2 of the stream is not valid UTF-8"):
        parser.close()


def test_a_non_json_line_quotes_at_most_about_80_characters() -> None:
    line = "<html>" + "".join(f"<{i:04d}>" for i in range(300))
    with pytest.raises(StreamProtocolError) as caught:
        parse(b"{}\n" + line.encode() + b"\n")
    shown = str(caught.value)
    assert shown.startswith("line 2 of the stream does not carry JSON: ")
    assert line[:80] in shown
    assert line[:81] not in shown
    assert f"({len(line):,} characters)" in shown


def test_a_deeply_nested_line_is_a_typed_error() -> None:
    # json raises RecursionError (not a ValueError) past ~1,000 levels.
    with pytest.raises(StreamProtocolError):
        parse(b"[" * 100_000 + b"\n")


def test_several_lines_in_one_piece() -> None:
    parser = NDJSONParser()
    assert parser.feed(b'{"a": 1}\n[2]\r\n\n  \n"three"\nnull\nfalse\n4') == [
        {"a": 1},
        [2],
        "three",
        None,
        False,
    ]
    assert parser.close() == [4]


def test_a_piece_with_no_newline_at_all() -> None:
    parser = NDJSONParser()
    assert parser.feed(b'{"done": ') == []
    assert parser.feed(b"true") == []
    assert parser.feed(b"}") == []
    assert parser.close() == [{"done": True}]


def test_blank_and_crlf_only_streams_give_nothing() -> None:
    assert parse(b"") == []
    assert parse(b"\n\r\n \n\t\r\n") == []
    assert parse(b"\r", b"\n", b"\r") == []


@pytest.mark.parametrize("filler", range(40, 100, 3))
def test_non_json_line_errors_never_show_a_registered_secret(filler: int) -> None:
    register_secret(SECRET)
    line = "x" * filler + SECRET + " and then some more text that is not JSON either"
    with pytest.raises(StreamProtocolError) as caught:
        parse(b"{}\n" + line.encode() + b"\n")
    assert _leaked(str(caught.value)) == []
    assert _leaked(repr(caught.value)) == []


def test_too_long_line_errors_never_show_a_registered_secret() -> None:
    # The error quotes the start of the unfinished line: a secret cut by the network
    # between two pieces must not show in part either.
    register_secret(SECRET)
    leaks: dict[int, list[str]] = {}
    for filler in range(70):
        body = ("x" * filler + SECRET + "y" * 2000).encode()
        parser = NDJSONParser(max_line_size=1000)
        with pytest.raises(StreamProtocolError) as caught:
            _feed_in_pieces(parser, body, 64, [])
        shown = str(caught.value) + repr(caught.value)
        if _leaked(shown):
            leaks[filler] = _leaked(shown)
    assert leaks == {}


def test_parsing_one_line_is_linear_in_its_size(
    cost_ratio: Callable[[Callable[[bytes], None], bytes, bytes], float],
) -> None:
    # Issue 13, defect 2, for NDJSON: one 4 MiB line costs what 1,024 short ones do.
    size = 4 * 1024 * 1024

    def feed(body: bytes) -> None:
        parser = NDJSONParser(max_line_size=size + 1024)
        for start in range(0, len(body), 4096):
            parser.feed(body[start : start + 4096])

    one = b'{"t": "' + b"x" * (size - 10) + b'"}\n'
    many = (b'{"t": "' + b"x" * (4096 - 10) + b'"}\n') * (size // 4096)
    assert len(one) == len(many)
    ratio = cost_ratio(feed, one, many)
    assert ratio < 10, f"one 4 MiB line cost {ratio:.1f}x as much as 1,024 short ones"
