"""Every ``tachikoma`` transcript in the README and the docs equals the real output.

A ``console`` block is a transcript: ``$ command`` lines, each followed by what it
prints (standard output and standard error, as a terminal shows them). Each block whose
commands are ``tachikoma`` commands (or ``make demo``) is run here, command by command,
as printed, in a shell with no API key, no ``TACHIKOMA_*`` setting and no endpoints
file, with the four plugins of this repository installed; the output must equal the
page's, but for timings (``in 2.35s``) and a ``...`` line, which stands for any lines.

Pages that install only some plugins say so in `PLUGINS_ON_PAGE`, which the run mimics
with ``TACHIKOMA_PLUGINS``. A transcript that cannot run offline (a real provider, a
broken install) is listed in `NOT_RUN` with the reason, and the test checks that each
listed command is still on its page. The plugin guide's Acme transcripts are run by
``test_acme_example.py`` instead, in a venv where Acme is installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
ACME_PAGES = {"docs/plugins/writing-a-plugin.md", "docs/conformance.md"}
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```", re.DOTALL | re.MULTILINE)
TIMING = re.compile(r" in \d+\.\d+s\b")
RUNS = re.compile(r"^(?:[A-Z_]+=\S+ )*(?:tachikoma\b|echo .*\| tachikoma\b|make demo$)")

#: What a page's reader has installed, when it is less than this repository's plugins.
PLUGINS_ON_PAGE = {"docs/getting-started.md": "mock"}

#: ``(page, command)``: transcripts not run here, and why.
NOT_RUN = {
    ("docs/plugins/claude.md", 'tachikoma complete -b claude "Say hi in one word."'): (
        "a real Anthropic key and the network"
    ),
    ("docs/plugins/openai.md", 'tachikoma complete -b openai "Say hi in one word."'): (
        "a real OpenAI key and the network"
    ),
    ("docs/plugins/openai.md", 'tachikoma complete -b openai -o model=my-gpt-deployment "Hi"'): (
        "an Azure OpenAI deployment"
    ),
    ("docs/plugins/ollama.md", "tachikoma pull llama3.2"): "a running Ollama and the network",
    ("docs/plugins/http-kit.md", 'tachikoma complete -b claude "Hi"'): (
        "a corporate proxy and a real Anthropic key"
    ),
    ("docs/plugins/registry.md", "tachikoma backends"): (
        "a broken plugin and a duplicate installed (core/tests/test_registry.py builds both)"
    ),
}


@dataclass(frozen=True)
class Step:
    command: str
    expected: list[str]


@dataclass(frozen=True)
class Transcript:
    page: str
    steps: list[Step]

    @property
    def id(self) -> str:
        return f"{self.page}: {self.steps[0].command}"


def _transcripts(page: Path) -> list[Transcript]:
    found = []
    for block in CONSOLE_BLOCK.findall(page.read_text()):
        steps: list[Step] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:], []))
            elif steps:
                steps[-1].expected.append(line)
        if steps:
            found.append(Transcript(page.relative_to(REPO).as_posix(), steps))
    return found


def _runnable(transcript: Transcript) -> bool:
    if transcript.page in ACME_PAGES:
        return False
    if any((transcript.page, step.command) in NOT_RUN for step in transcript.steps):
        return False
    return all(RUNS.match(step.command) for step in transcript.steps)


ALL = [transcript for page in PAGES for transcript in _transcripts(page)]
RUNNABLE = [transcript for transcript in ALL if _runnable(transcript)]


def _environment(page: str, config_home: Path) -> dict[str, str]:
    dropped = ("_API_KEY", "TACHIKOMA_", "OLLAMA_", "MAKE", "MFLAGS", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not any(part in k for part in dropped)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["XDG_CONFIG_HOME"] = str(config_home)  # no endpoints file
    env["COLUMNS"] = "80"
    if page in PLUGINS_ON_PAGE:
        env["TACHIKOMA_PLUGINS"] = PLUGINS_ON_PAGE[page]
    return env


def _matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line; a ``...`` line in ``expected`` stands for any lines (or none)."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(_matches(expected[1:], actual[skip:]) for skip in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and _matches(expected[1:], actual[1:])


def _normalised(lines: list[str]) -> list[str]:
    return [TIMING.sub("", line).rstrip() for line in lines]


def test_transcripts_are_found() -> None:
    # The collection itself: a regex slip must not leave the docs unchecked.
    assert len(RUNNABLE) >= 8, [t.id for t in RUNNABLE]
    pages = {transcript.page for transcript in RUNNABLE}
    assert {"docs/cli.md", "docs/getting-started.md", "docs/index.md"} <= pages


def test_every_command_not_run_is_still_on_its_page() -> None:
    commands = {(t.page, step.command) for t in ALL for step in t.steps}
    assert set(NOT_RUN) <= commands, sorted(set(NOT_RUN) - commands)


@pytest.mark.parametrize("transcript", RUNNABLE, ids=lambda transcript: transcript.id)
def test_transcript_equals_the_real_output(transcript: Transcript, tmp_path: Path) -> None:
    env = _environment(transcript.page, tmp_path / "config")
    cwd = REPO if transcript.steps[0].command == "make demo" else tmp_path
    for step in transcript.steps:
        result = subprocess.run(
            ["bash", "-c", f"{step.command} 2>&1"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        actual = _normalised(result.stdout.splitlines())
        expected = _normalised(step.expected)
        assert _matches(expected, actual), (
            f"{transcript.page}: $ {step.command}\nthe page shows:\n"
            + "\n".join(expected)
            + f"\nit printed (exit {result.returncode}):\n"
            + "\n".join(actual)
        )
