"""Listing and loading the plugin stays cheap: no httpx, no backend module, until one is made.

And the plugin never imports the official SDK (nor the httpx2 it is built on): it is a
test-only dependency, for the differential test.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tachikoma_backend_openai import OpenAIBackendConfig, plugin

HTTP_MODULES = ("httpx", "httpcore", "httpx2", "openai")
# No OPENAI_* or AZURE_* variable of the developer's may change what the probes do.
UNSET = sorted(OpenAIBackendConfig.environment_variables().values())


def modules_after(code: str) -> list[str]:
    probe = (
        f"import os\nfor name in {UNSET!r}: os.environ.pop(name, None)\n"
        f"{code}\nimport sys, json\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        f"if m.split('.')[0] in {HTTP_MODULES!r} "
        "or m.startswith('tachikoma_backend_openai'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "code",
    [
        "import tachikoma_backend_openai._plugin",
        "from tachikoma_backends_core import registry; registry.get('openai')",
        "from tachikoma_backends_core import registry; registry.available()",
        "from tachikoma_backend_openai import OpenAIBackendConfig, OpenAIModel",
        "from tachikoma_backend_openai import plugin; plugin.configure(api_key='sk-listing')",
    ],
    ids=[
        "entry-point-module",
        "registry-get",
        "registry-available",
        "config-and-models",
        "configure",
    ],
)
def test_loading_the_plugin_imports_neither_httpx_nor_the_backend(code: str) -> None:
    loaded = modules_after(code)
    assert not [m for m in loaded if m.split(".")[0] in HTTP_MODULES], loaded
    assert "tachikoma_backend_openai._backend" not in loaded
    assert "tachikoma_backend_openai.harness" not in loaded


@pytest.mark.parametrize(
    "settings",
    [
        "api_key='sk-openai-listing-test'",
        "base_url='http://127.0.0.1:8000/v1'",
        "azure_endpoint='https://res.openai.azure.com', azure_api_key='azure-listing-key'",
    ],
    ids=["openai", "keyless-server", "azure"],
)
def test_creating_a_backend_loads_it(settings: str) -> None:
    loaded = modules_after(
        f"from tachikoma_backend_openai import plugin; plugin.create({settings})"
    )
    assert "tachikoma_backend_openai._backend" in loaded
    assert "httpx" in loaded
    assert "openai" not in loaded, "the official SDK is for tests only"
    assert "httpx2" not in loaded


def test_the_entry_point_names_the_plugin_and_its_harness() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="tachikoma.backends") if e.name == "openai"]
    assert entry.value == "tachikoma_backend_openai._plugin:plugin"
    assert entry.load() is plugin
    assert plugin.name == "openai"
    assert plugin.config_model is OpenAIBackendConfig
    assert plugin.harness == "tachikoma_backend_openai.harness:OpenAIHarness"


def test_the_manifest_declares_the_contract_and_what_the_backend_claims() -> None:
    from tachikoma_backends_core import registry

    (info,) = [i for i in registry.available() if i.name == "openai"]
    assert info.distribution == "tachikoma-backend-openai"
    assert info.manifest.contract == 4
    caps = plugin.create(api_key="sk-openai-listing-test").info.capabilities
    claimed = {
        name for name in ("streaming", "tool_calling", "vision", "json_mode") if getattr(caps, name)
    }
    assert info.manifest.capabilities == frozenset(claimed)
