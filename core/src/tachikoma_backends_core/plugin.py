"""What a provider plugin hands to the registry: a name, a config model and a factory.

A plugin's entry point (group ``tachikoma.backends``) names a `BackendPlugin`.
The module holding it should import only core and its config model; the provider's
heavy code is imported by the factory, so listing plugins stays cheap and
creating one backend loads one provider.

Example (a plugin's ``_plugin.py``):

```python
from typing import Annotated
from pydantic import SecretStr
from tachikoma_backends_core import BackendPlugin, EnvVar, PluginConfig

class AcmeConfig(PluginConfig):
    api_key: Annotated[SecretStr | None, EnvVar("ACME_API_KEY")] = None
    model: str = "acme-1"

def _create(config: AcmeConfig):
    from ._backend import AcmeBackend   # imported only when a backend is made
    return AcmeBackend(config)

plugin = BackendPlugin(name="acme", config_model=AcmeConfig, factory=_create)
```
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import Field, SecretStr, model_validator

from ._validation import ValidatedModel
from .backend import Backend
from .errors import BackendError, ConfigurationError, InvalidRequestError, register_secret
from .managed import ManagedBackend
from .manifest import PLUGIN_NAME_PATTERN
from .retry import RetryPolicy

if TYPE_CHECKING:
    from ._rate_budget import RateLimitConfig
    from .rate_limit import RateLimiting

__all__ = ["BackendPlugin", "EnvVar", "PluginConfig", "distribution_version"]

#: Set, it puts every backend `BackendPlugin.create` makes behind a quota shared through
#: this Redis (``redis://host:6379/0``).
REDIS_URL_ENV_VAR = "TACHIKOMA_REDIS_URL"


@functools.cache
def distribution_version(distribution: str) -> str:
    """The installed version of ``distribution``, for a backend's ``info.version``.

    ``"0+unknown"`` when it runs from a source tree without metadata. Read once per
    process: metadata lookups walk ``sys.path``, and every backend created asks.
    """
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class EnvVar:
    """Marks a config field as read from environment variable ``name`` when not given.

    Use it in ``Annotated``: ``api_key: Annotated[SecretStr | None, EnvVar("X_KEY")] = None``.
    """

    name: str


class PluginConfig(ValidatedModel):
    """Base of every plugin's configuration.

    * unknown fields are refused (a typo is a ``ConfigurationError`` naming it);
    * fields marked with `EnvVar` default to that environment variable;
    * ``SecretStr`` values are registered for redaction, and invalid input is never
      echoed, so no error, repr or log line shows a key;
    * ``max_retries`` sizes the core's retry loop, the only one (`BackendPlugin.create`):
      every plugin has it, ``0`` by default; HTTP providers default to 2, as the
      official SDKs do (`tachikoma_backends_core.http.HttpPluginConfig`).
    """

    invalid_input_error: ClassVar[type[InvalidRequestError | ConfigurationError]] = (
        ConfigurationError
    )

    max_retries: int = Field(default=0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for name, info in cls.model_fields.items():
            if name in filled:
                continue
            for marker in info.metadata:
                if isinstance(marker, EnvVar) and marker.name in os.environ:
                    filled[name] = os.environ[marker.name]
        return filled

    @model_validator(mode="after")
    def _register_secrets(self) -> PluginConfig:
        for value in self.__dict__.values():
            if isinstance(value, SecretStr):
                register_secret(value.get_secret_value())
        return self

    @classmethod
    def environment_variables(cls) -> dict[str, str]:
        """Field name -> the environment variable it is read from."""
        return {
            name: marker.name
            for name, info in cls.model_fields.items()
            for marker in info.metadata
            if isinstance(marker, EnvVar)
        }


ConfigT = TypeVar("ConfigT", bound=PluginConfig)


@dataclass(frozen=True)
class BackendPlugin(Generic[ConfigT]):
    """A provider plugin, as its entry point declares it.

    Attributes:
        name: the plugin's name (``"claude"``); must equal the entry point's name.
        config_model: the pydantic model that validates ``create(**config)``.
        factory: builds the backend from a validated config.
        harness: ``"module:attribute"`` of the plugin's conformance harness, imported
            only by the conformance suite.
        description: one line for ``tachikoma backends``.
        rate_limit: the provider's default budgets (``RateLimitConfig.claude_default``,
            say), called only when the environment asks for a shared quota
            (``TACHIKOMA_REDIS_URL``; see `create`).
    """

    name: str
    config_model: type[ConfigT]
    factory: Callable[[ConfigT], Backend]
    harness: str | None = None
    description: str = ""
    rate_limit: Callable[[], RateLimitConfig] | None = None

    def __post_init__(self) -> None:
        if not PLUGIN_NAME_PATTERN.match(self.name):
            raise ConfigurationError(
                f"plugin name {self.name!r} must be lowercase letters, digits, '-' or '_'",
                field="name",
            )

    def configure(self, **config: Any) -> ConfigT:
        """Validate ``config`` (plus environment defaults) into the plugin's config model."""
        return self.config_model(**config)

    def create(
        self,
        config: ConfigT | None = None,
        /,
        *,
        rate_limiter: RateLimiting | None = None,
        **overrides: Any,
    ) -> ManagedBackend[Any]:
        """Build a backend from a config object, or from keyword settings.

        The provider's backend comes back wrapped in a `ManagedBackend`: the installed
        hooks see its calls, and the core's retry loop retries what is retryable, as
        often as the config's ``max_retries`` says. Plugins never retry themselves. The
        provider's own object is ``backend.inner``.

        ``rate_limiter`` admits each attempt (a `RateLimiter`, or a `RedisRateLimiter`
        shared by many processes). Without one, when ``TACHIKOMA_REDIS_URL`` is set,
        every backend gets a `RedisAdaptiveRateLimiter` on that Redis, for the quota of
        this plugin and this API key, with the budgets of ``TACHIKOMA_RATE_LIMIT`` or
        else the plugin's ``rate_limit`` (see `rate_limiter_from_environment`): every
        worker of an application shares one quota without code.
        """
        if config is None:
            config = self.configure(**overrides)
        elif overrides:
            config = self.config_model(**{**dict(config), **overrides})
        try:
            backend = self.factory(config)
        except BackendError:
            raise
        except Exception as exc:
            raise ConfigurationError(
                f"plugin {self.name!r} failed to create a backend: {type(exc).__name__}: {exc}",
                provider=self.name,
            ) from exc
        if not isinstance(backend, Backend):
            raise ConfigurationError(
                f"plugin {self.name!r} factory returned {type(backend).__name__}, not a Backend",
                provider=self.name,
            )
        retry_policy = RetryPolicy.from_max_retries(config.max_retries)
        if rate_limiter is None and os.environ.get(REDIS_URL_ENV_VAR):
            from .redis_rate_limit import rate_limiter_from_environment

            api_key = getattr(config, "api_key", None)
            rate_limiter = rate_limiter_from_environment(
                self.name,
                self.rate_limit,
                api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key,
            )
        return ManagedBackend(backend, retry_policy=retry_policy, rate_limiter=rate_limiter)
