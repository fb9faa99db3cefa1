"""``retry-after`` is honoured whatever the status that carries it (issue 13, defect 7).

It used to reach `RateLimitError` only: on a 529 or a 503 the retry loop waited its own
back-off while the provider had said how long to wait. Each HTTP plugin answers, over a
real socket, an error status with ``retry-after`` and then its real answer; the retry
loop (on a `FakeClock`, so nothing really waits) must wait exactly what was said.
"""

from __future__ import annotations

from typing import Any

import pytest

from tachikoma_backends_core.clock import FakeClock
from tachikoma_backends_core.conformance.socket_mode import WireScript, ask_socket
from tachikoma_backends_core.hooks import Hooks
from tachikoma_backends_core.http.wire_server import Step, WireServer, response
from tachikoma_backends_core.managed import ManagedBackend
from tachikoma_backends_core.retry import RetryPolicy

pytestmark = pytest.mark.anyio

HTTP_PLUGINS = ["claude", "openai", "ollama"]


@pytest.mark.parametrize("name", HTTP_PLUGINS)
@pytest.mark.parametrize("status", [429, 500, 503, 529])
@pytest.mark.parametrize(
    ("header", "value", "seconds"),
    [("retry-after", "7", 7.0), ("retry-after", "1.5", 1.5), ("retry-after-ms", "2500", 2.5)],
)
async def test_the_retry_loop_waits_what_the_provider_said(
    name: str, status: int, header: str, value: str, seconds: float
) -> None:
    wire = WireScript.for_plugin(name)
    answers: list[Step] = []

    def answer(received: Any) -> list[Step]:
        if not answers:
            failed = response(status, {"content-type": "text/plain", header: value}, b"busy")
            answers.append(failed)
            return [failed]
        whole = wire.answer(received.json())
        return [response(whole.status, whole.headers, whole.body)]

    clock = FakeClock(auto_advance=True)
    with WireServer(answer) as server:
        inner = wire.create_backend(**wire.socket_settings(server)).inner
        policy = RetryPolicy.from_max_retries(1, clock=clock)
        async with ManagedBackend(inner, retry_policy=policy, hooks=Hooks()) as backend:
            reply = await backend.complete(ask_socket())
    assert reply.content
    assert len(server.requests) == 2
    assert clock.slept == [seconds]
