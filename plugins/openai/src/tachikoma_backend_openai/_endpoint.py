"""Where requests go and how they authenticate: OpenAI, Azure OpenAI, or another server.

One config reaches three kinds of service; this module turns it into an `Endpoint`:

* **OpenAI** (``base_url`` is OpenAI's, the default): ``{base_url}/chat/completions``,
  with ``api_key`` as a bearer token, required.
* **Another server** (any other ``base_url``): the same paths; ``api_key`` as a bearer
  token if one is given (a local server may need none).
* **Azure OpenAI, v1 API** (``azure_endpoint`` set, ``api_version`` not):
  ``{azure_endpoint}/openai/v1/chat/completions``.
* **Azure OpenAI, dated API** (``azure_endpoint`` and ``api_version`` set):
  ``{azure_endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``.

Azure takes ``azure_ad_token`` as a bearer token, else ``azure_api_key`` (or
``api_key``) as the ``api-key`` header.
On Azure a request's model is the deployment's name: ``azure_deployment`` when set,
else the request's (or the config's) model, as in Azure's own SDK. ``organization`` and
``project`` become the ``OpenAI-Organization`` and ``OpenAI-Project`` headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from tachikoma_backends_core.errors import ConfigurationError

from ._plugin import OpenAIBackendConfig
from ._wire import PROVIDER

__all__ = ["Endpoint", "resolve_endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """How to reach the chat and models APIs of one configured service.

    Attributes:
        base_url: the root every path below is relative to.
        label: how messages name the service ("timed out calling Azure OpenAI").
        headers: credentials and OpenAI's organization and project headers.
        params: query parameters every request carries (Azure's ``api-version``).
        deployment: on Azure's dated API, the one deployment every request goes to
            (``None``: the request's model names it).
        azure: requests go to Azure OpenAI.
    """

    base_url: str
    label: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    deployment: str | None = None
    azure: bool = False
    dated: bool = False

    def chat_path(self, model: str) -> str:
        """The chat completions path for a request to ``model``."""
        if self.dated:
            return (
                f"/openai/deployments/{quote(self.deployment or model, safe='')}/chat/completions"
            )
        return "/chat/completions"

    @property
    def models_path(self) -> str:
        return "/openai/models" if self.dated else "/models"

    def model_for(self, model: str) -> str:
        """The ``model`` to send: on Azure's v1 API, the deployment when one is set."""
        return self.deployment if self.azure and self.deployment else model


def resolve_endpoint(config: OpenAIBackendConfig) -> Endpoint:
    """The `Endpoint` ``config`` describes; a `ConfigurationError` when a key is missing."""
    extra = {
        name: value
        for name, value in (
            ("OpenAI-Organization", config.organization),
            ("OpenAI-Project", config.project),
        )
        if value
    }
    if config.azure_endpoint is not None:
        return _azure(config, config.azure_endpoint, extra)
    if config.is_openai:
        key = config.require_api_key(PROVIDER, label="OpenAI")
        return Endpoint(config.base_url, "OpenAI", {"authorization": f"Bearer {key}", **extra})
    headers = dict(extra)
    if config.api_key is not None and config.api_key.get_secret_value():
        headers["authorization"] = f"Bearer {config.api_key.get_secret_value()}"
    label = urlsplit(config.base_url).netloc or config.base_url
    return Endpoint(config.base_url, label, headers)


def _azure(config: OpenAIBackendConfig, endpoint: str, extra: dict[str, str]) -> Endpoint:
    headers = dict(extra)
    key = config.azure_api_key or config.api_key
    if config.azure_ad_token is not None and config.azure_ad_token.get_secret_value():
        headers["authorization"] = f"Bearer {config.azure_ad_token.get_secret_value()}"
    elif key is not None and key.get_secret_value():
        headers["api-key"] = key.get_secret_value()
    else:
        raise ConfigurationError(
            "no Azure OpenAI credentials: pass azure_api_key=... (or set "
            "AZURE_OPENAI_API_KEY), or azure_ad_token=... (AZURE_OPENAI_AD_TOKEN)",
            field="azure_api_key",
            provider=PROVIDER,
        )
    if config.api_version is None:
        return Endpoint(
            f"{endpoint}/openai/v1",
            "Azure OpenAI",
            headers,
            deployment=config.azure_deployment,
            azure=True,
        )
    return Endpoint(
        endpoint,
        "Azure OpenAI",
        headers,
        {"api-version": config.api_version},
        deployment=config.azure_deployment,
        azure=True,
        dated=True,
    )
