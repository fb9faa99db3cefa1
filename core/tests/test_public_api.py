"""The public API: every exported name resolves, and importing the package is cheap."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import tachikoma_backends_core

PACKAGE_DIR = Path(tachikoma_backends_core.__file__).parent
PUBLIC_MODULES = [
    "backend",
    "cli",
    "clock",
    "completion",
    "content",
    "context",
    "errors",
    "hooks",
    "hookspecs",
    "http",
    "managed",
    "manifest",
    "messages",
    "model_management",
    "plugin",
    "predefined_tools",
    "rate_limit",
    "registry",
    "retry",
    "streaming",
    "sync",
    "tokens",
    "tool_calls",
    "tools",
]


@pytest.mark.parametrize("name", tachikoma_backends_core.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(tachikoma_backends_core, name) is not None


def test_type_checking_imports_match_the_lazy_exports() -> None:
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    declared = {
        alias.asname: (node.module, alias.name)
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    lazy = tachikoma_backends_core._EXPORTS
    assert set(declared) == set(lazy)
    for name, (module, original) in declared.items():
        assert (module, original) == (lazy[name], name)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_modules_declare_all_and_it_resolves(module_name: str) -> None:
    module = importlib.import_module(f"tachikoma_backends_core.{module_name}")
    assert module.__all__, f"{module_name} has an empty __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = tachikoma_backends_core.Nope  # type: ignore[attr-defined]


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return set(output.split())


LISTING_CLI = (
    "import io; from tachikoma_backends_core.cli import main; "
    "assert main(['backends'], out=io.StringIO()) == 0"
)
LISTING_CLI_JSON = (
    "import io; from tachikoma_backends_core.cli import main; "
    "assert main(['backends', '--json'], out=io.StringIO()) == 0"
)
HEAVY = {
    "pydantic",
    "stevedore",
    "httpx",
    "httpcore",
    "tachikoma_backends_core.http",
    "tachikoma_backend_mock",
    "tachikoma_backend_claude",
    "tachikoma_backend_openai",
    "tachikoma_backend_ollama",
    "anyio",
}


@pytest.mark.parametrize(
    "code",
    [
        "import tachikoma_backends_core",
        "from tachikoma_backends_core import registry; registry.available()",
        "from tachikoma_backends_core import BackendError, PluginLoadError",
        LISTING_CLI,
        LISTING_CLI_JSON,
    ],
    ids=["import", "registry-available", "errors", "cli-backends", "cli-backends-json"],
)
def test_importing_and_listing_do_not_load_heavy_dependencies(code: str) -> None:
    # Neither httpx nor the HTTP kit: they load when an HTTP backend is created.
    loaded = _modules_after(code)
    assert not HEAVY & loaded, sorted(HEAVY & loaded)


def test_creating_an_http_backend_is_what_loads_the_kit() -> None:
    loaded = _modules_after(
        "from tachikoma_backends_core import registry; "
        "registry.create('claude', api_key='sk-ant-public-api-test')"
    )
    assert {
        "httpx",
        "tachikoma_backends_core.http",
        "tachikoma_backends_core.http._connection",
    } <= (loaded)
