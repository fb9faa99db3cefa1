"""What a plugin promises, readable from its distribution's metadata without importing it.

A plugin declares, next to its backend entry point, a *manifest* in the metadata-only
entry point group ``tachikoma.manifests`` (its values are data and are never loaded):

```toml
[project.entry-points."tachikoma.backends"]
acme = "tachikoma_backend_acme._plugin:plugin"

[project.entry-points."tachikoma.manifests"]
acme = "contract=2; capabilities=streaming,tool_calling"
```

* ``contract`` is the version of the `Backend` contract the plugin implements. Core
  supports a range (`MIN_CONTRACT_VERSION` to `CONTRACT_VERSION`) and refuses a plugin
  outside it with a message naming both. The conformance suite runs, for each plugin,
  only the traits its contract includes: a core upgrade adds no failures to a plugin
  until the plugin raises its declared version.
* ``capabilities`` are the capabilities the plugin claims (``streaming``,
  ``tool_calling``, ``vision``, ``json_mode``). The suite exercises each one and fails a
  claim that does not work; it tries the unclaimed ones too and warns when one works.

Why entry-point metadata: listing plugins already reads it, so the manifest costs no
import and no file access, and ``tachikoma backends`` shows it. A plugin
without a manifest is taken to implement contract 1, the first one.

Examples:
    >>> manifest = parse_manifest("contract=2; capabilities=streaming,tool_calling")
    >>> manifest.contract, sorted(manifest.capabilities)  # capabilities: a frozenset
    (2, ['streaming', 'tool_calling'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CAPABILITY_NAMES",
    "PLUGIN_NAME_PATTERN",
    "CONTRACT_VERSION",
    "MANIFEST_ENTRY_POINT_GROUP",
    "MIN_CONTRACT_VERSION",
    "ManifestError",
    "PluginManifest",
    "contract_problem",
    "parse_manifest",
]

#: What a plugin's (or an endpoint's) name may be.
PLUGIN_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

#: The newest `Backend` contract this core implements and tests.
#: 1: the traits of the first conformance suite. 2: stream lifecycle invariants, attempt
#: counting (no hidden retries), capability manifest honesty. 3: socket mode (an HTTP
#: plugin's bytes over real TCP, with network faults; run with ``--sockets``).
CONTRACT_VERSION = 4
#: The oldest contract this core still drives.
MIN_CONTRACT_VERSION = 1
MANIFEST_ENTRY_POINT_GROUP = "tachikoma.manifests"
CAPABILITY_NAMES = ("streaming", "tool_calling", "vision", "json_mode")


class ManifestError(ValueError):
    """A manifest string that cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class PluginManifest:
    """A plugin's declared contract version and capabilities (``None``: not declared)."""

    contract: int = MIN_CONTRACT_VERSION
    capabilities: frozenset[str] | None = None


def parse_manifest(text: str) -> PluginManifest:
    """Read ``"contract=N; capabilities=a,b"``; unknown keys are ignored (newer cores).

    Raises:
        ManifestError: a part is not ``key=value``, the contract is not a positive
            integer, or a capability is not one of `CAPABILITY_NAMES`.
    """
    contract = MIN_CONTRACT_VERSION
    capabilities: frozenset[str] | None = None
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, equals, value = (s.strip() for s in part.partition("="))
        if not equals:
            raise ManifestError(f"manifest part {part!r} is not key=value")
        if key == "contract":
            if not value.isdigit() or int(value) < 1:
                raise ManifestError(f"contract must be a positive integer, got {value!r}")
            contract = int(value)
        elif key == "capabilities":
            names = frozenset(n.strip() for n in value.split(",") if n.strip())
            unknown = sorted(names - set(CAPABILITY_NAMES))
            if unknown:
                raise ManifestError(
                    f"unknown capabilities {', '.join(unknown)}; "
                    f"known: {', '.join(CAPABILITY_NAMES)}"
                )
            capabilities = names
    return PluginManifest(contract=contract, capabilities=capabilities)


def contract_problem(plugin: str, manifest: PluginManifest) -> str | None:
    """Why this core cannot drive ``plugin``, or ``None`` when it can."""
    if MIN_CONTRACT_VERSION <= manifest.contract <= CONTRACT_VERSION:
        return None
    if manifest.contract > CONTRACT_VERSION:
        advice = "upgrade tachikoma-backends-core"
    else:
        advice = "upgrade the plugin"
    return (
        f"plugin {plugin!r} implements Backend contract {manifest.contract}, but this "
        f"tachikoma-backends-core supports contracts {MIN_CONTRACT_VERSION} to "
        f"{CONTRACT_VERSION}; {advice}"
    )
