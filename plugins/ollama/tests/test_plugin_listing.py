"""Listing and loading the plugin stays cheap: no httpx, no backend module, no rich.

The entry point imports the config model and factory only; the backend (and httpx) load
when a backend is made.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tachikoma_backend_ollama import OllamaBackendConfig, plugin

HEAVY_MODULES = ("httpx", "httpcore", "rich")
# No OLLAMA_* variable of the developer's may change what the probes do.
UNSET = sorted(OllamaBackendConfig.environment_variables().values())


def modules_after(code: str) -> list[str]:
    probe = (
        f"import os\nfor name in {UNSET!r}: os.environ.pop(name, None)\n"
        f"{code}\nimport sys, json\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        f"if m.split('.')[0] in {HEAVY_MODULES!r} "
        "or m.startswith('tachikoma_backend_ollama'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "code",
    [
        "import tachikoma_backend_ollama._plugin",
        "from tachikoma_backends_core import registry; registry.get('ollama')",
        "from tachikoma_backends_core import registry; registry.available()",
        "from tachikoma_backend_ollama import OllamaBackendConfig, OllamaServerConfig",
        "from tachikoma_backend_ollama import plugin; plugin.configure(base_url='gpu-box:11500')",
        "from tachikoma_backend_ollama import OllamaServerConfig; "
        "OllamaServerConfig(host='gpu-box').base_url",
    ],
    ids=[
        "entry-point-module",
        "registry-get",
        "registry-available",
        "configs",
        "configure",
        "server-config",
    ],
)
def test_loading_the_plugin_imports_neither_httpx_nor_the_backend(code: str) -> None:
    loaded = modules_after(code)
    assert not [m for m in loaded if m.split(".")[0] in HEAVY_MODULES], loaded
    assert "tachikoma_backend_ollama._backend" not in loaded
    assert "tachikoma_backend_ollama._server" not in loaded
    assert "tachikoma_backend_ollama.harness" not in loaded


def test_creating_a_backend_loads_it() -> None:
    # (rich may come too: httpx imports its own command line, which uses rich, whenever
    # that is installed; the plugin itself imports rich only to draw a pull's bars.)
    loaded = modules_after(
        "from tachikoma_backend_ollama import plugin; plugin.create(base_url='127.0.0.1:11434')"
    )
    assert "tachikoma_backend_ollama._backend" in loaded
    assert "httpx" in loaded
    assert "tachikoma_backend_ollama.harness" not in loaded


def test_the_entry_point_names_the_plugin_and_its_harness() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="tachikoma.backends") if e.name == "ollama"]
    assert entry.value == "tachikoma_backend_ollama._plugin:plugin"
    assert entry.load() is plugin
    assert plugin.name == "ollama"
    assert plugin.config_model is OllamaBackendConfig
    assert plugin.harness == "tachikoma_backend_ollama.harness:OllamaHarness"


def test_the_manifest_declares_the_contract_and_what_the_backend_claims() -> None:
    from tachikoma_backends_core import registry

    (info,) = [i for i in registry.available() if i.name == "ollama"]
    assert info.distribution == "tachikoma-backend-ollama"
    assert info.manifest.contract == 4
    caps = plugin.create(base_url="127.0.0.1:11434").info.capabilities
    claimed = {
        name for name in ("streaming", "tool_calling", "vision", "json_mode") if getattr(caps, name)
    }
    assert info.manifest.capabilities == frozenset(claimed)
