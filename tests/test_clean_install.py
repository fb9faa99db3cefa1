"""Clean installs: ``./core`` alone, then ``./plugins/mock``; ``./plugins/claude``,
``./plugins/openai`` and ``./plugins/ollama``, each alone.

A fresh virtual environment (not the dev venv, no editable installs) shows that the
distributions work as published: core alone has no plugins, and installing the mock
distribution is all it takes for the registry to list ``mock`` from metadata (without
importing it) and to create a working backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Building the venv (two pip installs, each bounded by PIP_TIMEOUT) happens in the first
# test's setup, which the project-wide 120 s per-test timeout would not always cover.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2 * 300 + 120)]

REPO = Path(__file__).resolve().parents[1]
PIP_TIMEOUT = 300
RUN_TIMEOUT = 60

CORE_ALONE = """\
import sys

import tachikoma_backends_core
from tachikoma_backends_core import registry
from tachikoma_backends_core.errors import PluginLoadError

print("core:", tachikoma_backends_core.__file__)
infos = registry.available()
print("available:", [info.name for info in infos])
assert [info for info in infos if info.name == "mock"] == [], infos
assert "tachikoma_backend_mock" not in sys.modules
try:
    registry.get("mock")
except PluginLoadError as error:
    print("get:", error.message)
else:
    raise AssertionError("mock loaded without being installed")
"""

WITH_MOCK = """\
import sys

import anyio

import tachikoma_backends_core
from tachikoma_backends_core import registry

print("core:", tachikoma_backends_core.__file__)
infos = registry.available()
print("available:", [(i.name, i.distribution, i.version) for i in infos])
mock = [info for info in infos if info.name == "mock"]
assert len(mock) == 1, infos
assert mock[0].distribution == "tachikoma-backend-mock", mock
assert mock[0].version == "0.1.0", mock
assert mock[0].ok, mock
assert "tachikoma_backend_mock" not in sys.modules, "listing imported the plugin"
print("listed without import")

from tachikoma_backends_core import CompletionRequest, Message


async def main() -> str:
    async with registry.create("mock", default_reply="hello from a clean venv") as backend:
        response = await backend.complete(CompletionRequest(messages=[Message.user("hi")]))
        return response.text


text = anyio.run(main)
assert "tachikoma_backend_mock" in sys.modules
import tachikoma_backend_mock

print("mock:", tachikoma_backend_mock.__file__)
print("text:", text)
"""


def _clean_env() -> dict[str, str]:
    """This process's environment minus whatever would leak the dev venv into the new one."""
    dropped = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "TACHIKOMA_PLUGINS", "PYTHONSTARTUP"}
    return {key: value for key, value in os.environ.items() if key not in dropped}


