"""ClaudeBackend: the `Backend` contract over the Messages API, with httpx.

The glue between httpx and the pure wire layer: one ``httpx.AsyncClient`` per backend,
one attempt per call. Retrying is the core's job (it wraps every backend the plugin
creates in one retry loop driven by ``max_retries``), so nothing here loops and the
transport makes no retries of its own; errors carry ``retryable`` and ``retry_after``
for that loop to decide.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
import httpx

from tachikoma_backends_core.backend import Backend, BackendCapabilities, BackendInfo
from tachikoma_backends_core.completion import (
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
)
from tachikoma_backends_core.errors import (
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    NetworkError,
)
from tachikoma_backends_core.streaming import CompletionStream

from ._models import ClaudeModel
from ._plugin import ClaudeBackendConfig
from ._wire import PROVIDER
from ._wire.decode import decode_message
from ._wire.encode import encode_request, resolve_max_tokens
from ._wire.errors import error_from_response
from ._wire.stream import ClaudeStreamDecoder

__all__ = ["ClaudeBackend"]

MESSAGES_PATH = "/v1/messages"
MODELS_PATH = "/v1/models"
# Releasing a response must not hang a cancelled task (the core's streams bound it alike).
_RELEASE_TIMEOUT_SECONDS = 10.0
# For models missing from the registry: what info reports (the current family's
# smallest documented limits). Not enforced; the API decides.
_FALLBACK_LIMITS = (200_000, 32_000)


def _package_version() -> str:
    try:
        return version("tachikoma-backend-claude")
    except PackageNotFoundError:  # running from a source tree without metadata
        return "0+unknown"


class ClaudeBackend(Backend):
    """Anthropic's Messages API behind the `Backend` contract.

    Build it through the registry (``registry.create("claude", ...)``) to get the core's
    retry policy; built directly, it makes exactly one attempt per call.

    Args:
        config: the validated settings; a missing API key is a ``ConfigurationError``.
        transport: an httpx transport to send through instead of the network (an
            ``httpx.MockTransport`` in tests and offline examples, a custom proxy setup).

    Examples:
        >>> backend = ClaudeBackend(ClaudeBackendConfig(api_key="sk-ant-example-key"))
        >>> backend.info.name, backend.info.capabilities.tool_calling
        ('claude', True)
    """

    def __init__(
        self, config: ClaudeBackendConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if config.api_key is None or not config.api_key.get_secret_value():
            raise ConfigurationError(
                "no Anthropic API key: pass api_key=... or set ANTHROPIC_API_KEY",
                field="api_key",
                provider=PROVIDER,
            )
        self._config = config
        self._closed = False
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers={
                **config.extra_headers,
                "x-api-key": config.api_key.get_secret_value(),
                "anthropic-version": config.anthropic_version,
                "accept": "application/json",
            },
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            # One attempt per call: the core retries (httpx's default transport retries 0).
            transport=transport or httpx.AsyncHTTPTransport(retries=0),
        )
        known = ClaudeModel.lookup(config.model)
        context, output = (
            (known.context_window, known.max_output_tokens) if known else _FALLBACK_LIMITS
        )
        self._info = BackendInfo(
            name=PROVIDER,
            version=_package_version(),
            default_model=config.model,
            available_models=[model.id for model in ClaudeModel.known()],
            capabilities=BackendCapabilities(
                streaming=True,
                tool_calling=True,
                vision=True,
                json_mode=False,  # the Messages API has no JSON mode flag
                max_context_tokens=context,
                max_output_tokens=output,
            ),
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        body, model = self._encode(request, stream=False)
        response = await self._open(body)
        try:
            raw = await _read_all(response)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, "reading Claude's response") from exc
        return decode_message(raw, fallback_model=model)

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        body, model = self._encode(request, stream=True)
        response = await self._open(body)
        decoder = ClaudeStreamDecoder()
        # httpx declares an AsyncIterator; it is an async generator, closed explicitly below.
        body_bytes: AsyncGenerator[bytes, None] = response.aiter_bytes()  # type: ignore[assignment]

        async def release() -> None:
            await _release(response, body_bytes)

        try:
            # Read up to message_start: its model names the stream, and an error event
            # sent instead of it fails the request here, from the await.
            early = await _read_until_started(body_bytes, decoder)
        except BaseException:
            await release()
            raise
        return CompletionStream(
            _chunks(body_bytes, decoder, early),
            model=decoder.model or model,
            provider=PROVIDER,
            on_close=release,
            # Until the final chunk: the input usage message_start gave.
            usage_so_far=lambda: decoder.start_usage,
        )

    async def health_check(self) -> bool:
        """``GET /v1/models``: ``True`` on a 2xx answer, ``False`` on any trouble."""
        try:
            response = await self._client.get(MODELS_PATH, params={"limit": 1})
        except Exception:  # never raise for provider trouble (cancellation still propagates)
            return False
        return response.is_success

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.aclose()

    def _encode(self, request: CompletionRequest, *, stream: bool) -> tuple[dict[str, Any], str]:
        model = request.model or self._config.model
        known = ClaudeModel.lookup(model)
        max_tokens = resolve_max_tokens(
            request, self._config.max_tokens, known.max_output_tokens if known else None
        )
        body = encode_request(request, model=model, max_tokens=max_tokens, stream=stream)
        return body, model

    async def _open(self, body: dict[str, Any]) -> httpx.Response:
        """Send ``POST /v1/messages``; a non-2xx answer raises its mapped error."""
        if self._closed:
            raise ConfigurationError(
                "this ClaudeBackend is closed; create a new one", provider=PROVIDER
            )
        request = self._client.build_request("POST", MESSAGES_PATH, json=body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, "calling Claude") from exc
        if response.is_success:
            return response
        try:
            raw = await _read_all(response)
        except httpx.HTTPError:
            raw = b""  # the status alone still says what failed
        raise error_from_response(response.status_code, response.headers, raw)


def _transport_error(exc: httpx.HTTPError, doing: str) -> BackendError:
    """httpx's failures as our errors: timeouts, then everything else on the network."""
    if isinstance(exc, httpx.TimeoutException):
        return BackendTimeoutError(
            f"timed out {doing} ({type(exc).__name__}); raise timeout= if answers are long",
            provider=PROVIDER,
        )
    return NetworkError(
        f"network failure {doing}: {type(exc).__name__}: {exc}; check base_url and connectivity",
        provider=PROVIDER,
    )


