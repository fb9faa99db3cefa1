"""Over a real socket: the requests as a server reads them, streams, and leaving early.

Core's `WireServer` plays Ollama. It records each request as it arrived (the request
line, the headers, the body); here it answers a streamed ``/api/chat`` with its NDJSON
lines in chunked transfer encoding, one line per chunk, a ``"stream": false`` one with
the whole answer, ``/api/version`` with its version and ``/api/pull`` with progress
lines. A chat whose text is ``"hang"``, or a pull of ``"huge"``, gets an opening, then
the connection is held until the client hangs up. Runs under asyncio and trio with
warnings as errors, so a generator of httpx's left suspended (trio warns about those)
fails it.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from tachikoma_backend_ollama import OllamaBackend, OllamaBackendConfig, plugin
from tachikoma_backend_ollama._scripting import chat_answer, chat_lines, ndjson_bytes, pull_lines
from tachikoma_backends_core import CompletionRequest, FinishReason, Message, PullProgress, Usage
from tachikoma_backends_core.conformance.socket_mode import wait_for_no_sockets
from tachikoma_backends_core.http.wire_server import (
    HOLD,
    ReceivedRequest,
    Step,
    WireServer,
    chunk,
    head,
    response,
)

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest(messages=[Message.user("Tell me a long story")])
HANG = CompletionRequest(messages=[Message.user("hang")])
STORY = "Once upon a time, a socket was opened."
USAGE = Usage(12, 9)
LINES_HEADERS = {"content-type": "application/x-ndjson"}


def answer(request: ReceivedRequest) -> list[Step]:
    if request.path == "/api/version":
        return [_json({"version": "0.32.15"})]
    sent = request.json()
    if request.path == "/api/pull":
        if sent["model"] == "huge":
            return _hang_after(ndjson_bytes(pull_lines()[:2]))
        return _lines(pull_lines())
    if sent["messages"][-1]["content"] == "hang":
        return _hang_after(ndjson_bytes(chat_lines(model=sent["model"], text=STORY)[:2]))
    if sent.get("stream", True):
        return _lines(chat_lines(model=sent["model"], text=STORY, usage=USAGE))
    return [_json(chat_answer(model=sent["model"], text=STORY, usage=USAGE))]


def _json(value: dict[str, Any]) -> bytes:
    headers = {"content-type": "application/json; charset=utf-8"}
    return response(200, headers, json.dumps(value).encode())


def _lines(lines: list[Any]) -> list[Step]:
    return [
        head(200, LINES_HEADERS),
        *(chunk(ndjson_bytes([line])) for line in lines),
        chunk(b""),
    ]


def _hang_after(opening: bytes) -> list[Step]:
    return [head(200, LINES_HEADERS), chunk(opening), HOLD]


async def hung_up(server: WireServer) -> None:
    """The connection the client left is closed, at both ends."""
    left, at_server = await wait_for_no_sockets(server)
    assert not left
    assert not at_server


@pytest.fixture
def served() -> Iterator[tuple[str, WireServer]]:
    with WireServer(answer) as server:
        yield server.url, server


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OLLAMA_HOST nor OLLAMA_API_KEY from the developer's environment."""
    for variable in OllamaBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)


async def test_streams_completes_and_answers_health(served: tuple[str, WireServer]) -> None:
    url, server = served
    async with plugin.create(base_url=url, num_ctx=8192, max_retries=0) as ollama:
        with anyio.fail_after(10):
            stream = await ollama.complete_stream(REQUEST)
            async with stream:
                streamed = await stream.collect()
            completed = await ollama.complete(REQUEST)
            healthy = await ollama.health_check()
    assert streamed.text == STORY
    assert streamed.finish_reason is FinishReason.STOP
    assert streamed.usage == USAGE
    assert stream.model == "llama3.2"
    assert completed.text == STORY
    assert completed.usage == USAGE
    assert healthy is True
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/api/chat"),
        ("POST", "/api/chat"),
        ("GET", "/api/version"),
    ]
    for seen in server.requests:
        assert "authorization" not in seen.headers, "no key, so no authorization header"
        assert seen.headers["host"] == url.removeprefix("http://")
    streamed_body, plain_body = server.requests[0].json(), server.requests[1].json()
    assert server.requests[0].headers["content-type"] == "application/json"
    assert streamed_body["stream"] is True
    assert plain_body["stream"] is False
    assert streamed_body["options"] == plain_body["options"] == {"num_ctx": 8192}
    gc.collect()  # any generator left suspended would be finalised (and warned about) now


async def test_a_key_and_a_path_prefix_reach_the_server(served: tuple[str, WireServer]) -> None:
    # A reverse proxy in front of Ollama, at a path, wanting a bearer token.
    url, server = served
    config = OllamaBackendConfig(base_url=f"{url}/ollama/", api_key=SecretStr("proxy-key-42"))
    async with OllamaBackend(config) as ollama:
        with anyio.fail_after(10):
            await ollama.complete(REQUEST)
    (seen,) = server.requests
    assert seen.path == "/ollama/api/chat"
    assert seen.headers["authorization"] == "Bearer proxy-key-42"
    gc.collect()


async def test_a_pull_streams_its_progress(served: tuple[str, WireServer]) -> None:
    url, server = served
    async with OllamaBackend(OllamaBackendConfig(base_url=url)) as ollama:
        with anyio.fail_after(10):
            events = [event async for event in ollama.pull_model("llama3.2")]
    assert [e.status for e in events] == [line["status"] for line in pull_lines()]
    assert events[-1] == PullProgress("success")
    assert server.requests[0].json() == {"model": "llama3.2", "stream": True}
    gc.collect()


async def test_leaving_a_stream_early_hangs_up_and_the_backend_goes_on(
    served: tuple[str, WireServer],
) -> None:
    url, server = served
    async with OllamaBackend(OllamaBackendConfig(base_url=url)) as ollama:
        with anyio.fail_after(10):
            async with await ollama.complete_stream(HANG) as stream:
                async for chunk in stream:
                    assert chunk.delta == STORY[:8]
                    break
            await hung_up(server)
            response = await ollama.complete(REQUEST)
    assert response.text == STORY
    assert [r.json().get("stream") for r in server.requests] == [True, False]
    gc.collect()


async def test_leaving_a_pull_early_hangs_up_and_the_backend_goes_on(
    served: tuple[str, WireServer],
) -> None:
    url, server = served
    async with OllamaBackend(OllamaBackendConfig(base_url=url)) as ollama:
        with anyio.fail_after(10):
            pull = ollama.pull_model("huge")
            assert isinstance(pull, AsyncGenerator), "closeable, as its docstring says"
            async with contextlib.aclosing(pull) as pulling:
                async for event in pulling:
                    assert event.status == "pulling manifest"
                    break
            await hung_up(server)
            healthy = await ollama.health_check()
    assert healthy is True
    gc.collect()


async def test_cancelling_a_stream_mid_body_hangs_up_and_leaves_nothing(
    served: tuple[str, WireServer],
) -> None:
    url, server = served
    async with OllamaBackend(OllamaBackendConfig(base_url=url)) as ollama:
        with anyio.fail_after(10):
            first = anyio.Event()

            async def read_forever() -> None:
                async with await ollama.complete_stream(HANG) as stream:
                    async for _chunk in stream:
                        first.set()

            async with anyio.create_task_group() as group:
                group.start_soon(read_forever)
                await first.wait()
                group.cancel_scope.cancel()
            await hung_up(server)
            response = await ollama.complete(REQUEST)
    assert response.text == STORY
    gc.collect()
