"""Secrets audit: the whole socket fault matrix, run with a sentinel key (issue 13).

Every fault of socket mode, on both call kinds, for every HTTP plugin, with a sentinel API
key, DEBUG logging captured from every logger and a hook extension recording everything
it is shown, plus faults that echo the key back (in an error message, at the cut of a
long HTML page, in a request-id header). The key, and any 8-character piece of it, must
appear nowhere: not in an error's ``str``, ``repr`` or attributes, not in a response, a
log line (tracebacks included), a hook's arguments, nor the backend's or its config's
``repr``. One event loop is enough here: the socket traits run both.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tachikoma_backends_core.conformance.socket_mode import (
    FAULTS,
    Call,
    Fault,
    WireScript,
    run_fault,
)
from tachikoma_backends_core.hooks import Hooks, hookimpl
from tachikoma_backends_core.http.wire_server import Step, response

pytestmark = pytest.mark.anyio

HTTP_PLUGINS = ["claude", "openai", "ollama"]
SENTINEL = "sk-audit-SENTINEL-7f3a9c2e41b85d0693"
PIECES = [SENTINEL[start : start + 8] for start in range(len(SENTINEL) - 7)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordEverything:
    """A hook extension that keeps the repr of every argument of every hook."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def _keep(self, *values: object) -> None:
        for value in values:
            self.seen.append(repr(value))
            self.seen.append(str(value))
            if hasattr(value, "__dict__"):
                self.seen.append(repr(vars(value)))

    @hookimpl
    def tachikoma_request(self, request: Any, backend: Any) -> None:
        self._keep(request, backend)

    @hookimpl
    def tachikoma_response(self, request: Any, response: Any, backend: Any) -> None:
        self._keep(request, response, backend)

    @hookimpl
    def tachikoma_chunk(self, request: Any, chunk: Any, backend: Any) -> None:
        self._keep(chunk)

    @hookimpl
    def tachikoma_error(
        self, request: Any, error: Any, backend: Any, attempt: int, will_retry: bool
    ) -> None:
        self._keep(request, error, backend)


def _echo_in_message(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    message = f"Incorrect API key provided: {SENTINEL}. You can find your key in settings."
    body = json.dumps({"error": {"type": "authentication_error", "message": message}})
    return [response(401, {"content-type": "application/json"}, body.encode())]


def _echo_at_the_cut(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    page = "<html><body>" + "x" * 278 + SENTINEL + "y" * 4000 + "</body></html>"
    return [response(502, {"content-type": "text/html"}, page.encode())]


def _echo_in_headers(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    headers = {"request-id": SENTINEL, "x-request-id": SENTINEL, "retry-after": "1"}
    return [response(429, {"content-type": "text/plain", **headers}, b"slow down")]


ECHOES = [
    Fault("key-echoed-in-the-message", _echo_in_message, (None,)),
    Fault("key-echoed-at-the-cut", _echo_at_the_cut, (None,)),
    Fault("key-echoed-in-headers", _echo_in_headers, (None,)),
]


def _leaks(where: str, texts: list[str]) -> list[str]:
    found = []
    for text in texts:
        for piece in PIECES:
            if piece in text:
                found.append(f"{where}: {piece!r} in {text[:200]!r}")
                break
    return found


@pytest.mark.parametrize("name", HTTP_PLUGINS)
async def test_no_piece_of_the_key_appears_anywhere(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: httpx's, httpcore's and ours
    wire = WireScript.for_plugin(name)
    recorder = RecordEverything()
    hooks = Hooks()
    hooks.register(recorder, "audit")
    leaks: list[str] = []
    for fault in [*FAULTS.values(), *ECHOES]:
        for call in fault.calls:
            outcome = await run_fault(fault, call, wire, hooks=hooks, config={"api_key": SENTINEL})
            error, answer = outcome.error, outcome.response
            shown = [str(error), repr(error), repr(answer)]
            if error is not None:
                shown += [repr(value) for value in vars(error).values()]
            leaks += _leaks(f"{fault.name} ({call.value})", shown)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    assert caplog.records, "nothing was logged at DEBUG: the audit would prove nothing"
    leaks += _leaks("log", [formatter.format(record) for record in caplog.records])
    assert recorder.seen, "the hook saw nothing: the audit would prove nothing"
    leaks += _leaks("hook", recorder.seen)
    backend = wire.create_backend(api_key=SENTINEL, base_url="http://127.0.0.1:9")
    async with backend:
        config = wire.harness.backend_plugin.configure(api_key=SENTINEL)
        leaks += _leaks("repr", [repr(backend), repr(backend.inner), repr(config), str(config)])
    # The server did receive the key: the audit is about what we show, not what we send.
    assert not leaks, "the key showed:\n" + "\n".join(leaks[:20])
