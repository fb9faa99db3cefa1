"""OllamaBackend: the `Backend` contract over Ollama's native API, and its models.

The glue between the kit's `HttpConnection`, the pure wire layer and, when asked, an
``ollama serve`` it starts. Besides chat it manages models (`ModelManager`): list, show,
pull with progress, delete, which ``tachikoma models`` and ``tachikoma pull`` use.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from tachikoma_backends_core.backend import Backend, BackendCapabilities, BackendInfo
from tachikoma_backends_core.completion import CompletionRequest, CompletionResponse
from tachikoma_backends_core.errors import (
    BackendError,
    InvalidRequestError,
    NetworkError,
    ServerError,
)
from tachikoma_backends_core.health import HealthReport
from tachikoma_backends_core.http import HttpConnection, NDJSONParser
from tachikoma_backends_core.model_management import ModelSummary, PullProgress
from tachikoma_backends_core.plugin import distribution_version
from tachikoma_backends_core.streaming import CompletionStream

from ._host import OllamaServerConfig
from ._plugin import OllamaBackendConfig
from ._server import ServerProcess, how_to_start
from ._wire import PROVIDER
from ._wire.decode import decode_chat
from ._wire.encode import encode_chat
from ._wire.errors import error_from_message, error_from_response
from ._wire.stream import OllamaStreamDecoder

__all__ = ["OllamaBackend", "OllamaModelInfo"]

CHAT_PATH = "/api/chat"
# Ollama's default context on most machines (4096 since 0.6.7): what info reports until
# the model's own is known (num_ctx, or /api/show).
_DEFAULT_CONTEXT = 4096


@dataclass(frozen=True)
class OllamaModelInfo:
    """What ``/api/show`` says of a model.

    Attributes:
        name: the model.
        context_length: the context window it was trained for, if Ollama says.
        capabilities: what it can do: ``completion``, ``tools``, ``vision``, ``thinking``...
        details: family, parameter size, quantisation level, format.
    """

    name: str
    context_length: int | None = None
    capabilities: frozenset[str] = frozenset()
    details: dict[str, Any] = field(default_factory=dict)


class OllamaBackend(Backend):
    """Ollama's native API behind the `Backend` contract, with model management.

    Build it through the registry (``registry.create("ollama", ...)``), or with
    `OllamaBackend.create`, which also checks the server answers (starting one if asked)
    and reads the model's context length and capabilities.

    Args:
        config: the validated settings.
        transport: an httpx transport to send through instead of the network (tests).

    Examples:
        >>> backend = OllamaBackend(OllamaBackendConfig(model="qwen3:0.6b"))
        >>> backend.info.name, backend.info.default_model
        ('ollama', 'qwen3:0.6b')
    """

    def __init__(
        self, config: OllamaBackendConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        headers = {"accept": "application/json"}
        if config.api_key is not None and config.api_key.get_secret_value():
            headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
        self._http = HttpConnection(
            config,
            provider=PROVIDER,
            label="Ollama",
            headers=headers,
            error_from_response=error_from_response,
            transport=transport,
            connect_hint=how_to_start(config.base_url),
        )
        self._options = {"num_ctx": config.num_ctx} if config.num_ctx else {}
        self._options.update(config.options)
        self._server: ServerProcess | None = None
        self._server_checked = False
        self._starting: anyio.Lock | None = None  # made in the event loop that first needs it
        context = config.num_ctx or _DEFAULT_CONTEXT
        self._info = self._info_for(context, vision=False, tools=True)

    @classmethod
    async def create(
        cls,
        server_config: OllamaServerConfig | None = None,
        backend_config: OllamaBackendConfig | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> OllamaBackend:
        """A backend for a server that answers, or a typed error saying how to start one.

        The server is ``server_config``'s (without one, ``backend_config``'s, whose
        ``base_url`` is ``OLLAMA_HOST`` by default), started with ``ollama serve`` when
        nothing answers and ``auto_start`` is set. The model's
        context length and capabilities are read into ``info`` (a model not pulled yet
        keeps the defaults: its first request says how to pull it).
        """
        settings = backend_config or OllamaBackendConfig()
        if server_config is not None:
            settings = settings.model_copy(
                update={
                    "base_url": server_config.base_url,
                    "auto_start": server_config.auto_start,
                    "start_timeout": server_config.start_timeout,
                    "ollama_binary": server_config.binary,
                }
            )
        backend = cls(settings, transport=transport)
        try:
            await backend.ensure_server()
            await backend.refresh_info()
        except BaseException:
            await backend.aclose()
            raise
        return backend

    @property
    def info(self) -> BackendInfo:
        return self._info

    @property
    def started_server(self) -> bool:
        """Whether this backend started the ``ollama serve`` it talks to (still running)."""
        return self._server is not None and self._server.running

    async def ensure_server(self) -> None:
        """Check the server answers; start one if it does not and ``auto_start`` is set.

        Raises `NetworkError` saying how to start Ollama when nothing answers, and
        `ConfigurationError` when a server could not be started.
        """
        if self._starting is None:
            self._starting = anyio.Lock()
        async with self._starting:
            if self._server_checked:
                return
            base_url = self._config.base_url
            try:
                await self._http.read("GET", "/api/version")
            except NetworkError:
                if not self._config.auto_start:
                    raise  # its message says how to start Ollama (the connection's hint)
                self._server = await ServerProcess.start(
                    self._config.ollama_binary,
                    base_url,
                    start_timeout=self._config.start_timeout,
                    answers=lambda: self._http.is_healthy("/api/version"),
                )
            self._server_checked = True

    async def refresh_info(self, model: str | None = None) -> BackendInfo:
        """Read ``model``'s (default: the configured one's) limits and abilities into info."""
        try:
            shown = await self.show_model(model or self._config.model)
        except BackendError as error:
            if error.status_code != 404:
                raise
            return self._info  # not pulled yet: the defaults stand
        context = self._config.num_ctx or shown.context_length or _DEFAULT_CONTEXT
        abilities = shown.capabilities
        self._info = self._info_for(
            context, vision="vision" in abilities, tools=not abilities or "tools" in abilities
        )
        return self._info

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        body = await self._body(request, stream=False)
        raw = await self._http.read("POST", CHAT_PATH, json=body)
        return decode_chat(raw, fallback_model=body["model"])

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        body = await self._body(request, stream=True)
        # Returns once the first line arrived: an HTTP error, or an error line sent in its
        # place, raises from this await.
        return await self._http.stream(
            "POST", CHAT_PATH, json=body, decoder=OllamaStreamDecoder(), model=body["model"]
        )

    async def check_health(self) -> HealthReport:
        """``GET /api/version``: ok when the server answers, else the typed error it met."""
        return await self._http.health("/api/version")

    async def health_check(self) -> bool:
        return (await self.check_health()).healthy

    async def aclose(self) -> None:
        """Close the client, and stop the ``ollama serve`` this backend started, if any."""
        try:
            await self._http.aclose()
        finally:
            if self._server is not None:
                server, self._server = self._server, None
                await server.stop()

    # Model management (ModelManager).

    async def list_models(self) -> list[ModelSummary]:
        """The models the server has (``GET /api/tags``)."""
        await self._ready()
        listing = _json(await self._http.read("GET", "/api/tags"), "the model list")
        return [
            ModelSummary(
                name=entry["name"],
                size=entry.get("size"),
                digest=entry.get("digest"),
                modified_at=entry.get("modified_at"),
                details=entry.get("details") or {},
            )
            for entry in listing.get("models") or ()
        ]

    async def show_model(self, name: str) -> OllamaModelInfo:
        """What the server knows of model ``name`` (``POST /api/show``)."""
        await self._ready()
        shown = _json(await self._http.read("POST", "/api/show", json={"model": name}), name)
        model_info = shown.get("model_info") or {}
        architecture = model_info.get("general.architecture")
        context = model_info.get(f"{architecture}.context_length") if architecture else None
        return OllamaModelInfo(
            name=name,
            context_length=context if isinstance(context, int) else None,
            capabilities=frozenset(shown.get("capabilities") or ()),
            details=shown.get("details") or {},
        )

    async def pull_model(self, name: str) -> AsyncGenerator[PullProgress, None]:
        """Pull model ``name``, yielding its progress until ``success``.

        A failure reported in the stream (no such model in the registry, no network)
        raises its typed error. Close the iterator (``contextlib.aclosing``) if you stop
        early, to release the connection at once.
        """
        await self._ready()
        body = {"model": name, "stream": True}
        parser = NDJSONParser(provider=PROVIDER)
        async with await self._http.events("POST", "/api/pull", json=body, parser=parser) as lines:
            async for line in lines:
                if line.get("error"):
                    raise error_from_message(str(line["error"]), pulling=name)
                yield PullProgress(
                    status=str(line.get("status", "")),
                    digest=line.get("digest"),
                    completed=line.get("completed"),
                    total=line.get("total"),
                )

    async def delete_model(self, name: str) -> None:
        """Remove model ``name`` (``DELETE /api/delete``); `ModelNotFoundError` if absent."""
        await self._ready()
        await self._http.read("DELETE", "/api/delete", json={"model": name})

    async def _ready(self) -> None:
        if self._config.auto_start and not self._server_checked:
            await self.ensure_server()

    async def _body(self, request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
        limit = self._info.capabilities.max_output_tokens
        if request.max_tokens is not None and request.max_tokens > limit:
            raise InvalidRequestError(
                f"max_tokens={request.max_tokens} is above the {limit} tokens of context the "
                "model is loaded with; ask for fewer, or raise num_ctx",
                field="max_tokens",
                provider=PROVIDER,
            )
        await self._ready()
        return encode_chat(
            request,
            model=request.model or self._config.model,
            stream=stream,
            options=self._options,
            think=self._config.think,
            keep_alive=self._config.keep_alive,
        )

    def _info_for(self, context: int, *, vision: bool, tools: bool) -> BackendInfo:
        return BackendInfo(
            name=PROVIDER,
            version=distribution_version("tachikoma-backend-ollama"),
            default_model=self._config.model,
            available_models=[self._config.model],
            capabilities=BackendCapabilities(
                streaming=True,
                tool_calling=tools,
                vision=vision,
                json_mode=True,
                max_context_tokens=context,
                max_output_tokens=context,  # Ollama's output shares the context window
            ),
        )


def _json(raw: bytes, what: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ServerError(
            f"Ollama answered 200 with a body that is not JSON ({what})",
            provider=PROVIDER,
            status_code=200,
            retryable=False,
        )
    return value
