"""HttpxHarness: the conformance harness contract for HTTP providers, written once.

Every HTTP plugin scripts its provider the same way: pytest-httpx answers the backend's
real ``httpx`` client with real provider-shaped HTTP responses, so the suite exercises the
plugin's encoding, parsing and error mapping with only the network missing. What differs
between providers is the shape of their bodies; everything else is here:

* the one ``ErrorKind`` -> HTTP status table (`DEFAULT_ERROR_STATUSES`), transport
  failures as httpx exceptions, a ``retry-after`` header for scripted waits;
* a broken stream built from the provider's opening events (then garbage, or the end);
* a health endpoint that answers from `healthy`, however often it is asked;
* attempt counting (every completion request pytest-httpx received) and open-response
  counting (every completion response handed out and not closed since);
* every answer registered ``is_optional=True``: some traits script a reply the backend
  must never ask for, and pytest-httpx would otherwise fail them at teardown;
* contract 3's transport primitives: a reply's `Delivery` (a byte per read, CRLF line
  endings, the connection held open after the final event), stalls that end the way a
  real connection's do (``httpx.ReadTimeout`` once the request's read timeout passes,
  never by themselves), and whether every ``httpx.AsyncClient`` the backend made was
  closed (`transport_closed`).

A provider's harness sets the class attributes and supplies its bodies:
`reply_response`, `error_body`, `stream_opening`, `stream_error` and `decode_sent`
(plus, where its service differs, `error_headers`, `health_response` and
`partial_usage`).
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.lowlevel
import httpx

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.conformance.harness import (
    ConformanceHarness,
    Delivery,
    ErrorKind,
    ScriptedFailure,
    ScriptedReply,
    SentRequest,
    StallPoint,
)
from tachikoma_backends_core.errors import ConfigurationError

if TYPE_CHECKING:
    import pytest
    from pytest_httpx import HTTPXMock

    from tachikoma_backends_core.plugin import BackendPlugin

__all__ = ["DEFAULT_ERROR_STATUSES", "HttpxHarness"]

#: The HTTP status a provider answers each request-level failure with, unless a harness
#: says otherwise in ``error_statuses`` (OpenAI's overload is a 503, say).
DEFAULT_ERROR_STATUSES: Mapping[ErrorKind, int] = MappingProxyType(
    {
        ErrorKind.RATE_LIMIT: 429,
        ErrorKind.AUTHENTICATION: 401,
        ErrorKind.PERMISSION_DENIED: 403,
        ErrorKind.INVALID_REQUEST: 400,
        ErrorKind.CONTEXT_LENGTH: 400,
        ErrorKind.MODEL_NOT_FOUND: 404,
        ErrorKind.OVERLOADED: 529,
        ErrorKind.SERVER_ERROR: 500,
    }
)


def _url_pattern(base_url: str, path: str) -> re.Pattern[str]:
    """``base_url + path``, with or without a query string."""
    return re.compile(rf"^{re.escape(base_url + path)}(\?.*)?$")


async def _stall(request: httpx.Request) -> None:
    """Wait as a silent connection does: until the request's read timeout, then raise
    what httpx's transport raises (forever, without one: the caller must cancel)."""
    timeouts = request.extensions.get("timeout") or {}
    seconds = timeouts.get("read")
    if seconds is None:
        await anyio.sleep_forever()
        return  # never reached: sleep_forever ends only by cancellation
    await anyio.sleep(seconds)
    raise httpx.ReadTimeout("scripted stall: no byte within the read timeout", request=request)


class _ScriptedBody(httpx.AsyncByteStream):
    """A response body delivered in ``pieces``, one per read, then the end or a stall."""

    def __init__(self, request: httpx.Request, pieces: Sequence[bytes], *, stall: bool) -> None:
        self.request = request
        self.pieces = pieces
        self.stall = stall

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
            await anyio.lowlevel.checkpoint()  # a read is a chance to switch tasks
        if self.stall:
            await _stall(self.request)


def _without_length(headers: httpx.Headers) -> dict[str, str]:
    """``headers`` for a body re-cut or cut short: its old length no longer holds."""
    return {k: v for k, v in headers.items() if k.lower() != "content-length"}


