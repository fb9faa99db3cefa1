"""Listing and loading the plugin stays cheap: no httpx, no backend module, until one is made."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tachikoma_backend_claude import plugin


def modules_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys, json\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('httpx', 'httpcore') or m.startswith('tachikoma_backend_claude'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "code",
    [
        "import tachikoma_backend_claude._plugin",
        "from tachikoma_backends_core import registry; registry.get('claude')",
        "from tachikoma_backends_core import registry; registry.available()",
        "from tachikoma_backend_claude import ClaudeBackendConfig, ClaudeModel",
    ],
    ids=["entry-point-module", "registry-get", "registry-available", "config-and-models"],
)
def test_loading_the_plugin_imports_neither_httpx_nor_the_backend(code: str) -> None:
    loaded = modules_after(code)
    assert not [m for m in loaded if m.split(".")[0] in ("httpx", "httpcore")], loaded
    assert "tachikoma_backend_claude._backend" not in loaded
    assert "tachikoma_backend_claude.harness" not in loaded


def test_creating_a_backend_loads_it() -> None:
    loaded = modules_after(
        "from tachikoma_backend_claude import plugin; plugin.create(api_key='sk-ant-listing-test')"
    )
    assert "tachikoma_backend_claude._backend" in loaded
    assert "httpx" in loaded


def test_the_entry_point_names_the_plugin() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="tachikoma.backends") if e.name == "claude"]
    assert entry.load() is plugin
    assert plugin.harness == "tachikoma_backend_claude.harness:ClaudeHarness"
