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
  must never ask for, and pytest-httpx would otherwise fail them at teardown.

A provider's harness sets the class attributes and supplies its bodies:
`reply_response`, `error_body`, `stream_opening` and `decode_sent` (plus, where its
service differs, `error_headers`, `health_response` and `partial_usage`).
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.conformance.harness import (
    ConformanceHarness,
    ErrorKind,
    ScriptedFailure,
    ScriptedReply,
    SentRequest,
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

    def __init__(self, request: pytest.FixtureRequest) -> None:
        super().__init__(request)
        self.healthy = True
        self.responses: list[httpx.Response] = []

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
        if self.health_path is not None:
            self.httpx_mock.add_callback(
                lambda request: self.health_response(self.healthy),
                method="GET",
                url=_url_pattern(self.base_url, self.health_path),
                is_optional=True,
                is_reusable=True,
            )
        settings = {"base_url": self.base_url, "max_retries": 0, **self.test_settings, **config}
        return self.backend_plugin.create(**settings)

    def create_live_backend(self) -> Backend:
        # Credentials (and base URL) from the environment, as users give them.
        return self.backend_plugin.create(**self.live_settings)

    def script_reply(self, reply: ScriptedReply) -> None:
        # One reply, plain or streamed: the request body decides, as the provider would.
        self._answer_next(lambda sent: self.reply_response(reply, sent))

    def script_failure(self, failure: ScriptedFailure) -> None:
        kind = failure.kind
        if kind is ErrorKind.NETWORK:
            self._fail_next(httpx.ConnectError(failure.message))
        elif kind is ErrorKind.TIMEOUT:
            self._fail_next(httpx.ReadTimeout(failure.message))
        elif kind.mid_stream:
            garbage = self.malformed_event if kind is ErrorKind.MALFORMED_STREAM else b""
            self._answer_next(
                lambda sent: self.stream_response(self.stream_opening(sent) + garbage)
            )
        else:
            status = self.error_statuses[kind]
            self._answer_next(
                lambda sent: httpx.Response(
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

    def _answer_next(self, answer: Callable[[Any], httpx.Response]) -> None:
        def respond(request: httpx.Request) -> httpx.Response:
            response = answer(json.loads(request.content))
            self.responses.append(response)
            return response

        self.httpx_mock.add_callback(
            respond, method="POST", url=self.completion_url, is_optional=True
        )

    def _fail_next(self, error: Exception) -> None:
        self.httpx_mock.add_exception(
            error, method="POST", url=self.completion_url, is_optional=True
        )
