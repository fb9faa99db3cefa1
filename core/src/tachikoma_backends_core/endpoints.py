"""Named endpoints: an OpenAI-compatible service (Groq, Together, LM Studio, vLLM...) as a
plugin of its own, declared in a file, with no code.

Why: most providers beyond the big three speak OpenAI's Chat Completions at another base
URL. Writing a plugin for each would copy the OpenAI plugin; configuring the OpenAI
plugin by hand at every call site loses the name, the key variable and the declared
capabilities. An endpoint gives them a name the registry lists
(``tachikoma backends``), ``registry.create("groq")`` serves through the plugin it
names, and the conformance suite checks like a plugin (``pytest --plugin=groq``).

The file is ``TACHIKOMA_ENDPOINTS_FILE``, else ``$XDG_CONFIG_HOME/tachikoma/endpoints.toml``
(``~/.config/tachikoma/endpoints.toml``)::

    [endpoints.groq]
    base_url = "https://api.groq.com/openai/v1"
    api_key_env = "GROQ_API_KEY"
    model = "llama-3.3-70b-versatile"
    capabilities = ["streaming", "tool_calling", "json_mode"]
    description = "Groq, OpenAI-compatible"

    [endpoints.groq.settings]   # any other setting of the plugin's config
    stream_usage = true

``plugin`` (default ``"openai"``) is the installed plugin that speaks the endpoint's
protocol. The endpoint's settings are the only ones it takes: the base plugin's own
environment variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``...) never reach it, so an
OpenAI key is never sent to another service. The key comes from ``api_key_env`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._endpoints_file import ENDPOINTS_FILE_ENV_VAR, Endpoint, endpoints_file, read_endpoints
from .backend import Backend, BackendCapabilities, BackendInfo
from .manifest import CAPABILITY_NAMES
from .plugin import BackendPlugin, EnvVar

if TYPE_CHECKING:
    from .completion import CompletionRequest, CompletionResponse
    from .health import HealthReport
    from .streaming import CompletionStream

__all__ = [
    "ENDPOINTS_FILE_ENV_VAR",
    "Endpoint",
    "EndpointPlugin",
    "endpoints_file",
    "read_endpoints",
]


@dataclass(frozen=True)
class EndpointPlugin(BackendPlugin[Any]):
    """A `BackendPlugin` that serves an `Endpoint` through the plugin it names.

    Its config is the base plugin's; the endpoint's settings are the defaults, and the
    base plugin's environment variables are not read.
    """

    endpoint: Endpoint | None = None
    base: BackendPlugin[Any] | None = None

    @classmethod
    def serving(cls, endpoint: Endpoint, base: BackendPlugin[Any]) -> EndpointPlugin:
        return cls(
            name=endpoint.name,
            config_model=base.config_model,
            factory=lambda config: _EndpointBackend(base.factory(config), endpoint),
            harness=base.harness,
            description=endpoint.summary,
            rate_limit=base.rate_limit,
            endpoint=endpoint,
            base=base,
        )

    def configure(self, **config: Any) -> Any:
        assert self.endpoint is not None
        settings = {**self.endpoint.defaults(), **config}
        # The base plugin's environment is not the endpoint's: pin what it would read.
        for name, info in self.config_model.model_fields.items():
            if name not in settings and any(isinstance(m, EnvVar) for m in info.metadata):
                settings[name] = info.get_default(call_default_factory=True)
        return self.config_model(**settings)


class _EndpointBackend(Backend):
    """The base plugin's backend, reporting the endpoint's name and declared capabilities."""

    def __init__(self, inner: Backend, endpoint: Endpoint) -> None:
        self._inner = inner
        info = inner.info
        flags = info.capabilities
        if endpoint.capabilities is not None:
            declared = {name: name in endpoint.capabilities for name in CAPABILITY_NAMES}
            flags = BackendCapabilities(
                **declared,
                max_context_tokens=flags.max_context_tokens,
                max_output_tokens=flags.max_output_tokens,
            )
        self._info = BackendInfo(
            name=endpoint.name,
            version=info.version,
            default_model=info.default_model,
            available_models=info.available_models,
            capabilities=flags,
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        return await self._inner.complete(request)

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        return await self._inner.complete_stream(request)

    async def health_check(self) -> bool:
        return await self._inner.health_check()

    async def check_health(self) -> HealthReport:
        return await self._inner.check_health()

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __repr__(self) -> str:
        return f"<endpoint {self._info.name!r}: {self._inner!r}>"
