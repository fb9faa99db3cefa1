"""The HTTP provider kit: what every HTTP provider plugin needs, written once.

A provider plugin is its wire format (encode requests, decode answers and streams, map
errors: pure functions) plus thin glue on this kit:

* `HttpPluginConfig`: the shared settings (key, URL, timeouts, retries, pool, proxy, CA);
* `HttpConnection`: one ``httpx.AsyncClient``: send, read, stream with read-ahead,
  release safely, typed transport errors; `StreamDecoder` is what its streams need,
  and `EventStreamDecoder` a base that does all but read each event;
* `SSEParser`, `NDJSONParser`: incremental, linear-time byte parsers with a size cap;
  `decode_json` and `scan_json` decode one streamed JSON payload cheaply;
* error helpers: `error_from_response` (the usual body shapes), `ErrorBody`,
  `build_error`, `parse_retry_after`, `should_retry`, `request_id_from_headers`,
  `error_class_for_status` and `STATUS_ERRORS`; `excerpt` quotes what a provider sent,
  redacted then shortened;
* `HttpxHarness`: the conformance harness base (pytest-httpx);
* the ``wire_server`` module: `WireServer`, a scripted HTTP/1.1 server on 127.0.0.1 for
  tests over real sockets (stalls, resets, trickles, held connections).

Names load on first use (PEP 562): a plugin's entry point imports `HttpPluginConfig`
without importing httpx, and its wire layer imports the parsers without the connection.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import HttpPluginConfig as HttpPluginConfig
    from ._connection import MAX_ERROR_BODY as MAX_ERROR_BODY
    from ._connection import ErrorMapper as ErrorMapper
    from ._connection import HttpConnection as HttpConnection
    from ._connection import HttpEvents as HttpEvents
    from ._connection import StreamDecoder as StreamDecoder
    from ._connection import release_response as release_response
    from ._decoder import EventParser as EventParser
    from ._decoder import EventStreamDecoder as EventStreamDecoder
    from ._errors import REQUEST_ID_HEADERS as REQUEST_ID_HEADERS
    from ._errors import STATUS_ERRORS as STATUS_ERRORS
    from ._errors import ErrorBody as ErrorBody
    from ._errors import build_error as build_error
    from ._errors import error_class_for_status as error_class_for_status
    from ._errors import error_from_response as error_from_response
    from ._errors import parse_retry_after as parse_retry_after
    from ._errors import request_id_from_headers as request_id_from_headers
    from ._errors import should_retry as should_retry
    from ._excerpt import EXCERPT_CONTEXT as EXCERPT_CONTEXT
    from ._excerpt import excerpt as excerpt
    from ._harness import DEFAULT_ERROR_STATUSES as DEFAULT_ERROR_STATUSES
    from ._harness import HttpxHarness as HttpxHarness
    from ._json import decode_json as decode_json
    from ._json import scan_json as scan_json
    from ._ndjson import DEFAULT_MAX_LINE_SIZE as DEFAULT_MAX_LINE_SIZE
    from ._ndjson import NDJSONParser as NDJSONParser
    from ._sse import DEFAULT_MAX_EVENT_SIZE as DEFAULT_MAX_EVENT_SIZE
    from ._sse import SSEParser as SSEParser

_EXPORTS: dict[str, str] = {
    "HttpPluginConfig": "_config",
    **dict.fromkeys(
        [
            "MAX_ERROR_BODY",
            "ErrorMapper",
            "HttpConnection",
            "HttpEvents",
            "StreamDecoder",
            "release_response",
        ],
        "_connection",
    ),
    **dict.fromkeys(["EventParser", "EventStreamDecoder"], "_decoder"),
    **dict.fromkeys(
        [
            "REQUEST_ID_HEADERS",
            "STATUS_ERRORS",
            "ErrorBody",
            "build_error",
            "error_class_for_status",
            "error_from_response",
            "parse_retry_after",
            "request_id_from_headers",
            "should_retry",
        ],
        "_errors",
    ),
    **dict.fromkeys(["EXCERPT_CONTEXT", "excerpt"], "_excerpt"),
    **dict.fromkeys(["DEFAULT_ERROR_STATUSES", "HttpxHarness"], "_harness"),
    **dict.fromkeys(["decode_json", "scan_json"], "_json"),
    **dict.fromkeys(["DEFAULT_MAX_LINE_SIZE", "NDJSONParser"], "_ndjson"),
    **dict.fromkeys(["DEFAULT_MAX_EVENT_SIZE", "SSEParser"], "_sse"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
