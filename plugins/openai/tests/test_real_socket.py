"""Over a real socket: the requests as a server reads them, streams, and leaving early.

Core's `WireServer` plays an OpenAI-compatible server that wants no key, and an Azure
OpenAI resource. It records each request as it arrived (the request line, the headers,
the body); here it answers a streamed request with a whole chunk stream in chunked
transfer encoding, one event per chunk, or a plain request with a ``chat.completion``. A
request whose text is ``"hang"`` gets the opening of a stream, then the connection is
held until the client hangs up. Runs under asyncio and trio with warnings as errors, so
a generator of httpx's left suspended (trio warns about those) fails it.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from tachikoma_backend_openai import OpenAIBackend, OpenAIBackendConfig, plugin
from tachikoma_backend_openai._scripting import completion_body, sse_bytes, stream_chunks
from tachikoma_backends_core import CompletionRequest, FinishReason, Message, Usage
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
USAGE = Usage(12, 9, cache_read_input_tokens=0, reasoning_tokens=0)
AZURE_KEY = "azure-socket-key-0123456789"
API_VERSION = "2024-10-21"
STREAM_HEADERS = {"content-type": "text/event-stream"}


def answer(request: ReceivedRequest) -> list[Step]:
    if request.method == "GET":
        return [_json({"object": "list", "data": []})]
    sent = request.json()
    model = sent["model"]
    if sent["messages"][-1]["content"] == "hang":
        opening = sse_bytes(stream_chunks(model=model, text=STORY)[:2], done=False)
        return [head(200, STREAM_HEADERS), chunk(opening), HOLD]
    if sent.get("stream"):
        events = stream_chunks(model=model, text=STORY, usage=USAGE)
        return [
            head(200, STREAM_HEADERS),
            *(chunk(sse_bytes([event], done=False)) for event in events),
            chunk(b"data: [DONE]\n\n"),
            chunk(b""),
        ]
    return [_json(completion_body(model=model, text=STORY, usage=USAGE))]


def _json(value: dict[str, Any]) -> bytes:
    return response(200, {"content-type": "application/json"}, json.dumps(value).encode())


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
    """No OPENAI_API_KEY (nor AZURE_*) from the developer's environment."""
    for variable in OpenAIBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)


async def test_a_keyless_compatible_server_streams_completes_and_answers_health(
    served: tuple[str, WireServer],
) -> None:
    url, server = served
    async with plugin.create(base_url=f"{url}/v1", model="local-model", max_retries=0) as local:
        with anyio.fail_after(10):
            stream = await local.complete_stream(REQUEST)
            async with stream:
                streamed = await stream.collect()
            completed = await local.complete(REQUEST)
            healthy = await local.health_check()
    assert streamed.text == STORY
    assert streamed.finish_reason is FinishReason.STOP
    assert streamed.usage == USAGE
    assert completed.text == STORY
    assert completed.usage == USAGE
    assert healthy is True
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
    ]
    for seen in server.requests:
        assert "authorization" not in seen.headers, "no key, so no authorization header"
        assert "api-key" not in seen.headers
        assert seen.headers["host"] == url.removeprefix("http://")
    streamed_body, plain_body = server.requests[0].json(), server.requests[1].json()
    assert server.requests[0].headers["content-type"] == "application/json"
    assert streamed_body["stream"] is True
    assert streamed_body["stream_options"] == {"include_usage": True}
    assert streamed_body["model"] == "local-model"
    assert "stream" not in plain_body
    gc.collect()  # any generator left suspended would be finalised (and warned about) now


async def test_an_azure_resource_dated_api(served: tuple[str, WireServer]) -> None:
    url, server = served
    config = OpenAIBackendConfig(
        azure_endpoint=url,
        azure_api_key=SecretStr(AZURE_KEY),
        azure_deployment="dep-1",
        api_version=API_VERSION,
    )
    async with OpenAIBackend(config) as backend:
        with anyio.fail_after(10):
            completed = await backend.complete(REQUEST)
            streamed = await (await backend.complete_stream(REQUEST)).collect()
            healthy = await backend.health_check()
    assert (completed.text, streamed.text, healthy) == (STORY, STORY, True)
    chat = f"/openai/deployments/dep-1/chat/completions?api-version={API_VERSION}"
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", chat),
        ("POST", chat),
        ("GET", f"/openai/models?api-version={API_VERSION}"),
    ]
    for seen in server.requests:
        assert seen.headers["api-key"] == AZURE_KEY
        assert "authorization" not in seen.headers
    gc.collect()


async def test_an_azure_resource_v1_api(served: tuple[str, WireServer]) -> None:
    url, server = served
    config = OpenAIBackendConfig(
        azure_endpoint=f"{url}/", azure_api_key=SecretStr(AZURE_KEY), azure_deployment="dep-1"
    )
    async with OpenAIBackend(config) as backend:
        with anyio.fail_after(10):
            completed = await backend.complete(REQUEST)
            streamed = await (await backend.complete_stream(REQUEST)).collect()
            healthy = await backend.health_check()
    assert (completed.text, streamed.text, healthy) == (STORY, STORY, True)
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/openai/v1/chat/completions"),
        ("POST", "/openai/v1/chat/completions"),
        ("GET", "/openai/v1/models"),
    ]
    assert [r.json()["model"] for r in server.requests[:2]] == ["dep-1", "dep-1"]
    for seen in server.requests:
        assert seen.headers["api-key"] == AZURE_KEY
        assert "authorization" not in seen.headers
    gc.collect()


async def test_leaving_a_stream_early_hangs_up_and_the_backend_goes_on(
    served: tuple[str, WireServer],
) -> None:
    url, server = served
    config = OpenAIBackendConfig(api_key=SecretStr("sk-openai-socket-test"), base_url=f"{url}/v1")
    async with OpenAIBackend(config) as backend:
        with anyio.fail_after(10):
            async with await backend.complete_stream(HANG) as stream:
                async for chunk in stream:
                    assert chunk.delta == STORY[:8]
                    break
            await hung_up(server)
            response = await backend.complete(REQUEST)
    assert response.text == STORY
    assert [r.json().get("stream", False) for r in server.requests] == [True, False]
    assert server.requests[0].headers["authorization"] == "Bearer sk-openai-socket-test"
    gc.collect()


async def test_cancelling_a_stream_mid_body_hangs_up_and_leaves_nothing(
    served: tuple[str, WireServer],
) -> None:
    url, server = served
    config = OpenAIBackendConfig(api_key=SecretStr("sk-openai-socket-test"), base_url=f"{url}/v1")
    async with OpenAIBackend(config) as backend:
        with anyio.fail_after(10):
            first = anyio.Event()

            async def read_forever() -> None:
                async with await backend.complete_stream(HANG) as stream:
                    async for _chunk in stream:
                        first.set()

            async with anyio.create_task_group() as group:
                group.start_soon(read_forever)
                await first.wait()
                group.cancel_scope.cancel()
            await hung_up(server)
            response = await backend.complete(REQUEST)
    assert response.text == STORY
    gc.collect()
