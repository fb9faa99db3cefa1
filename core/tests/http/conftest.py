"""Shared by the HTTP kit's tests: a tiny NDJSON stream decoder, as fixtures.

The shape of the plugin guide's Acme example: ``{"model": m}`` starts the stream,
``{"delta": t}`` lines carry text, ``{"done": true, "usage": [i, o]}`` ends it, and
``{"error": message}`` is a rate limit. Fixtures rather than imports: under
``--import-mode=importlib`` test modules cannot import one another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tachikoma_backends_core import (
    CompletionChunk,
    FinishReason,
    RateLimitError,
    StreamProtocolError,
    Usage,
)
from tachikoma_backends_core.http import NDJSONParser, StreamDecoder


class LinesDecoder:
    """A `StreamDecoder` over `NDJSONParser`, reporting ``Usage(5, 0)`` once started."""

    def __init__(self) -> None:
        self.lines = NDJSONParser(provider="kit")
        self.started = False
        self.finished = False
        self.model: str | None = None

    def feed(self, data: bytes) -> list[CompletionChunk]:
        return [chunk for value in self.lines.feed(data) if (chunk := self._chunk(value))]

    def close(self) -> list[CompletionChunk]:
        chunks = [chunk for value in self.lines.close() if (chunk := self._chunk(value))]
        if not self.finished:
            raise StreamProtocolError("cut", provider="kit")
        return chunks

    def usage_so_far(self) -> Usage | None:
        return Usage(5, 0) if self.started else None

    def _chunk(self, value: dict[str, Any]) -> CompletionChunk | None:
        if "error" in value:
            raise RateLimitError(value["error"], provider="kit")
        if "model" in value:
            self.started, self.model = True, value["model"]
            return None
        if value.get("done"):
            self.finished = True
            return CompletionChunk.final_chunk(Usage(*value["usage"]), FinishReason.STOP)
        return CompletionChunk.text(value["delta"])


def _lines(*values: object) -> bytes:
    return b"".join(json.dumps(value).encode() + b"\n" for value in values)


@pytest.fixture
def new_decoder() -> Callable[[], StreamDecoder]:
    """Makes a fresh `LinesDecoder`."""
    return LinesDecoder


@pytest.fixture
def lines() -> Callable[..., bytes]:
    """JSON values as NDJSON bytes, one per line."""
    return _lines


def _cost_ratio(feed: Callable[[bytes], None], one_event: bytes, many_events: bytes) -> float:
    """CPU time of ``feed(one_event)`` over ``feed(many_events)`` (best of five each).

    Give both bodies the same size: a linear parser does the same work for one event of
    N bytes as for N/4096 events of 4 KiB (a ratio near 1); a parser that re-scans what
    it holds at every read does N/4096 times more (hundreds). A ratio measured in one
    run, so a noisy machine slows both sides alike: never an absolute time.
    """

    def best(body: bytes) -> float:
        times = []
        for _ in range(5):
            started = time.process_time()
            feed(body)
            times.append(time.process_time() - started)
        return max(min(times), 1e-6)

    best(many_events)  # warm up
    return best(one_event) / best(many_events)


@pytest.fixture
def cost_ratio() -> Callable[[Callable[[bytes], None], bytes, bytes], float]:
    """`_cost_ratio`: one big event against many small ones of the same total size."""
    return _cost_ratio
