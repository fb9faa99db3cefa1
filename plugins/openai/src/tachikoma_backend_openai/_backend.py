"""OpenAIBackend: the `Backend` contract over Chat Completions, on the core HTTP kit.

The glue between the kit's `HttpConnection` (one ``httpx.AsyncClient``, read-ahead,
release, transport errors), the endpoint the config describes (OpenAI, Azure or another
server) and the pure wire layer, one attempt per call: retrying is the core's job.
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

from ._endpoint import resolve_endpoint
from ._models import OpenAIModel
from ._plugin import OpenAIBackendConfig
from ._wire import PROVIDER
from ._wire.decode import decode_completion
from ._wire.encode import encode_request
from ._wire.errors import error_from_response
from ._wire.stream import OpenAIStreamDecoder

__all__ = ["OpenAIBackend"]

# For models missing from the registry (another server's, a new id): what info reports.
# Not enforced: the server decides.
_FALLBACK_LIMITS = (128_000, 16_384)


class OpenAIBackend(Backend):
    """OpenAI's Chat Completions (or Azure's, or a compatible server's) behind `Backend`.

    Build it through the registry (``registry.create("openai", ...)``) to get the core's
    retry policy; built directly, it makes exactly one attempt per call.

    Args:
        config: the validated settings; a missing key (for OpenAI or Azure) is a
            ``ConfigurationError``.
        transport: an httpx transport to send through instead of the network (an
            ``httpx.MockTransport`` in tests); it brings its own pool, TLS and proxy
            settings.

    Examples:
        >>> backend = OpenAIBackend(OpenAIBackendConfig(api_key="sk-openai-example-key"))
        >>> backend.info.name, backend.info.capabilities.json_mode
        ('openai', True)
    """

    def __init__(
        self, config: OpenAIBackendConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._endpoint = resolve_endpoint(config)
        self._http = HttpConnection(
            config,
            provider=PROVIDER,
            label=self._endpoint.label,
            headers={**self._endpoint.headers, "accept": "application/json"},
            error_from_response=error_from_response,
            transport=transport,
            base_url=self._endpoint.base_url,
        )
        known = OpenAIModel.lookup(config.model)
        context, output = (
            (known.context_window, known.max_output_tokens) if known else _FALLBACK_LIMITS
        )
        self._info = BackendInfo(
            name=PROVIDER,
            version=distribution_version("tachikoma-backend-openai"),
            default_model=config.model,
            available_models=[model.id for model in OpenAIModel.known()]
            if config.is_openai
            else [config.model],
            capabilities=BackendCapabilities(
                streaming=True,
                tool_calling=True,
                vision=known.vision if known else True,
                json_mode=True,
                max_context_tokens=context,
                max_output_tokens=output,
            ),
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        body, model = self._encode(request, stream=False)
        raw = await self._http.read(
            "POST", self._endpoint.chat_path(model), json=body, params=self._endpoint.params
        )
        return decode_completion(raw, fallback_model=body["model"])

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        body, model = self._encode(request, stream=True)
        # Returns once the first event arrived: an HTTP error, or an error event sent in
        # its place, raises from this await.
        return await self._http.stream(
            "POST",
            self._endpoint.chat_path(model),
            json=body,
            params=self._endpoint.params,
            decoder=OpenAIStreamDecoder(),
            model=body["model"],
        )

    async def check_health(self) -> HealthReport:
        """``GET /models``: ok on a 2xx answer, else the typed error it met."""
        return await self._http.health(self._endpoint.models_path, params=self._endpoint.params)

    async def health_check(self) -> bool:
        return (await self.check_health()).healthy

    async def aclose(self) -> None:
        await self._http.aclose()

    def _encode(self, request: CompletionRequest, *, stream: bool) -> tuple[dict[str, Any], str]:
        model = self._endpoint.model_for(request.model or self._config.model)
        body = encode_request(
            request,
            model=model,
            known=OpenAIModel.lookup(model),
            stream=stream,
            stream_usage=self._config.stream_usage,
            reasoning_by_default=self._config.is_openai,
        )
        return body, model
