"""ClaudeBackend: the `Backend` contract over the Messages API, on the core HTTP kit.

The glue between the kit's `HttpConnection` (one ``httpx.AsyncClient``, read-ahead,
release, transport errors) and the pure wire layer, one attempt per call. Retrying is the
core's job (it wraps every backend the plugin creates in one retry loop driven by
``max_retries``), so nothing here loops; errors carry ``retryable`` and ``retry_after``
for that loop to decide.
"""

from __future__ import annotations

from typing import Any

import httpx

from tachikoma_backends_core.backend import Backend, BackendCapabilities, BackendInfo
from tachikoma_backends_core.completion import CompletionRequest, CompletionResponse
from tachikoma_backends_core.health import HealthReport
from tachikoma_backends_core.http import HttpConnection
from tachikoma_backends_core.plugin import distribution_version
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
# For models missing from the registry: what info reports (the current family's
# smallest documented limits). Not enforced; the API decides.
_FALLBACK_LIMITS = (200_000, 32_000)


class ClaudeBackend(Backend):
    """Anthropic's Messages API behind the `Backend` contract.

    Build it through the registry (``registry.create("claude", ...)``) to get the core's
    retry policy; built directly, it makes exactly one attempt per call.

    Args:
        config: the validated settings; a missing API key is a ``ConfigurationError``.
        transport: an httpx transport to send through instead of the network (an
            ``httpx.MockTransport`` in tests and offline examples); it brings its own
            pool, TLS and proxy settings.

    Examples:
        >>> backend = ClaudeBackend(ClaudeBackendConfig(api_key="sk-ant-example-key"))
        >>> backend.info.name, backend.info.capabilities.tool_calling
        ('claude', True)
    """

    def __init__(
        self, config: ClaudeBackendConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        api_key = config.require_api_key(PROVIDER, label="Anthropic")
        self._config = config
        self._http = HttpConnection(
            config,
            provider=PROVIDER,
            label="Claude",
            headers={
                "x-api-key": api_key,
                "anthropic-version": config.anthropic_version,
                "accept": "application/json",
            },
            error_from_response=error_from_response,
            transport=transport,
        )
        known = ClaudeModel.lookup(config.model)
        context, output = (
            (known.context_window, known.max_output_tokens) if known else _FALLBACK_LIMITS
        )
        self._info = BackendInfo(
            name=PROVIDER,
            version=distribution_version("tachikoma-backend-claude"),
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
        raw = await self._http.read("POST", MESSAGES_PATH, json=body)
        return decode_message(raw, fallback_model=model)

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        body, model = self._encode(request, stream=True)
        # Read ahead to message_start: its model names the stream, and an error event
        # sent instead of it fails the request from this await.
        return await self._http.stream(
            "POST", MESSAGES_PATH, json=body, decoder=ClaudeStreamDecoder(), model=model
        )

    async def check_health(self) -> HealthReport:
        """``GET /v1/models``: ok on a 2xx answer, else the typed error it met."""
        return await self._http.health(MODELS_PATH, params={"limit": 1})

    async def health_check(self) -> bool:
        return (await self.check_health()).healthy

    async def aclose(self) -> None:
        await self._http.aclose()

    def _encode(self, request: CompletionRequest, *, stream: bool) -> tuple[dict[str, Any], str]:
        model = request.model or self._config.model
        known = ClaudeModel.lookup(model)
        max_tokens = resolve_max_tokens(
            request, self._config.max_tokens, known.max_output_tokens if known else None
        )
        body = encode_request(request, model=model, max_tokens=max_tokens, stream=stream)
        return body, model
