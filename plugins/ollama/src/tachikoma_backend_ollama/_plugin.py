"""The ``ollama`` entry point: config model and factory only.

Imports core, pydantic and the HTTP kit's config, nothing else: listing plugins must not
pay for httpx or the backend, which the factory imports when a backend is actually made.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator

from tachikoma_backends_core import BackendPlugin, EnvVar, RateLimitConfig
from tachikoma_backends_core.http import HttpPluginConfig

from ._host import DEFAULT_BASE_URL, parse_host

if TYPE_CHECKING:
    from ._backend import OllamaBackend

__all__ = ["DEFAULT_MODEL", "OllamaBackendConfig", "plugin"]

#: The model used when neither the config nor the request names one: small (2 GB),
#: widely documented, and it calls tools.
DEFAULT_MODEL = "llama3.2"

# Ollama reads a string keep_alive as a Go duration: it needs a unit ("5m", "1h30m").
_DURATION = re.compile(r"^-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


class OllamaBackendConfig(HttpPluginConfig):
    """Settings for ``registry.create("ollama", ...)``.

    The settings every HTTP provider has (timeouts, ``max_retries``, ``extra_headers``,
    pool, proxy and CA) are `HttpPluginConfig`'s; these are Ollama's own:

    Attributes:
        base_url: where the server is (``OLLAMA_HOST``, in any form Ollama accepts:
            ``gpu-box``, ``gpu-box:11500``, ``http://...``); ``http://127.0.0.1:11434``.
        api_key: a bearer token (``OLLAMA_API_KEY``) for ollama.com or a proxy in front
            of a server; a local server needs none.
        model: the model used when a request names none.
        keep_alive: how long the model stays loaded after a request: seconds, or a
            duration such as ``"10m"`` (``0`` unloads at once; negative: forever).
        num_ctx: the context window to load the model with (Ollama's default is small,
            4,096 tokens on most machines).
        options: more model options passed as they are (``top_k``, ``min_p``,
            ``repeat_penalty``, ...); a request's own settings win.
        think: whether thinking models think (``True``/``False``, or ``"low"`` to
            ``"max"``) when a request sets no ``reasoning_effort``; ``None``: the model's
            default (thinking models think).
        auto_start: run ``ollama serve`` when nothing answers (the binary must be on
            ``PATH``); the process is stopped when the backend closes.
        start_timeout: seconds to wait for a server it started to answer.
        ollama_binary: the ``ollama`` executable to run.

    Examples:
        >>> OllamaBackendConfig(base_url="gpu-box:11500").base_url
        'http://gpu-box:11500'
        >>> OllamaBackendConfig.environment_variables()
        {'api_key': 'OLLAMA_API_KEY', 'base_url': 'OLLAMA_HOST'}
    """

    api_key: Annotated[SecretStr | None, EnvVar("OLLAMA_API_KEY")] = None
    base_url: Annotated[str, EnvVar("OLLAMA_HOST")] = DEFAULT_BASE_URL
    model: str = Field(default=DEFAULT_MODEL, min_length=1)
    keep_alive: float | str | None = None
    num_ctx: int | None = Field(default=None, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)
    think: bool | Literal["low", "medium", "high", "max"] | None = None
    auto_start: bool = False
    start_timeout: float = Field(default=30.0, gt=0)
    ollama_binary: str = Field(default="ollama", min_length=1)

    @field_validator("base_url", mode="before")
    @classmethod
    def _ollama_host(cls, value: Any) -> Any:
        return parse_host(value) if isinstance(value, str) else value

    @field_validator("keep_alive")
    @classmethod
    def _duration(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, str):
            text = value.strip()
            if _DURATION.match(text):
                return text
            try:
                value = float(text)  # "300": seconds, as a number
            except ValueError:
                value = math.nan
        if value is not None and not math.isfinite(value):
            raise ValueError("must be seconds, or a duration with a unit such as '10m' or '1h30m'")
        return value


def _create(config: OllamaBackendConfig) -> OllamaBackend:
    from ._backend import OllamaBackend  # httpx and the wire layer load only now

    return OllamaBackend(config)


plugin = BackendPlugin(
    name="ollama",
    config_model=OllamaBackendConfig,
    factory=_create,
    harness="tachikoma_backend_ollama.harness:OllamaHarness",
    description="Ollama's native API: local models, pulled on demand.",
    rate_limit=RateLimitConfig.ollama_default,
)
