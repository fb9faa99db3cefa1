"""What capabilities a plugin declares, shared by the suite's machinery and its traits.

Its own module so that `traits` can use it without importing `_session` (the pytest
machinery, which imports the trait modules when it activates the suite): neither
depends on the other, and importing a trait module pulls in no session hooks.
"""

from __future__ import annotations

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.manifest import CAPABILITY_NAMES
from tachikoma_backends_core.registry import PluginInfo


def declared_capabilities(info: PluginInfo, backend: Backend) -> set[str]:
    """The capabilities a plugin claims: its manifest's, else its ``info``'s flags."""
    if info.manifest.capabilities is not None:
        return set(info.manifest.capabilities)
    flags = backend.info.capabilities
    return {name for name in CAPABILITY_NAMES if getattr(flags, name)}
