"""``tachikoma models`` and ``tachikoma pull``: the models a backend has, and fetching one
for a backend that manages its own (Ollama)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tachikoma_backends_core import registry
from tachikoma_backends_core.errors import BackendError

from ._terminal import EXIT_OK, Terminal

if TYPE_CHECKING:
    from tachikoma_backends_core.model_management import ModelManager

__all__ = ["list_models", "pull"]


def _manager(backend: Any, name: str, doing: str) -> ModelManager:
    from tachikoma_backends_core.model_management import ModelManager

    inner = getattr(backend, "inner", backend)
    if not isinstance(inner, ModelManager):
        raise BackendError(f"the {name} backend cannot {doing}: its provider manages its models")
    return inner


async def list_models(terminal: Terminal, names: list[str], settings: dict[str, str]) -> int:
    from tachikoma_backends_core.model_management import ModelManager

    for name in names or registry.names():
        async with registry.create(name, **settings) as backend:
            inner = getattr(backend, "inner", backend)
            if isinstance(inner, ModelManager):
                for model in await inner.list_models():
                    size = f"{model.size / 1e9:6.1f} GB" if model.size is not None else ""
                    terminal.print(f"{name:<12} {model.name:<40} {size}".rstrip())
            else:  # what the plugin knows of; its provider decides what it serves
                for model_id in backend.info.available_models:
                    terminal.print(f"{name:<12} {model_id}")
    return EXIT_OK


async def pull(terminal: Terminal, name: str, model: str, settings: dict[str, str]) -> int:
    from ._pull_progress import show_pull

    async with registry.create(name, **settings) as backend:
        manager = _manager(backend, name, "pull models")
        last = await show_pull(manager.pull_model(model), terminal.out)
    if last is None or not last.done:
        raise BackendError(f"the pull of {model} ended before it succeeded")
    terminal.print(f"pulled {model}")
    return EXIT_OK
