"""``tachikoma backends``: what is installed, from metadata; with ``--check``, whether
each plugin loads and is configured.

The default reads distribution metadata only (no plugin module, no httpx, no pydantic
imported), so it answers in a few tens of milliseconds however many providers are
installed. ``--check`` creates each backend from the environment, as a program would.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from tachikoma_backends_core import registry
from tachikoma_backends_core.errors import BackendError
from tachikoma_backends_core.registry import PluginInfo

from ._terminal import EXIT_FAILURE, EXIT_OK, Terminal

__all__ = ["Check", "list_backends"]

INDENT = " " * 13
FLAGS = ("streaming", "tool_calling", "vision", "json_mode")


@dataclass(frozen=True)
class Check:
    """What creating a plugin's backend from the environment showed."""

    configured: bool
    #: the loaded plugin's own one-line ``description`` (``BackendPlugin.description``)
    description: str | None = None
    #: why it could not be created (a missing key, say); ``None`` when configured
    reason: str | None = None
    #: the plugin failed in a way configuration cannot mend (its ``info`` raised: a bug)
    broken: bool = False
    capabilities: list[str] | None = None
    max_context_tokens: int | None = None
    max_output_tokens: int | None = None

    def describe(self) -> str:
        if self.broken:
            return f"failed: {self.reason}"
        if not self.configured:
            return f"not configured: {self.reason}"
        return (
            f"configured: {', '.join(self.capabilities or []) or 'no optional features'}; "
            f"context {self.max_context_tokens:,}, output {self.max_output_tokens:,} tokens"
        )


def _check(name: str) -> Check:
    import anyio

    description = registry.get(name).description or None  # loaded already: no new import
    try:
        backend = registry.create(name)
    except BackendError as error:
        return Check(configured=False, description=description, reason=error.message)
    try:
        caps = backend.info.capabilities
    except Exception as exc:  # a plugin's bug: reported on its line, the others still listed
        reason = f"info failed: {type(exc).__name__}: {exc}"
        return Check(configured=False, description=description, reason=reason, broken=True)
    finally:
        anyio.run(backend.aclose)
    return Check(
        configured=True,
        description=description,
        capabilities=[flag for flag in FLAGS if getattr(caps, flag)],
        max_context_tokens=caps.max_context_tokens,
        max_output_tokens=caps.max_output_tokens,
    )


def _declared(info: PluginInfo) -> list[str] | None:
    declared = info.manifest.capabilities
    return None if declared is None else sorted(declared)


def _as_json(info: PluginInfo, check: Check | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "description": info.description,
        "contract": info.manifest.contract,
        "capabilities": _declared(info),
        "error": None if info.error is None else info.error.message,
    }
    if check is not None:
        entry["check"] = asdict(check)
    return entry


def _as_text(info: PluginInfo, check: Check | None) -> list[str]:
    lines = [f"{info.name:<12} {info.describe()}"]
    # Once loaded, the plugin's own description; before, its distribution's summary.
    description = (check and check.description) or info.description
    if description:
        lines.append(f"{INDENT}{description}")
    if info.error is not None:
        lines.append(f"{INDENT}load error: {info.error.message}")
        return lines
    declared = _declared(info)
    claims = (
        "capabilities not declared"
        if declared is None
        else ", ".join(declared) or "no optional features"
    )
    lines.append(f"{INDENT}contract {info.manifest.contract}; {claims}")
    if check is not None:
        lines.append(f"{INDENT}{check.describe()}")
    return lines


def list_backends(terminal: Terminal, *, check: bool, as_json: bool) -> int:
    """Print the installed plugins; exit status 1 if one cannot be used (a load error,
    or with ``check`` a backend that fails once created); not configured is no error."""
    infos = registry.default_registry.check() if check else registry.available()
    checks = {info.name: _check(info.name) for info in infos if check and info.error is None}
    if as_json:
        listing = [_as_json(info, checks.get(info.name)) for info in infos]
        terminal.print(json.dumps(listing, indent=2))
    elif not infos:
        terminal.print(
            "no backend plugins installed (from a clone: pip install ./plugins/<name>; once "
            "published: pip install tachikoma-backend-<name>)"
        )
    else:
        for info in infos:
            for line in _as_text(info, checks.get(info.name)):
                terminal.print(line)
    unusable = any(not info.ok for info in infos) or any(c.broken for c in checks.values())
    return EXIT_FAILURE if unusable else EXIT_OK
