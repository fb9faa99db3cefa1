"""The ``tachikoma`` command with the installed mock plugin."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from tachikoma_backends_core.cli import main

TACHIKOMA = Path(sys.executable).with_name("tachikoma")


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv), out=out, err=err)
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def test_backends_lists_mock_with_version_and_capabilities() -> None:
    code, out, _ = run("backends")
    assert code == 0
    assert "mock" in out
    assert "tachikoma-backend-mock 0.1.0" in out
    assert "streaming, tool_calling, json_mode" in out
    assert "context 100,000" in out


def test_backends_no_load_reads_metadata_only() -> None:
    code, out, _ = run("backends", "--no-load")
    assert code == 0
    assert "tachikoma-backend-mock" in out
    # The manifest's declaration, not the loaded backend's info (which adds token limits).
    assert "contract 3; json_mode, streaming, tool_calling" in out
    assert "context 100,000" not in out


@pytest.mark.parametrize(
    ("argv", "stdin", "expected"),
    [
        (["complete", "-b", "mock", "Hi"], "", "Mock response\n"),
        (["complete", "-b", "mock", "--no-stream", "Hi"], "", "Mock response\n"),
        (["complete", "-b", "mock", "-o", "default_reply=Hello there", "Hi"], "", "Hello there\n"),
        (["complete", "-b", "mock", "-"], "prompt from stdin", "Mock response\n"),
    ],
    ids=["stream", "no-stream", "option", "stdin"],
)
def test_complete_prints_the_reply(argv: list[str], stdin: str, expected: str) -> None:
    code, out, err = run(*argv, stdin=stdin)
    assert (code, out, err) == (0, expected, "")


def test_complete_verbose_reports_usage_on_stderr() -> None:
    code, out, err = run("complete", "-b", "mock", "-v", "--system", "be brief", "Hi")
    assert code == 0
    assert out == "Mock response\n"
    assert err.strip() == "[mock-model: finish=stop, tokens in=100 out=50]"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["complete", "-b", "nope", "Hi"], "no backend plugin named 'nope'; installed plugins:"),
        (["complete", "-b", "mock", "--temperature", "7", "Hi"], "field=temperature"),
        (["complete", "-b", "mock", "--max-tokens", "99999", "Hi"], "field=max_tokens"),
        (["complete", "-b", "mock", "-o", "bogus=1", "Hi"], "field=bogus"),
        (["complete", "-b", "mock", "-o", "novalue", "Hi"], "must look like KEY=VALUE"),
        (["complete", "-b", "mock", "-m", "gpt-0", "Hi"], "model 'gpt-0' is not available"),
    ],
    ids=["unknown-backend", "temperature", "max-tokens", "unknown-option", "option-form", "model"],
)
def test_failures_print_one_line_and_exit_non_zero(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("tachikoma: error: ")
    assert message in err


def test_health_reports_each_backend() -> None:
    code, out, _ = run("health", "-b", "mock")
    assert (code, out.split()) == (0, ["mock", "ok"])


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as raised:
        run("complete", "Hi")  # no -b
    assert raised.value.code == 2


def test_console_script_streams_a_completion() -> None:
    result = subprocess.run(
        [str(TACHIKOMA), "complete", "-b", "mock", "Hi"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "Mock response\n"), result.stderr


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (["conformance", "--plugin", "mock"], 0, "Tachikoma conformance"),
        (["conformance", "--plugin", "nope"], 4, "unknown backend plugin(s): nope; known plugins:"),
    ],
    ids=["mock", "unknown"],
)
def test_conformance_runs_the_suite(
    tmp_path: Path, argv: list[str], code: int, expected: str
) -> None:
    result = subprocess.run(
        [str(TACHIKOMA), *argv, "--", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert expected in result.stdout + result.stderr
