"""HttpConnection through httpx's MockTransport: reading, streaming, errors, release.

The decoder here is a small NDJSON one (``{"delta": ...}`` lines, then ``{"done": ...}``),
the shape of the plugin guide's Acme example, so the tests say nothing of any one
provider: only what the connection does with any decoder and any error mapping.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from tachikoma_backends_core import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    NetworkError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    Usage,
)
from tachikoma_backends_core.http import (
    MAX_ERROR_BODY,
    HttpConnection,
    HttpPluginConfig,
    NDJSONParser,
    StreamDecoder,
    error_from_response,
)

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], Any]
NewDecoder = Callable[[], StreamDecoder]  # fixtures of conftest.py
Lines = Callable[..., bytes]


class Config(HttpPluginConfig):
    base_url: str = "http://kit.test"
    model: str = "kit-1"


class Body(httpx.AsyncByteStream):
    """A response body in pieces that remembers being closed, and can fail after them."""

    def __init__(self, *pieces: bytes, error: Exception | None = None) -> None:
        self.pieces, self.error, self.closed, self.sent = pieces, error, False, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            if self.closed:
                return
            self.sent += 1
            yield piece
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True


def connect(handler: Handler, **settings: Any) -> HttpConnection:
    async def respond(request: httpx.Request) -> httpx.Response:
        answer = handler(request)
        response: httpx.Response = await answer if inspect.isawaitable(answer) else answer
        return response

    return HttpConnection(
        Config(**settings),
        provider="kit",
        label="Kit",
        headers={"authorization": "Bearer sk-kit-connection-test"},
        error_from_response=functools.partial(error_from_response, provider="kit"),
        transport=httpx.MockTransport(respond),
    )


async def test_read_returns_the_body_and_sends_the_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    connection = connect(handler, extra_headers={"x-team": "search"})
    raw = await connection.read("POST", "/v1/complete", json={"a": 1}, params={"v": "2"})
    await connection.aclose()
    assert json.loads(raw) == {"ok": True}
    (request,) = seen
    assert str(request.url) == "http://kit.test/v1/complete?v=2"
    assert request.headers["x-team"] == "search"
    assert request.headers["authorization"] == "Bearer sk-kit-connection-test"
    assert json.loads(request.content) == {"a": 1}


@pytest.mark.parametrize(
    "base_url", ["http://kit.test", "http://kit.test/api/", "http://kit.test/api"]
)
async def test_each_path_goes_where_httpx_would_send_it_call_after_call(base_url: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    connection = connect(handler, base_url=base_url)
    expected = [
        str(connection.client.build_request("POST", path).url)
        for path in ("/v1/complete", "v1/models", "/v1/complete")
    ]
    await connection.read("POST", "/v1/complete", json={"a": 1}, params={})
    await connection.read("GET", "v1/models", params={"limit": 1})
    await connection.read("POST", "/v1/complete", json={"a": 2})
    connection.client.base_url = "http://elsewhere.test/v2"  # a base_url set anew is followed
    await connection.read("GET", "/v1/complete")
    await connection.aclose()
    assert [str(request.url) for request in seen] == [
        expected[0],
        expected[1] + "?limit=1",
        expected[2],
        "http://elsewhere.test/v2/v1/complete",
    ]
    assert [request.headers.get("content-type") for request in seen] == [
        "application/json",
        None,
        "application/json",
        None,
    ]


async def test_an_error_answer_is_the_mapped_error_and_its_body_is_capped() -> None:
    body = Body(
        b'{"error": {"type": "x", "message": "', *[b"y" * 16384] * 1000, b'"}}'
    )  # about 16 MB, never read whole
    connection = connect(lambda request: httpx.Response(500, stream=body))
    with pytest.raises(ServerError) as raised:
        await connection.read("POST", "/v1/complete")
    assert body.closed
    assert body.sent * 16384 <= MAX_ERROR_BODY + 2 * 16384, "read past the cap"
    assert raised.value.status_code == 500
    assert raised.value.provider == "kit"


async def test_error_mapping_gets_status_headers_and_body() -> None:
    answer = httpx.Response(
        401, headers={"x-request-id": "req_1"}, json={"error": {"message": "bad key"}}
    )
    connection = connect(lambda request: answer)
    with pytest.raises(AuthenticationError) as raised:
        await connection.read("GET", "/v1/models")
    assert (raised.value.request_id, raised.value.message) == ("req_1", "bad key")


@pytest.mark.parametrize(
    ("failure", "expected", "words"),
    [
        (httpx.ConnectError("refused"), NetworkError, "network failure calling Kit"),
        (httpx.ReadError("reset"), NetworkError, "ReadError: reset"),
        (httpx.ConnectTimeout("slow"), BackendTimeoutError, "timed out calling Kit"),
        (httpx.ReadTimeout("slow"), BackendTimeoutError, "ReadTimeout"),
        (httpx.PoolTimeout("busy"), BackendTimeoutError, "max_connections=1000 being busy"),
    ],
)
async def test_transport_failures_are_typed_and_retryable(
    failure: Exception, expected: type[Exception], words: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(expected, match=words) as raised:
        await connect(handler).read("POST", "/v1/complete")
    assert raised.value.retryable is True  # type: ignore[attr-defined]
    assert raised.value.provider == "kit"  # type: ignore[attr-defined]


async def test_a_stream_reads_ahead_to_its_start_and_yields_every_chunk(
    new_decoder: NewDecoder, lines: Lines
) -> None:
    body = Body(lines({"model": "kit-2"})[:5], lines({"model": "kit-2"})[5:], lines(
        {"delta": "Hel"}, {"delta": "lo"}, {"done": True, "usage": [5, 2]}
    ))  # fmt: skip
    connection = connect(lambda request: httpx.Response(200, stream=body))
    stream = await connection.stream("POST", "/v1/complete", decoder=new_decoder(), model="m")
    assert body.sent == 2, "the await reads up to the start, no further"
    assert stream.model == "kit-2", "the model the stream named"
    assert stream.usage == Usage(5, 0), "the decoder's usage so far"
    response = await stream.collect()
    assert (response.content, response.usage) == ("Hello", Usage(5, 2))
    assert body.closed


async def test_an_error_before_the_start_raises_from_the_await_and_releases(
    new_decoder: NewDecoder, lines: Lines
) -> None:
    body = Body(lines({"error": "slow down"}))
    connection = connect(lambda request: httpx.Response(200, stream=body))
    with pytest.raises(RateLimitError):
        await connection.stream("POST", "/v1/complete", decoder=new_decoder(), model="m")
    assert body.closed


async def test_a_body_that_ends_before_the_start_is_cut(
    new_decoder: NewDecoder,
) -> None:
    connection = connect(lambda request: httpx.Response(200, stream=Body(b"")))
    with pytest.raises(StreamProtocolError, match="cut"):
        await connection.stream("POST", "/v1/complete", decoder=new_decoder(), model="m")


async def test_leaving_a_stream_early_releases_the_response(
    new_decoder: NewDecoder, lines: Lines
) -> None:
    body = Body(lines({"model": "m"}, {"delta": "a"}), lines({"delta": "b"}))
    connection = connect(lambda request: httpx.Response(200, stream=body))
    async with await connection.stream(
        "POST", "/v1/complete", decoder=new_decoder(), model="m"
    ) as stream:
        async for chunk in stream:
            assert chunk.delta == "a"
            break
    assert body.closed
    assert stream.closed


async def test_a_connection_failing_mid_stream_is_typed(
    new_decoder: NewDecoder, lines: Lines
) -> None:
    body = Body(lines({"model": "m"}, {"delta": "a"}), error=httpx.ReadError("reset"))
    connection = connect(lambda request: httpx.Response(200, stream=body))
    stream = await connection.stream("POST", "/v1/complete", decoder=new_decoder(), model="m")
    with pytest.raises(NetworkError, match="reading Kit's stream"):
        await stream.collect()
    assert body.closed


async def test_cancelling_the_read_ahead_releases_the_response(
    new_decoder: NewDecoder,
) -> None:
    started = anyio.Event()
    body_closed = anyio.Event()

    class Hanging(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            started.set()
            await anyio.sleep_forever()
            yield b""  # pragma: no cover - never reached

        async def aclose(self) -> None:
            body_closed.set()

    connection = connect(lambda request: httpx.Response(200, stream=Hanging()))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(
                functools.partial(
                    connection.stream, "POST", "/v1/complete", decoder=new_decoder(), model="m"
                )
            )
            await started.wait()
            group.cancel_scope.cancel()
        await body_closed.wait()


async def test_health_is_a_2xx_and_never_raises() -> None:
    answers: Iterator[httpx.Response | Exception] = iter(
        [httpx.Response(200, json={}), httpx.Response(503), httpx.ConnectError("x")]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    connection = connect(handler)
    assert [await connection.is_healthy("/v1/models") for _ in range(3)] == [True, False, False]


async def test_health_checks_can_be_cancelled() -> None:
    entered = anyio.Event()
    answers: list[bool] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        entered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    connection = connect(hang)

    async def check() -> None:
        answers.append(await connection.is_healthy("/v1/models"))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(check)
            await entered.wait()
            group.cancel_scope.cancel()
    assert answers == [], "cancellation must propagate, not read as unhealthy"


async def test_a_closed_connection_says_so_and_is_unhealthy() -> None:
    connection = connect(lambda request: httpx.Response(200))
    await connection.aclose()
    await connection.aclose()
    assert connection.closed
    with pytest.raises(ConfigurationError, match="this Kit backend is closed"):
        await connection.read("GET", "/")
    assert await connection.is_healthy("/v1/models") is False


async def test_events_yields_parsed_events_and_releases_the_response(lines: Lines) -> None:
    body = Body(lines({"status": "pulling"}) + b'{"status": "pu', b'ing"}\n', lines({"ok": 1}))
    connection = connect(lambda request: httpx.Response(200, stream=body))
    async with await connection.events("POST", "/api/pull", parser=NDJSONParser()) as events:
        seen = [event async for event in events]
    assert seen == [{"status": "pulling"}, {"status": "puing"}, {"ok": 1}], "a line cut in two"
    assert body.closed


async def test_events_raise_http_errors_from_the_await_and_type_transport_failures(
    lines: Lines,
) -> None:
    refused = connect(lambda request: httpx.Response(404, json={"error": "model 'x' not found"}))
    with pytest.raises(BackendError, match="not found"):
        await refused.events("POST", "/api/pull", parser=NDJSONParser())
    body = Body(lines({"status": "a"}), error=httpx.ReadError("reset"))
    broken = connect(lambda request: httpx.Response(200, stream=body))
    events = await broken.events("POST", "/api/pull", parser=NDJSONParser())
    with pytest.raises(NetworkError, match="reading Kit's answer"):
        [event async for event in events]
    assert body.closed


async def test_leaving_events_early_releases_the_response(lines: Lines) -> None:
    body = Body(lines({"n": 1}), lines({"n": 2}))
    connection = connect(lambda request: httpx.Response(200, stream=body))
    async with await connection.events("POST", "/api/pull", parser=NDJSONParser()) as events:
        async for _event in events:
            break
    assert body.closed
