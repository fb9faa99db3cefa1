"""Decode one streamed JSON payload at the lowest cost, and fail it in a typed way.

`scan_json` is the C scanner behind ``json.loads``, called directly: ``json.loads`` adds
two regex matches and three Python-level calls per call, a third of its cost on the short
payloads a stream carries one per token. It only accepts a payload with no surrounding
whitespace; `decode_json` tries it first and falls back to ``json.loads`` for the rest.

Examples:
    >>> decode_json('{"delta": "Hi"}', what="the stream's 'message' event")
    {'delta': 'Hi'}
    >>> decode_json(' [1] ', what="line 2 of the stream")
    [1]
    >>> decode_json("<html>", what="line 3", provider="acme")
    Traceback (most recent call last):
    ...
    tachikoma_backends_core.errors.StreamProtocolError: line 3 does not carry JSON: '<html>' ...
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable
from typing import Any

from tachikoma_backends_core.errors import InvalidRequestError, StreamProtocolError

from ._excerpt import excerpt

__all__ = ["decode_json", "encode_json_body", "scan_json"]

#: ``scan_json(text, 0)`` -> ``(value, end)``; raises ``StopIteration`` or ``ValueError``
#: when ``text`` does not start with JSON. (typeshed declares ``make_scanner`` as a class
#: taking a ``make_scanner``: it takes a decoder.)
scan_json: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]
)
_QUOTED = 80


def decode_json(text: str, *, what: str, provider: str | None = None) -> Any:
    """``text`` as JSON; a `StreamProtocolError` naming ``what`` when it is not JSON."""
    try:
        value, end = scan_json(text, 0)
        if end == len(text):
            return value
    except (StopIteration, ValueError, RecursionError):
        pass
    try:  # the careful way: surrounding whitespace, or a real error to report
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting thousands deep
        raise StreamProtocolError(
            f"{what} does not carry JSON: {excerpt(text, _QUOTED)}", provider=provider
        ) from None


def encode_json_body(value: Any, *, provider: str | None = None) -> bytes:
    """``value`` as a compact UTF-8 JSON request body, as httpx would send it.

    What JSON cannot carry (a lone surrogate in text, NaN or infinity, a value of another
    type, nesting thousands deep) is an `InvalidRequestError` whose ``field`` is where it
    sits in the body (``messages[0].content``), not an encoder's bare exception.

    Examples:
        >>> encode_json_body({"model": "m", "stop": ["é"]}).decode()
        '{"model":"m","stop":["é"]}'
        >>> try:
        ...     encode_json_body({"messages": [{"content": "a\\udc80"}]})
        ... except InvalidRequestError as error:
        ...     print(error.field)
        messages[0].content
    """
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
            "utf-8"
        )
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        path, why = _unsendable(value, "")
        raise InvalidRequestError(
            f"the request cannot be sent as JSON: {why} at {path or 'the body'}",
            field=path or None,
            provider=provider,
        ) from None


def _unsendable(value: Any, path: str, depth: int = 0) -> tuple[str, str]:
    """Where in ``value`` the first thing JSON cannot carry is, and what it is."""
    if depth > 500:
        return path, "nesting too deep"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return path, f"a lone surrogate ({exc.object[exc.start]!r}) in the text"
        return "", ""
    if isinstance(value, float):
        return (path, "NaN or infinity") if value != value or value in _INFINITIES else ("", "")
    if value is None or isinstance(value, (bool, int)):
        return "", ""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return path, f"a key of type {type(key).__name__}"
            found = _unsendable(item, f"{path}.{key}" if path else str(key), depth + 1)
            if found[1]:
                return found
        return "", ""
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _unsendable(item, f"{path}[{index}]", depth + 1)
            if found[1]:
                return found
        return "", ""
    return path, f"a {type(value).__name__}, which JSON cannot hold"


_INFINITIES = (float("inf"), float("-inf"))
