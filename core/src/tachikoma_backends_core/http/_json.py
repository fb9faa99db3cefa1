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

from tachikoma_backends_core.errors import StreamProtocolError

from ._excerpt import excerpt

__all__ = ["decode_json", "scan_json"]

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
