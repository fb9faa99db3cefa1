"""``tachikoma new-plugin`` and `new_plugin`: what is generated, and what is refused.

Installing each style's plugin and running the conformance suite on it is
``test_scaffold_install.py`` (slow); here, what is quick: the files, the names, the
errors (nothing written, nothing overwritten), the CLI, and the guide's transcript.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tachikoma_backends_core.cli import main
from tachikoma_backends_core.cli._app import SCAFFOLD_STYLES
from tachikoma_backends_core.manifest import CONTRACT_VERSION
from tachikoma_backends_core.scaffold import (
    DEFAULT_STYLE,
    STYLES,
    ScaffoldError,
    new_plugin,
    next_steps,
)

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins" / "writing-a-plugin.md"
CLI_PAGE = ROOT / "docs" / "cli.md"
BIN = Path(sys.executable).parent
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```", re.DOTALL | re.MULTILINE)
TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```", re.DOTALL | re.MULTILINE)

FILES = [
    ".github/workflows/conformance.yml",
    "README.md",
    "pyproject.toml",
    "src/tachikoma_backend_acme/__init__.py",
    "src/tachikoma_backend_acme/_backend.py",
    "src/tachikoma_backend_acme/_plugin.py",
    "src/tachikoma_backend_acme/_wire.py",
    "src/tachikoma_backend_acme/harness.py",
    "src/tachikoma_backend_acme/py.typed",
    "tests/test_acme.py",
]


def _tree(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_writes_the_whole_distribution(tmp_path: Path, style: str) -> None:
    root = new_plugin("acme", style=style, directory=tmp_path)
    assert root == tmp_path / "tachikoma-backend-acme"
    assert _tree(root) == FILES
    assert "$" not in "".join(path.read_text() for path in root.rglob("*.py"))


@pytest.mark.parametrize("style", list(STYLES))
def test_the_generated_code_is_ruff_clean(tmp_path: Path, style: str) -> None:
    root = new_plugin("my-llm", style=style, directory=tmp_path)
    for check in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [BIN / "ruff", *check, "--no-cache", "."],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_name_in_each_of_its_forms(tmp_path: Path) -> None:
    root = new_plugin("my-llm", directory=tmp_path)
    assert root.name == "tachikoma-backend-my-llm"
    pyproject = (root / "pyproject.toml").read_text()
    assert 'name = "tachikoma-backend-my-llm"' in pyproject
    assert 'my-llm = "tachikoma_backend_my_llm._plugin:plugin"' in pyproject
    manifest = f'my-llm = "contract={CONTRACT_VERSION}; capabilities=streaming,tool_calling"'
    assert manifest in pyproject
    plugin = (root / "src" / "tachikoma_backend_my_llm" / "_plugin.py").read_text()
    assert "class MyLlmConfig(HttpPluginConfig)" in plugin
    assert 'EnvVar("MY_LLM_API_KEY")' in plugin
    assert 'name="my-llm"' in plugin
    assert (root / "tests" / "test_my_llm.py").is_file()


def test_a_name_starting_with_a_digit_still_makes_identifiers(tmp_path: Path) -> None:
    root = new_plugin("01ai", style="ndjson", directory=tmp_path)
    source = (root / "src" / "tachikoma_backend_01ai" / "_backend.py").read_text()
    assert "class Provider01aiBackend(Backend)" in source
    for path in root.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")


@pytest.mark.parametrize("name", ["Acme", "my llm", "-acme", "acme!", "", "a" * 65])
def test_a_name_a_plugin_cannot_have_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScaffoldError) as raised:
        new_plugin(name, directory=tmp_path)
    assert raised.value.field == "name"
    assert isinstance(raised.value, ValueError)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_style_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="openai-sse, sse, ndjson") as raised:
        new_plugin("acme", style="grpc", directory=tmp_path)
    assert raised.value.field == "style"
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "tachikoma-backend-acme"
    target.mkdir()
    (target / "pyproject.toml").write_text("mine")
    with pytest.raises(ScaffoldError, match="already exists") as raised:
        new_plugin("acme", directory=tmp_path)
    assert raised.value.field == "directory"
    assert _tree(target) == ["pyproject.toml"]
    assert (target / "pyproject.toml").read_text() == "mine"


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tachikoma-backend-acme").write_text("mine")
    with pytest.raises(ScaffoldError):
        new_plugin("acme", directory=tmp_path)
    assert (tmp_path / "tachikoma-backend-acme").read_text() == "mine"


def test_an_empty_existing_directory_is_filled(tmp_path: Path) -> None:
    (tmp_path / "tachikoma-backend-acme").mkdir()
    assert _tree(new_plugin("acme", directory=tmp_path)) == FILES


def test_the_cli_writes_the_plugin_and_says_what_next(tmp_path: Path) -> None:
    code, out, err = run("new-plugin", "acme", "--style", "sse", "--directory", str(tmp_path))
    assert (code, err) == (0, "")
    target = tmp_path / "tachikoma-backend-acme"
    assert out == next_steps("acme", target) + "\n"
    assert "pip install path/to/checkout/core" in out
    assert f'pip install -e "{target}[conformance]"' in out
    assert "pytest --plugin=acme" in out
    assert "text_delta" in (target / "src" / "tachikoma_backend_acme" / "_wire.py").read_text()


def test_an_existing_plugin_is_refused_in_one_line_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    existing = tmp_path / "existing"
    (existing / "tachikoma-backend-acme").mkdir(parents=True)
    (existing / "tachikoma-backend-acme" / "keep").write_text("mine")
    before = _tree(tmp_path)
    code, out, err = run("new-plugin", "acme", "--directory", str(existing))
    assert (code, out) == (1, "")
    assert err.startswith("tachikoma: error: ")
    assert "already exists" in err
    assert err.count("\n") == 1
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["new-plugin", "Acme"], "Invalid value for NAME: 'Acme' cannot name a plugin"),
        (["new-plugin", "acme", "--style", "grpc"], "'grpc' is not one of 'openai-sse'"),
        (["new-plugin"], "Missing argument 'NAME'"),
    ],
    ids=["name", "style", "no-name"],
)
def test_cli_usage_errors_exit_2_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], said: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(*argv)
    assert (code, out) == (2, "")
    assert err.startswith("Usage: tachikoma new-plugin [OPTIONS] NAME"), err
    assert said in err
    assert _tree(tmp_path) == []


def test_the_cli_offers_the_scaffold_styles() -> None:
    assert tuple(STYLES) == SCAFFOLD_STYLES
    assert SCAFFOLD_STYLES[0] == DEFAULT_STYLE


def _transcripts(page: Path) -> list[tuple[str, list[str]]]:
    """The page's console blocks running ``tachikoma new-plugin``: (command, output)."""
    found = []
    for block in CONSOLE_BLOCK.findall(page.read_text()):
        command, *output = block.splitlines()
        if command.startswith("$ tachikoma new-plugin"):
            found.append((command[2:], output))
    return found


@pytest.mark.parametrize("page", [GUIDE, CLI_PAGE], ids=lambda page: page.name)
def test_the_docs_show_what_new_plugin_prints(tmp_path: Path, page: Path) -> None:
    transcripts = _transcripts(page)
    assert transcripts, f"{page.name} shows no tachikoma new-plugin transcript"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    for command, shown in transcripts:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == shown, f"$ {command}"


def test_the_guide_shows_the_tree_it_writes(tmp_path: Path) -> None:
    ((command, _),) = _transcripts(GUIDE)
    style = command.split("--style ")[1].split()[0]
    root = new_plugin("acme", style=style, directory=tmp_path)
    (tree,) = [b for b in TEXT_BLOCK.findall(GUIDE.read_text()) if "conformance.yml" in b]
    shown = re.findall(r"[\w./-]+\.(?:py|toml|md|yml|typed)\b", tree)
    names = {Path(path).name for path in _tree(root)}
    assert sorted({Path(path).name for path in shown}) == sorted(names)
