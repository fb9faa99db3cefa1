"""Issue 16's first must-show: ``tachikoma new-plugin acme`` starts green, in every style.

For each style, the real ``tachikoma`` console script of a scratch virtual environment
(core installed there from this checkout, as a wheel: the templates must ship in it)
generates ``tachikoma-backend-acme`` in a temporary directory; the result is installed
with its ``[conformance]`` extra into that environment, and then, unchanged:

* ``pytest --plugin=acme --sockets`` runs the whole conformance suite at the current
  contract, socket mode included, and passes, with the counts of a tool-capable
  streaming plugin (not "no tests ran");
* the plugin's own tests pass;
* mypy --strict (the development environment's) finds nothing in it (ruff: test_scaffold.py).

One scratch environment serves the three styles (each plugin replaces the one before):
building it is most of the time this module takes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tachikoma_backends_core.manifest import CONTRACT_VERSION
from tachikoma_backends_core.scaffold import STYLES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
DEV_BIN = Path(sys.executable).parent
PIP_TIMEOUT = 300
RUN_TIMEOUT = 120
#: The traits a streaming, tool-calling plugin without vision or JSON mode skips, and why.
EXPECTED_SKIPS = {
    "test_declared_capability_works": "does not declare",  # json_mode, vision
    "test_an_image_keeps_its_media_type": "does not declare vision",
    "test_an_image_inside_a_tool_result_is_sent": "does not declare vision",
    "test_finish_reason_is_reported": "cannot report stop_sequence",
    "test_live_round_trip": "runs only with --live",
}


class Scratch:
    """A virtual environment with core (from this checkout), pytest-httpx, psutil (for
    --sockets) and hatchling (to build the plugins without build isolation)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "venv" / "bin"
        dropped = {"PYTHONPATH", "PYTHONHOME", "TACHIKOMA_PLUGINS", "VIRTUAL_ENV"}
        self.env = {key: value for key, value in os.environ.items() if key not in dropped}
        self.env["PATH"] = f"{self.bin}{os.pathsep}{os.environ['PATH']}"

    def run(self, *argv: str | Path, cwd: Path, timeout: float = RUN_TIMEOUT) -> str:
        result = self.call(*argv, cwd=cwd, timeout=timeout)
        assert result.returncode == 0, f"{argv}: exit {result.returncode}\n{result.stdout}"
        return result.stdout

    def call(
        self, *argv: str | Path, cwd: Path, timeout: float = RUN_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(arg) for arg in argv],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Scratch:
    root = tmp_path_factory.mktemp("scaffold")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    scratch = Scratch(root)
    pip = (scratch.bin / "pip", "install", "--quiet", "--disable-pip-version-check")
    scratch.run(
        *pip,
        REPO / "core",
        "pytest-httpx>=0.34",
        "psutil",
        "hatchling",
        cwd=root,
        timeout=PIP_TIMEOUT,
    )
    return scratch


@pytest.mark.parametrize("style", list(STYLES))
def test_a_new_plugin_passes_the_suite_as_generated(scratch: Scratch, style: str) -> None:
    work = scratch.root / style
    work.mkdir()
    printed = scratch.run(
        scratch.bin / "tachikoma", "new-plugin", "acme", "--style", style, cwd=work
    )
    assert printed.startswith("wrote ./tachikoma-backend-acme\n"), printed
    plugin = work / "tachikoma-backend-acme"

    # Installed as a distribution, with its extra (already satisfied: no download).
    scratch.call(scratch.bin / "pip", "uninstall", "--yes", "tachikoma-backend-acme", cwd=work)
    scratch.run(
        *(scratch.bin / "pip", "install", "--quiet", "--disable-pip-version-check"),
        "--no-build-isolation",
        f"{plugin}[conformance]",
        cwd=work,
        timeout=PIP_TIMEOUT,
    )
    listed = scratch.run(scratch.bin / "tachikoma", "backends", "--no-load", cwd=work)
    assert f"contract {CONTRACT_VERSION}; streaming, tool_calling" in listed, listed

    # The conformance suite, from an empty directory, as a plugin author runs it.
    empty = work / "empty"
    empty.mkdir()
    report_path = work / "conformance.json"
    suite = scratch.call(
        scratch.bin / "pytest",
        "--plugin=acme",
        "--sockets",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--conformance-report={report_path}",
        cwd=empty,
    )
    assert suite.returncode == 0, suite.stdout
    summary = re.search(r"^(\d+) passed, (\d+) skipped in ", suite.stdout, re.MULTILINE)
    assert summary is not None, suite.stdout
    passed, skipped = int(summary[1]), int(summary[2])
    assert passed >= 150, suite.stdout
    assert skipped == 8, suite.stdout
    (entry,) = json.loads(report_path.read_text())["plugins"]
    assert entry["contract"] == CONTRACT_VERSION
    outcomes = Counter(record["outcome"] for record in entry["traits"])
    assert outcomes == {"passed": passed, "skipped": skipped}, outcomes
    skips = [record for record in entry["traits"] if record["outcome"] == "skipped"]
    for record in skips:
        assert record["trait"] in EXPECTED_SKIPS, record
    ran = {r["trait"] for r in entry["traits"] if r["outcome"] == "passed"}
    assert {"test_streamed_tool_call_arguments_reassemble", "test_tool_choice_is_sent"} <= ran
    assert "test_fault_over_a_real_socket" in ran

    # Its own tests, including a streamed tool call.
    own = scratch.run(scratch.bin / "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=plugin)
    assert re.search(r"^5 passed in ", own, re.MULTILINE), own

    # mypy --strict and ruff, with the development environment's versions and settings.
    sources = ["src/tachikoma_backend_acme", "tests"]
    typing = subprocess.run(
        [DEV_BIN / "mypy", "--strict", "--cache-dir", str(work / ".mypy_cache"), *sources],
        cwd=plugin,
        env={**scratch.env, "MYPYPATH": "src"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert typing.returncode == 0, typing.stdout + typing.stderr
