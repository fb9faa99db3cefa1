"""Loading a plugin's conformance harness class, for the suite and for socket mode."""

from __future__ import annotations

import functools
import importlib

from tachikoma_backends_core import registry
from tachikoma_backends_core.endpoints import EndpointPlugin
from tachikoma_backends_core.errors import PluginLoadError

from .harness import ConformanceHarness

__all__ = ["harness_type"]


@functools.cache
def harness_type(plugin_name: str) -> type[ConformanceHarness]:
    """The plugin's harness class, named by its ``BackendPlugin`` (loaded once per
    process: every trait needs it)."""
    plugin = registry.get(plugin_name)
    if plugin.harness is None:
        raise PluginLoadError(
            f"plugin {plugin_name!r} declares no conformance harness "
            "(BackendPlugin(harness='package.module:HarnessClass'))",
            plugin=plugin_name,
        )
    module_name, _, attribute = plugin.harness.partition(":")
    try:
        loaded = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # any import-time error fails this plugin's traits only
        raise PluginLoadError(
            f"plugin {plugin_name!r} harness {plugin.harness!r} cannot be loaded: {exc}",
            plugin=plugin_name,
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, ConformanceHarness)):
        raise PluginLoadError(
            f"plugin {plugin_name!r} harness {plugin.harness!r} is not a ConformanceHarness",
            plugin=plugin_name,
        )
    if isinstance(plugin, EndpointPlugin):
        return _serving_the_endpoint(loaded, plugin)
    return loaded


def _serving_the_endpoint(
    harness: type[ConformanceHarness], plugin: EndpointPlugin
) -> type[ConformanceHarness]:
    """The base plugin's harness, building its backends through the endpoint (its name,
    settings and declared capabilities), and going live with the endpoint's key."""
    if not hasattr(harness, "backend_plugin"):
        raise PluginLoadError(
            f"endpoint {plugin.name!r}: the harness {harness.__name__} builds its own "
            "backends, so it cannot check an endpoint",
            plugin=plugin.name,
        )
    endpoint = plugin.endpoint
    assert endpoint is not None
    live_environment = (endpoint.api_key_env,) if endpoint.api_key_env else ()
    return type(
        f"{harness.__name__}For_{plugin.name}",
        (harness,),
        {
            "backend_plugin": plugin,
            "live_settings": {},
            "live_environment": live_environment,
            # The endpoint's model is most likely one the base plugin does not know:
            # its output limit is a guess, which the server enforces, not the plugin.
            "over_max_output_tokens": "as_asked",
        },
    )