def _run(
    args: list[str | Path], *, cwd: Path, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def _show(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"command: {result.args}\nexit status: {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, _show(result)
    return result


@dataclass
class CleanVenv:
    root: Path
    python: Path
    bin: Path
    workdir: Path
    core_alone_script: subprocess.CompletedProcess[str]
    core_alone_cli: subprocess.CompletedProcess[str]

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return _run(list(args), cwd=self.workdir)


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> CleanVenv:
    """A new venv with core installed, checked, and then the mock plugin installed.

    The core-only checks run here, before the plugin is installed, so their outcome does
    not depend on the order the tests run in; the tests assert on what they recorded.
    """
    base = tmp_path_factory.mktemp("clean-install")
    root = base / "venv"
    # A directory outside the repository, so nothing is importable from the working dir.
    workdir = base / "work"
    workdir.mkdir()
    _ok(_run([sys.executable, "-m", "venv", root], cwd=workdir, timeout=PIP_TIMEOUT))
    bin_dir = root / "bin"
    python = bin_dir / "python"
    pip: list[str | Path] = [python, "-m", "pip", "install", "--quiet"]
    pip.append("--disable-pip-version-check")

    _ok(_run([*pip, REPO / "core"], cwd=workdir, timeout=PIP_TIMEOUT))
    core_alone_script = _run([python, "-c", CORE_ALONE], cwd=workdir)
    core_alone_cli = _run([bin_dir / "tachikoma", "backends", "--no-load"], cwd=workdir)

    _ok(_run([*pip, REPO / "plugins" / "mock"], cwd=workdir, timeout=PIP_TIMEOUT))
    return CleanVenv(root, python, bin_dir, workdir, core_alone_script, core_alone_cli)


def test_core_alone_lists_no_plugins(clean_venv: CleanVenv) -> None:
    result = _ok(clean_venv.core_alone_script)

    # The installed copy is used, not the source tree or the dev venv's editable install.
    core_line = next(line for line in result.stdout.splitlines() if line.startswith("core:"))
    assert str(clean_venv.root) in core_line, _show(result)
    assert "available: []" in result.stdout, _show(result)
    assert "no backend plugin named 'mock'; installed plugins: none" in result.stdout


def test_core_alone_cli_says_no_plugins_installed(clean_venv: CleanVenv) -> None:
    result = _ok(clean_venv.core_alone_cli)

    assert "no backend plugins installed" in result.stdout, _show(result)


def test_mock_is_listed_without_import_and_creates_a_backend(clean_venv: CleanVenv) -> None:
    result = _ok(clean_venv.run(clean_venv.python, "-c", WITH_MOCK))

    assert "available: [('mock', 'tachikoma-backend-mock', '0.1.0')]" in result.stdout, _show(
        result
    )
    assert "listed without import" in result.stdout
    for line in result.stdout.splitlines():
        if line.startswith(("core:", "mock:")):
            assert str(clean_venv.root) in line, _show(result)
    assert "text: hello from a clean venv" in result.stdout, _show(result)


def test_cli_lists_mock(clean_venv: CleanVenv) -> None:
    tachikoma = clean_venv.bin / "tachikoma"

    listed = _ok(clean_venv.run(tachikoma, "backends"))
    metadata_only = _ok(clean_venv.run(tachikoma, "backends", "--no-load"))

    for result in (listed, metadata_only):
        first = result.stdout.splitlines()[0].split()
        assert first == ["mock", "tachikoma-backend-mock", "0.1.0"], _show(result)
    # Without --no-load the plugin is loaded and its capabilities described.
    assert "streaming" in listed.stdout, _show(listed)
    assert "load error" not in listed.stdout


def test_cli_completes_with_mock(clean_venv: CleanVenv) -> None:
    result = _ok(clean_venv.run(clean_venv.bin / "tachikoma", "complete", "-b", "mock", "hi"))

    assert result.stdout.strip() == "Mock response", _show(result)


WITH_CLAUDE = """\
import sys

from tachikoma_backends_core import registry

infos = registry.available()
print("available:", [(i.name, i.distribution, i.version, i.manifest.contract) for i in infos])
assert "tachikoma_backend_claude" not in sys.modules, "listing imported the plugin"
assert "httpx" not in sys.modules, "listing imported httpx"
print("listed without import")

import tachikoma_backends_core

print("core:", tachikoma_backends_core.__file__, tachikoma_backends_core.__version__)
backend = registry.create("claude", api_key="sk-ant-clean-venv-example", max_retries=0)
print("created:", type(backend.inner).__name__, backend.info.default_model)
"""


def _venv_with_plugin(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, Path]:
    """A new venv where ``pip install ./plugins/NAME`` resolves core as a dependency.

    Core is not on the package index, so it is offered as a wheel in a local directory
    (``--find-links``): what pip installs is decided by the plugin's requirements.
    """
    base = tmp_path_factory.mktemp(f"{name}-install")
    root, wheels, workdir = base / "venv", base / "wheels", base / "work"
    workdir.mkdir()
    _ok(_run([sys.executable, "-m", "venv", root], cwd=workdir, timeout=PIP_TIMEOUT))
    python = root / "bin" / "python"
    pip: list[str | Path] = [python, "-m", "pip", "--disable-pip-version-check"]
    _ok(
        _run(
            [*pip, "wheel", "--quiet", "--no-deps", "-w", wheels, REPO / "core"],
            cwd=workdir,
            timeout=PIP_TIMEOUT,
        )
    )
    _ok(
        _run(
            [*pip, "install", "--quiet", "--find-links", wheels, REPO / "plugins" / name],
            cwd=workdir,
            timeout=PIP_TIMEOUT,
        )
    )
    return python, workdir


@pytest.fixture(scope="module")
def claude_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A new venv where ``pip install ./plugins/claude`` resolves core as a dependency."""
    return _venv_with_plugin(tmp_path_factory, "claude")


def test_installing_the_claude_plugin_pulls_core_and_is_listed(
    claude_venv: tuple[Path, Path],
) -> None:
    python, workdir = claude_venv
    result = _ok(_run([python, "-c", WITH_CLAUDE], cwd=workdir))

    assert "available: [('claude', 'tachikoma-backend-claude', '0.1.0', 4)]" in result.stdout, (
        _show(result)
    )
    assert "listed without import" in result.stdout
    core_line = next(line for line in result.stdout.splitlines() if line.startswith("core:"))
    assert str(python.parents[1]) in core_line, _show(result)  # the wheel, not the source tree
    assert core_line.endswith(" 0.1.0"), _show(result)
    assert "created: ClaudeBackend claude-" in result.stdout, _show(result)


WITH_OPENAI = """\
import importlib.util
import os
import sys

# The developer's OPENAI_* and AZURE_* settings must not steer what is checked here.
for name in list(os.environ):
    if name.startswith(("OPENAI_", "AZURE_OPENAI_")):
        del os.environ[name]

from tachikoma_backends_core import registry

infos = registry.available()
print("available:", [(i.name, i.distribution, i.version, i.manifest.contract) for i in infos])
assert "tachikoma_backend_openai" not in sys.modules, "listing imported the plugin"
assert "httpx" not in sys.modules, "listing imported httpx"
print("listed without import")
print("official SDK installed:", importlib.util.find_spec("openai") is not None)

import tachikoma_backends_core

print("core:", tachikoma_backends_core.__file__, tachikoma_backends_core.__version__)
backend = registry.create("openai", api_key="sk-openai-clean-venv-example", max_retries=0)
print("created:", type(backend.inner).__name__, backend.info.default_model)
local = registry.create("openai", base_url="http://127.0.0.1:8000/v1", model="local-model")
print("keyless:", type(local.inner).__name__, local.info.default_model)
import tachikoma_backend_openai

print("openai plugin:", tachikoma_backend_openai.__file__)
"""


@pytest.fixture(scope="module")
def openai_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A new venv where ``pip install ./plugins/openai`` resolves core as a dependency."""
    return _venv_with_plugin(tmp_path_factory, "openai")


def test_installing_the_openai_plugin_pulls_core_and_is_listed(
    openai_venv: tuple[Path, Path],
) -> None:
    python, workdir = openai_venv
    result = _ok(_run([python, "-c", WITH_OPENAI], cwd=workdir))

    assert "available: [('openai', 'tachikoma-backend-openai', '0.1.0', 4)]" in result.stdout, (
        _show(result)
    )
    assert "listed without import" in result.stdout
    # The plugin speaks HTTP itself: the official SDK is a test-only dependency.
    assert "official SDK installed: False" in result.stdout, _show(result)
    venv = str(python.parents[1])
    for prefix in ("core:", "openai plugin:"):
        line = next(line for line in result.stdout.splitlines() if line.startswith(prefix))
        assert venv in line, _show(result)  # the wheel, not the source tree
    core_line = next(line for line in result.stdout.splitlines() if line.startswith("core:"))
    assert core_line.endswith(" 0.1.0"), _show(result)
    assert "created: OpenAIBackend gpt-5.4-mini" in result.stdout, _show(result)
    assert "keyless: OpenAIBackend local-model" in result.stdout, _show(result)


WITH_OLLAMA = """\
import importlib.util
import os
import sys

# The developer's OLLAMA_* settings must not steer what is checked here.
for name in ("OLLAMA_HOST", "OLLAMA_API_KEY"):
    os.environ.pop(name, None)

from tachikoma_backends_core import registry

infos = registry.available()
print("available:", [(i.name, i.distribution, i.version, i.manifest.contract) for i in infos])
print("claims:", sorted(infos[0].manifest.capabilities or ()))
assert "tachikoma_backend_ollama" not in sys.modules, "listing imported the plugin"
assert "httpx" not in sys.modules, "listing imported httpx"
print("listed without import")
print("rich installed:", importlib.util.find_spec("rich") is not None)

import tachikoma_backends_core

print("core:", tachikoma_backends_core.__file__, tachikoma_backends_core.__version__)
backend = registry.create("ollama", max_retries=0)
caps = backend.info.capabilities
print("created:", type(backend.inner).__name__, backend.info.default_model, caps.max_context_tokens)
from tachikoma_backend_ollama import OllamaServerConfig

print("base url:", OllamaServerConfig().base_url)
import tachikoma_backend_ollama

print("ollama plugin:", tachikoma_backend_ollama.__file__)
"""


@pytest.fixture(scope="module")
def ollama_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A new venv where ``pip install ./plugins/ollama`` resolves core as a dependency."""
    return _venv_with_plugin(tmp_path_factory, "ollama")


def test_installing_the_ollama_plugin_pulls_core_and_rich_and_is_listed(
    ollama_venv: tuple[Path, Path],
) -> None:
    python, workdir = ollama_venv
    result = _ok(_run([python, "-c", WITH_OLLAMA], cwd=workdir))

    assert "available: [('ollama', 'tachikoma-backend-ollama', '0.1.0', 4)]" in result.stdout, (
        _show(result)
    )
    assert "claims: ['json_mode', 'streaming', 'tool_calling']" in result.stdout, _show(result)
    assert "listed without import" in result.stdout
    # rich draws `tachikoma pull`'s progress bars: a dependency, not an extra.
    assert "rich installed: True" in result.stdout, _show(result)
    venv = str(python.parents[1])
    for prefix in ("core:", "ollama plugin:"):
        line = next(line for line in result.stdout.splitlines() if line.startswith(prefix))
        assert venv in line, _show(result)  # the wheel, not the source tree
    assert "created: OllamaBackend llama3.2 4096" in result.stdout, _show(result)
    assert "base url: http://127.0.0.1:11434" in result.stdout, _show(result)


def test_the_installed_ollama_cli_pull_without_a_server_fails_in_one_line(
    ollama_venv: tuple[Path, Path],
) -> None:
    # `tachikoma pull` with nothing listening: one line, exit 1 (no traceback).
    python, workdir = ollama_venv
    tachikoma = python.with_name("tachikoma")
    result = _run([tachikoma, "pull", "llama3.2", "-o", "base_url=127.0.0.1:9"], cwd=workdir)

    assert result.returncode == 1, _show(result)
    assert result.stdout == "", _show(result)
    assert result.stderr.startswith("tachikoma: error: "), _show(result)
    assert result.stderr.count("\n") == 1, _show(result)