async def _read_all(response: httpx.Response) -> bytes:
    """The whole body; the response is released however this ends (cancellation too)."""
    body_bytes: AsyncGenerator[bytes, None] = response.aiter_bytes()  # type: ignore[assignment]
    try:
        return b"".join([piece async for piece in body_bytes])
    finally:
        with anyio.move_on_after(_RELEASE_TIMEOUT_SECONDS, shield=True):
            await _release(response, body_bytes)


async def _release(response: httpx.Response, body_bytes: AsyncGenerator[bytes, None]) -> None:
    """Close the response (and its connection), then end httpx's chain of body iterators.

    Closing leaves the generators httpx and httpcore stack under ``aiter_bytes``
    suspended, and trio warns about every suspended async generator the garbage collector
    finds. Reading on after the close ends them all: what is still buffered comes out,
    then the closed connection raises, unwinding every level.
    """
    try:
        await response.aclose()
    finally:
        try:
            async for _ in body_bytes:
                pass
        except Exception:  # the closed connection's error is the expected way out
            pass


async def _read_until_started(
    body_bytes: AsyncGenerator[bytes, None], decoder: ClaudeStreamDecoder
) -> list[CompletionChunk]:
    """Feed the decoder until ``message_start`` (or the end); the chunks seen so far."""
    early: list[CompletionChunk] = []
    try:
        async for data in body_bytes:
            early.extend(decoder.feed(data))
            if decoder.started or decoder.finished:
                return early
    except httpx.HTTPError as exc:
        raise _transport_error(exc, "reading Claude's stream") from exc
    early.extend(decoder.close())  # ended before message_start: truncated
    return early


async def _chunks(
    body_bytes: AsyncGenerator[bytes, None],
    decoder: ClaudeStreamDecoder,
    early: list[CompletionChunk],
) -> AsyncIterator[CompletionChunk]:
    """The stream's chunks: those read ahead, then the rest of the body, decoded."""
    for chunk in early:
        yield chunk
    try:  # after message_stop too: the decoder ignores the rest, the connection is reusable
        async for data in body_bytes:
            for chunk in decoder.feed(data):
                yield chunk
    except httpx.HTTPError as exc:
        raise _transport_error(exc, "reading Claude's stream") from exc
    for chunk in decoder.close():
        yield chunk