class HttpxHarness(ConformanceHarness):
    """Base of the harnesses of HTTP plugins; see the module docstring.

    Attributes:
        backend_plugin: the plugin's `BackendPlugin`; backends are built through it.
        base_url: where the scripted provider lives (``"http://acme.test"``).
        completion_path: the completion endpoint (``"/v1/complete"``), always ``POST``.
        health_path: what `health_check` asks with ``GET`` (``None``: nothing scripted).
        test_settings: config for scripted backends (a test key, say); ``base_url``
            and ``max_retries=0`` are added, and a trait's own settings win.
        live_settings: config for ``--live`` backends, on top of the environment.
        error_statuses: `ErrorKind` -> the status the provider answers it with.
        stream_headers: the headers of a streamed answer.
        malformed_event: what follows the opening of a ``MALFORMED_STREAM`` answer.
        healthy: what the health endpoint answers; `script_unhealthy` clears it.
        responses: every completion response handed to the backend, in order.
    """

    backend_plugin: ClassVar[BackendPlugin[Any]]
    base_url: ClassVar[str]
    completion_path: ClassVar[str]
    health_path: ClassVar[str | None] = None
    test_settings: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    live_settings: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    error_statuses: ClassVar[Mapping[ErrorKind, int]] = DEFAULT_ERROR_STATUSES
    stream_headers: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"content-type": "text/event-stream"}
    )
    malformed_event: ClassVar[bytes] = b"data: <html>502 Bad Gateway</html>\n\n"
    requires_pytest_plugins: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"pytest_httpx": "pytest-httpx>=0.34"}
    )

    def __init__(self, request: pytest.FixtureRequest) -> None:
        super().__init__(request)
        self.healthy = True
        self.health_stalled = False
        self.responses: list[httpx.Response] = []
        self.clients: list[httpx.AsyncClient] = []
        self._scripting = False  # the health endpoint and client watch are installed

    # What each provider supplies: the shapes of its bodies.

    @abc.abstractmethod
    def reply_response(self, reply: ScriptedReply, sent: Any) -> httpx.Response:
        """The provider's answer to the request body ``sent`` (decoded JSON): a JSON
        body, or a stream (use `stream_response`) when ``sent`` asks for one."""

    @abc.abstractmethod
    def error_body(self, failure: ScriptedFailure, sent: Any) -> Any:
        """The JSON body the provider sends with a request-level ``failure``."""

    @abc.abstractmethod
    def stream_opening(self, sent: Any) -> bytes:
        """The start of a streamed answer: up to and including a first text chunk."""

    @abc.abstractmethod
    def decode_sent(self, sent: Any) -> SentRequest:
        """A request body the backend sent (decoded JSON), in the core's terms."""

    def stream_error(self, failure: ScriptedFailure, sent: Any) -> bytes:
        """The event a provider sends when ``failure`` (a request-level kind) happens
        after its stream started (contract 3): follows `stream_opening`."""
        raise NotImplementedError(
            f"{type(self).__name__}.stream_error: a contract 3 harness gives the event its "
            "provider sends for an error after the stream started"
        )

    def error_headers(self, failure: ScriptedFailure, status: int) -> dict[str, str]:
        """Headers of an error answer: ``retry-after`` (whole seconds when whole) if set."""
        if failure.retry_after is None:
            return {}
        return {"retry-after": f"{failure.retry_after:g}"}

    def health_response(self, healthy: bool) -> httpx.Response:
        """The health endpoint's answer: ``200 {}``, or a ``503`` when unhealthy."""
        if healthy:
            return httpx.Response(200, json={})
        return httpx.Response(503, json={"error": {"type": "unavailable", "message": "down"}})

    def stream_response(self, body: bytes) -> httpx.Response:
        """A ``200`` streamed answer with ``stream_headers``."""
        return httpx.Response(200, headers=dict(self.stream_headers), content=body)

    # The harness contract, for every HTTP provider.

    @property
    def httpx_mock(self) -> HTTPXMock:
        """pytest-httpx's fixture, fetched on first use: under --live nothing may mock."""
        import pytest

        try:
            mock: HTTPXMock = self.fixture("httpx_mock")
        except pytest.FixtureLookupError:
            raise ConfigurationError(
                f"{type(self).__name__} scripts the provider with pytest-httpx, which is "
                "not installed here: pip install 'pytest-httpx>=0.34' (or the plugin's "
                "[conformance] extra)"
            ) from None
        return mock

    @property
    def completion_url(self) -> re.Pattern[str]:
        return _url_pattern(self.base_url, self.completion_path)

    def create_backend(self, **config: Any) -> Backend:
        if not self._scripting:  # once per test, however many backends it creates
            self._scripting = True
            self._watch_clients()
            if self.health_path is not None:
                self.httpx_mock.add_callback(
                    self._health,
                    method="GET",
                    url=_url_pattern(self.base_url, self.health_path),
                    is_optional=True,
                    is_reusable=True,
                )
        settings = {"base_url": self.base_url, "max_retries": 0, **self.test_settings, **config}
        return self.backend_plugin.create(**settings)

    def _watch_clients(self) -> None:
        # Every httpx.AsyncClient made from now on (undone when the test ends), so that
        # transport_closed can tell whether aclose closed them.
        clients, original = self.clients, httpx.AsyncClient.__init__

        def recording_init(client: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
            original(client, *args, **kwargs)
            clients.append(client)

        self.fixture("monkeypatch").setattr(httpx.AsyncClient, "__init__", recording_init)

    def _health(self, request: httpx.Request) -> httpx.Response | Awaitable[httpx.Response]:
        if self.health_stalled:
            return self._stalled(request)
        return self.health_response(self.healthy)

    @staticmethod
    async def _stalled(request: httpx.Request) -> httpx.Response:
        await _stall(request)
        raise AssertionError("unreachable: a stall ends in a timeout or a cancellation")

    def create_live_backend(self) -> Backend:
        # Credentials (and base URL) from the environment, as users give them.
        return self.backend_plugin.create(**self.live_settings)

    def script_reply(self, reply: ScriptedReply) -> None:
        # One reply, plain or streamed: the request body decides, as the provider would.
        if reply.delivery == Delivery():
            self._answer_next(lambda sent, request: self.reply_response(reply, sent))
            return
        self._answer_next(
            lambda sent, request: self._delivered(
                self.reply_response(reply, sent), reply.delivery, request
            )
        )

    def _delivered(
        self, answer: httpx.Response, delivery: Delivery, request: httpx.Request
    ) -> httpx.Response:
        """``answer`` with its body delivered as ``delivery`` says."""
        body = answer.content
        if delivery.line_ending != "\n":
            # Provider framing is lines of JSON (SSE, NDJSON): JSON text holds no raw
            # newline, so every one in the body is framing.
            body = body.replace(b"\n", delivery.line_ending.encode())
        size = delivery.read_size or max(len(body), 1)
        pieces = [body[start : start + size] for start in range(0, len(body), size)]
        stream = _ScriptedBody(request, pieces, stall=delivery.keep_open)
        headers = _without_length(answer.headers)
        return httpx.Response(answer.status_code, headers=headers, stream=stream)

    def script_stall(self, point: StallPoint) -> None:
        if point is StallPoint.HEALTH_CHECK:
            self.health_stalled = True
        elif point is StallPoint.BEFORE_RESPONSE:
            self.httpx_mock.add_callback(
                self._stalled, method="POST", url=self.completion_url, is_optional=True
            )
        else:
            self._answer_next(self._stalled_mid_body)

    def _stalled_mid_body(self, sent: Any, request: httpx.Request) -> httpx.Response:
        answer = self.reply_response(ScriptedReply(text="The answer that never ends."), sent)
        streamed = answer.headers.get("content-type") == self.stream_headers.get("content-type")
        start = (
            self.stream_opening(sent) if streamed else answer.content[: len(answer.content) // 2]
        )
        headers = _without_length(answer.headers)
        return httpx.Response(
            answer.status_code, headers=headers, stream=_ScriptedBody(request, [start], stall=True)
        )

    def script_failure(self, failure: ScriptedFailure) -> None:
        kind = failure.kind
        if failure.after_first_chunk:
            if kind.mid_stream or kind in (ErrorKind.NETWORK, ErrorKind.TIMEOUT):
                raise ValueError(f"after_first_chunk is for provider errors, not {kind.value}")
            self._answer_next(
                lambda sent, request: self.stream_response(
                    self.stream_opening(sent) + self.stream_error(failure, sent)
                )
            )
        elif kind is ErrorKind.NETWORK:
            self._fail_next(httpx.ConnectError(failure.message))
        elif kind is ErrorKind.TIMEOUT:
            self._fail_next(httpx.ReadTimeout(failure.message))
        elif kind.mid_stream:
            garbage = self.malformed_event if kind is ErrorKind.MALFORMED_STREAM else b""
            self._answer_next(
                lambda sent, request: self.stream_response(self.stream_opening(sent) + garbage)
            )
        else:
            status = self.error_statuses[kind]
            self._answer_next(
                lambda sent, request: httpx.Response(
                    status,
                    headers=self.error_headers(failure, status),
                    json=self.error_body(failure, sent),
                )
            )

    def sent_requests(self) -> list[SentRequest]:
        # Every attempt received, failed ones included: a hidden retry shows.
        requests = self.httpx_mock.get_requests(method="POST", url=self.completion_url)
        return [self.decode_sent(json.loads(request.content)) for request in requests]

    def script_unhealthy(self) -> None:
        self.healthy = False

    def open_responses(self) -> int:
        # pytest-httpx hands the backend these very objects; closing one marks it closed.
        return sum(not response.is_closed for response in self.responses)

    def transport_closed(self) -> bool:
        # Every client the backend made since create_backend: aclose must close them all.
        return all(client.is_closed for client in self.clients)

    def _answer_next(self, answer: Callable[[Any, httpx.Request], httpx.Response]) -> None:
        """Answer the next completion request with ``answer(sent body, request)``."""

        def respond(request: httpx.Request) -> httpx.Response:
            response = answer(json.loads(request.content), request)
            self.responses.append(response)
            return response

        self.httpx_mock.add_callback(
            respond, method="POST", url=self.completion_url, is_optional=True
        )

    def _fail_next(self, error: Exception) -> None:
        self.httpx_mock.add_exception(
            error, method="POST", url=self.completion_url, is_optional=True
        )
