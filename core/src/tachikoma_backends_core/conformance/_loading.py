"""Loading a plugin's conformance harness class, for the suite and for socket mode."""

from __future__ import annotations

import functools
import importlib

from tachikoma_backends_core import registry
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
    return loaded
