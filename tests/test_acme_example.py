"""The plugin guide's Acme example, assembled from the docs and run exactly as printed.

Every fenced block with a ``title="path"`` on the two pages that build Acme
(``docs/plugins/writing-a-plugin.md`` and ``docs/conformance.md``) is a file of the
``tachikoma-backend-acme`` distribution. The test writes them out, installs core from
this checkout into a fresh virtual environment (the one step the pages give in words),
then runs the pages' console blocks command by command, in order, as a reader would:
each command's printed output must match what the page shows, timings aside, and the
conformance run must end with the summary table and counts of "What the run shows".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "plugins" / "writing-a-plugin.md"
CONFORMANCE = REPO / "docs" / "conformance.md"
PACKAGE = "tachikoma-backend-acme"
FILE_BLOCK = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```', re.DOTALL | re.MULTILINE)
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```", re.DOTALL | re.MULTILINE)
TEXT_BLOCK = re.compile(r"^```text\n(.*?)^```", re.DOTALL | re.MULTILINE)
TIMING = re.compile(r" in \d+\.\d+s\b")
COMMAND_TIMEOUT = 600


def _files() -> dict[str, str]:
    """Path inside the distribution -> content, from every titled block of both pages."""
    files: dict[str, str] = {}
    for page in (GUIDE, CONFORMANCE):
        for path, content in FILE_BLOCK.findall(page.read_text()):
            assert path not in files, f"{path} is given twice"
            files[path] = content
    return files


def _console_block(page: Path, containing: str) -> list[tuple[str, list[str]]]:
    """The console block of ``page`` holding ``containing``: ``(command, output lines)``."""
    (block,) = [b for b in CONSOLE_BLOCK.findall(page.read_text()) if containing in b]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def _without_timings(lines: list[str]) -> list[str]:
    return [TIMING.sub("", line).rstrip() for line in lines]


class Reader:
    """Runs commands in a shell as a reader would: one after the other, cd carrying over."""

    def __init__(self, venv: Path, cwd: Path) -> None:
        self.cwd = cwd
        self.state = cwd / ".reader-cwd"
        dropped = {"PYTHONPATH", "PYTHONHOME", "TACHIKOMA_PLUGINS", "ACME_API_KEY"}
        self.env = {k: v for k, v in os.environ.items() if k not in dropped}
        self.env["VIRTUAL_ENV"] = str(venv)
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"

    def run(self, command: str) -> list[str]:
        script = f'{command}\nstatus=$?\npwd > "{self.state}"\nexit $status\n'
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, (
            f"$ {command}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        self.cwd = Path(self.state.read_text().strip())
        return result.stdout.splitlines()


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Reader:
    root = tmp_path_factory.mktemp("acme")
    package = root / "work" / PACKAGE
    for path, content in _files().items():
        target = package / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (package / "src" / "tachikoma_backend_acme" / "py.typed").write_text("")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    reader = Reader(venv, root / "work")
    # "Core is not on a package index yet: install it from a checkout."
    reader.run(f"pip install --quiet --disable-pip-version-check {REPO / 'core'}")
    return reader


def test_the_pages_give_every_file_of_the_distribution() -> None:
    assert sorted(_files()) == [
        "pyproject.toml",
        "src/tachikoma_backend_acme/__init__.py",
        "src/tachikoma_backend_acme/_backend.py",
        "src/tachikoma_backend_acme/_plugin.py",
        "src/tachikoma_backend_acme/_wire.py",
        "src/tachikoma_backend_acme/harness.py",
        "tests/test_acme.py",
    ]


def test_installing_and_checking_it_prints_what_the_guide_shows(reader: Reader) -> None:
    for command, shown in _console_block(GUIDE, f'pip install "./{PACKAGE}[conformance]"'):
        printed = reader.run(command)
        if command.startswith("pip install"):
            continue  # pip's progress lines are not part of what the page shows
        assert _without_timings(printed) == _without_timings(shown), f"$ {command}"


def test_the_conformance_run_passes_as_the_page_shows(reader: Reader) -> None:
    steps = _console_block(CONFORMANCE, "pytest --plugin=acme -q -rs")
    for command, _ in steps[:-1]:
        reader.run(command)
    command, _ = steps[-1]
    assert command.startswith("pytest --plugin=acme")
    printed = reader.run(command)
    (shown,) = [b for b in TEXT_BLOCK.findall(CONFORMANCE.read_text()) if "acme          " in b]
    shown_lines = shown.splitlines()
    table = [line for line in printed if line.startswith(("plugin        area", "acme "))]
    assert table == shown_lines[:-1], "\n".join(printed)
    assert _without_timings(printed[-1:]) == _without_timings(shown_lines[-1:])
    assert " failed" not in printed[-1]
