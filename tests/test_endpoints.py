"""OpenAI-compatible services declared in the endpoints file, with no code.

Each test writes an endpoints file and points ``TACHIKOMA_ENDPOINTS_FILE`` at it: the
registry lists the endpoints by name (metadata only), ``registry.create(name)`` serves
them through the OpenAI plugin with the endpoint's settings and nothing of the OpenAI
plugin's environment, and ``pytest --plugin=NAME`` checks one like a plugin, offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tachikoma_backends_core import ConfigurationError, PluginLoadError, registry

GROQ = """
[endpoints.groq]
base_url = "https://api.groq.com/openai/v1/"
api_key_env = "GROQ_API_KEY"
model = "llama-3.3-70b-versatile"
capabilities = ["streaming", "tool_calling", "json_mode"]
description = "Groq, OpenAI-compatible"

[endpoints.groq.settings]
timeout = 30.0

[endpoints.lmstudio]
base_url = "http://127.0.0.1:1234/v1"
model = "qwen3-8b"
"""


@pytest.fixture
def endpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "endpoints.toml"
    path.write_text(GROQ, encoding="utf-8")
    monkeypatch.setenv("TACHIKOMA_ENDPOINTS_FILE", str(path))
    monkeypatch.delenv("TACHIKOMA_PLUGINS", raising=False)
    return path


def test_endpoints_are_listed_by_name_with_their_capabilities(endpoints: Path) -> None:
    assert {"groq", "lmstudio", "openai"} <= set(registry.names())
    groq = registry.default_registry.info("groq")
    assert groq.ok
    assert groq.manifest.capabilities == {"streaming", "tool_calling", "json_mode"}
    assert groq.manifest.contract == registry.default_registry.info("openai").manifest.contract
    assert groq.distribution == "tachikoma-backend-openai"
    assert f"[endpoints.groq] in {endpoints} (openai)" == groq.entry_point
    # Without declared capabilities, an endpoint has its plugin's.
    lmstudio = registry.default_registry.info("lmstudio")
    assert (
        lmstudio.manifest.capabilities
        == registry.default_registry.info("openai").manifest.capabilities
    )


def test_listing_endpoints_imports_neither_pydantic_nor_a_plugin(endpoints: Path) -> None:
    probe = (
        "import sys\n"
        "from tachikoma_backends_core import registry\n"
        "print(registry.names())\n"
        "heavy = [m for m in sys.modules if m.startswith(('pydantic', 'tachikoma_backend_'))]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    names, heavy = result.stdout.splitlines()
    assert "'groq'" in names
    assert heavy == "[]"


@pytest.mark.anyio
async def test_an_endpoint_is_created_by_name_with_its_own_settings_only(
    endpoints: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The OpenAI plugin's environment must not reach another service.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-not-leak-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://elsewhere.example/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-must-not-leak")
    monkeypatch.setenv("GROQ_API_KEY", "gsk-groq-key-0123456789")
    backend = registry.create("groq")
    async with backend:
        info = backend.info
        assert (info.name, info.default_model) == ("groq", "llama-3.3-70b-versatile")
        flags = info.capabilities
        assert (flags.streaming, flags.tool_calling, flags.json_mode, flags.vision) == (
            True,
            True,
            True,
            False,
        )
    config = registry.get("groq").configure()
    assert config.base_url == "https://api.groq.com/openai/v1"
    assert config.api_key.get_secret_value() == "gsk-groq-key-0123456789"
    assert config.organization is None
    assert config.timeout == 30.0
    # No key variable set: no key, never OpenAI's.
    monkeypatch.delenv("GROQ_API_KEY")
    assert registry.get("groq").configure().api_key is None
    # Settings passed at the call site win, as for any plugin.
    assert registry.get("groq").configure(model="mixtral").model == "mixtral"


def test_a_configured_endpoint_passes_the_conformance_suite_offline(
    endpoints: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--plugin=groq",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--conformance-report={report_path}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (entry,) = json.loads(report_path.read_text())["plugins"]
    assert entry["name"] == "groq"
    assert entry["summary"]["failed"] == 0
    assert entry["summary"]["passed"] > 150
    skipped = {t["trait"] for t in entry["traits"] if t["outcome"] == "skipped"}
    assert "test_an_image_keeps_its_media_type" in skipped, "vision is not declared"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[endpoints.groq]\nmodel = 'x'\n", "[endpoints.groq]: base_url must be an http://"),
        (
            "[endpoints.groq]\nbase_url = 'https://x/v1'\nkey_env = 'K'\n",
            "unknown setting(s) key_env",
        ),
        (
            "[endpoints.groq]\nbase_url = 'https://x/v1'\ncapabilities = ['telepathy']\n",
            "unknown capabilities ['telepathy']",
        ),
        ("[endpoints.Groq]\nbase_url = 'https://x/v1'\n", "the name must be lowercase"),
        ("[endpoints.groq\n", "cannot be read"),
    ],
)
def test_a_malformed_file_is_a_clear_configuration_error(
    endpoints: Path, text: str, says: str
) -> None:
    endpoints.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as raised:
        registry.names()
    assert says in raised.value.message
    assert str(endpoints) in raised.value.message


def test_an_endpoint_that_cannot_be_served_is_listed_with_the_reason(endpoints: Path) -> None:
    endpoints.write_text(
        "[endpoints.mock]\nbase_url = 'https://x/v1'\n"
        "[endpoints.elsewhere]\nbase_url = 'https://x/v1'\nplugin = 'not-installed'\n",
        encoding="utf-8",
    )
    listed = registry.available()
    (clash,) = [info for info in listed if info.name == "mock" and info.error is not None]
    assert "has the name of an installed plugin" in clash.error.message
    assert registry.default_registry.info("mock").ok, "the installed plugin keeps its name"
    infos = {info.name: info for info in listed}
    assert infos["elsewhere"].error is not None
    assert "served by plugin 'not-installed', which is not installed" in (
        infos["elsewhere"].error.message
    )
    with pytest.raises(PluginLoadError, match="which is not installed"):
        registry.create("elsewhere")


def test_the_suite_says_what_is_wrong_with_the_file(endpoints: Path, tmp_path: Path) -> None:
    endpoints.write_text("[endpoints.groq]\nmodel = 'x'\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--plugin=groq", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "[endpoints.groq]: base_url must be an http:// or https:// URL" in result.stderr
