"""The ``openai`` entry point: config model and factory only.

Imports core, pydantic and the HTTP kit's config, nothing else: listing plugins must not
pay for httpx or the backend, which the factory imports when a backend is actually made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from tachikoma_backends_core import BackendPlugin, EnvVar, RateLimitConfig
from tachikoma_backends_core.http import HttpPluginConfig

from ._models import DEFAULT_MODEL

if TYPE_CHECKING:
    from ._backend import OpenAIBackend

__all__ = ["OPENAI_BASE_URL", "OpenAIBackendConfig", "plugin"]

#: Where OpenAI's API lives (the official SDKs' default ``base_url``).
OPENAI_BASE_URL = "https://api.openai.com/v1"
_CREDENTIALS = ("api_key", "azure_api_key", "azure_ad_token")


class OpenAIBackendConfig(HttpPluginConfig):
    """Settings for ``registry.create("openai", ...)``: OpenAI, Azure OpenAI, or any
    OpenAI-compatible server.

    The settings every HTTP provider has (timeouts, ``max_retries``, ``extra_headers``,
    pool, proxy and CA) are `HttpPluginConfig`'s; these are OpenAI's own:

    Attributes:
        api_key: the key (``OPENAI_API_KEY``), sent as ``Authorization: Bearer``. Needed
            for OpenAI itself; a server at another ``base_url`` may need none.
        base_url: the API root (``OPENAI_BASE_URL``), ``https://api.openai.com/v1`` by
            default; ``http://127.0.0.1:8000/v1`` for a local vLLM, say.
        model: the model used when a request names none (on Azure: a deployment name).
        organization: sent as ``OpenAI-Organization`` (``OPENAI_ORG_ID``).
        project: sent as ``OpenAI-Project`` (``OPENAI_PROJECT_ID``).
        stream_usage: ask streams for their usage (``stream_options.include_usage``);
            turn off for a server that refuses the field.
        azure_endpoint: an Azure OpenAI resource (``AZURE_OPENAI_ENDPOINT``,
            ``https://NAME.openai.azure.com``); setting it selects Azure.
        azure_deployment: the deployment to call on Azure (default: the model).
        api_version: Azure's dated ``api-version`` (``OPENAI_API_VERSION``). With it,
            requests go to ``/openai/deployments/DEPLOYMENT/...?api-version=...``;
            without it, to Azure's version-less v1 API, ``/openai/v1/...``.
        azure_api_key: the Azure resource key (``AZURE_OPENAI_API_KEY``), sent as
            ``api-key``; ``api_key`` serves when it is not set.
        azure_ad_token: a Microsoft Entra ID token (``AZURE_OPENAI_AD_TOKEN``), sent as
            ``Authorization: Bearer`` instead of a key.

    Examples:
        >>> config = OpenAIBackendConfig(api_key="sk-openai-example-key", max_retries=0)
        >>> config.api_key
        SecretStr('**********')
        >>> sorted(OpenAIBackendConfig.environment_variables().values())[:3]
        ['AZURE_OPENAI_AD_TOKEN', 'AZURE_OPENAI_API_KEY', 'AZURE_OPENAI_ENDPOINT']
    """

    # Credentials go through api_key / azure_*; the two OpenAI headers through their settings.
    reserved_headers: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "authorization": "api_key",
            "api-key": "azure_api_key",
            "openai-organization": "organization",
            "openai-project": "project",
        }
    )

    api_key: Annotated[SecretStr | None, EnvVar("OPENAI_API_KEY")] = None
    base_url: Annotated[str, EnvVar("OPENAI_BASE_URL")] = OPENAI_BASE_URL
    model: str = Field(default=DEFAULT_MODEL, min_length=1)
    organization: Annotated[str | None, EnvVar("OPENAI_ORG_ID")] = None
    project: Annotated[str | None, EnvVar("OPENAI_PROJECT_ID")] = None
    stream_usage: bool = True
    azure_endpoint: Annotated[str | None, EnvVar("AZURE_OPENAI_ENDPOINT")] = None
    azure_deployment: str | None = Field(default=None, min_length=1)
    api_version: Annotated[str | None, EnvVar("OPENAI_API_VERSION")] = None
    azure_api_key: Annotated[SecretStr | None, EnvVar("AZURE_OPENAI_API_KEY")] = None
    azure_ad_token: Annotated[SecretStr | None, EnvVar("AZURE_OPENAI_AD_TOKEN")] = None

    @model_validator(mode="before")
    @classmethod
    def _explicit_settings_win(cls, data: Any) -> Any:
        """Settings passed keep the environment from choosing for them, as in the SDKs.

        An explicit ``base_url`` is not overridden by ``AZURE_OPENAI_ENDPOINT``; an
        explicit credential by another from the environment; and Azure never takes
        ``OPENAI_API_KEY``, an OpenAI key, from the environment.
        """
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "base_url" in data:
            data.setdefault("azure_endpoint", None)
        if any(data.get(name) is not None for name in _CREDENTIALS):
            for name in _CREDENTIALS:
                data.setdefault(name, None)
        azure = data.get("azure_endpoint", os.environ.get("AZURE_OPENAI_ENDPOINT"))
        if azure:
            data.setdefault("api_key", None)
        return data

    @field_validator("azure_endpoint")
    @classmethod
    def _azure_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http://)")
        return value.rstrip("/") if value else value

    @property
    def is_azure(self) -> bool:
        return self.azure_endpoint is not None

    @property
    def is_openai(self) -> bool:
        """Talking to OpenAI itself (not Azure, not another server at ``base_url``)."""
        return not self.is_azure and self.base_url.startswith("https://api.openai.com")


def _create(config: OpenAIBackendConfig) -> OpenAIBackend:
    from ._backend import OpenAIBackend  # httpx and the wire layer load only now

    return OpenAIBackend(config)


plugin = BackendPlugin(
    name="openai",
    config_model=OpenAIBackendConfig,
    factory=_create,
    harness="tachikoma_backend_openai.harness:OpenAIHarness",
    description="OpenAI Chat Completions, Azure OpenAI and OpenAI-compatible servers.",
    rate_limit=RateLimitConfig.openai_default,
)
