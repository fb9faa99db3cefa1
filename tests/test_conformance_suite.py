"""``pytest --plugin=...`` from outside the repo: the suite, its errors, and its inertness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from tachikoma_backends_core import registry


def run_pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_plugin_all_from_an_empty_directory_runs_and_passes(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = run_pytest(tmp_path, "--plugin=all", "-v", f"--conformance-report={report_path}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_basic_completion[mock" in result.stdout
    assert "test_request_error_maps_to_its_type[mock-" in result.stdout
    assert "Tachikoma conformance" in result.stdout  # the summary table
    assert "mock          errors" in result.stdout

    # The report of a run over every installed plugin validates against core's schema.
    report = json.loads(report_path.read_text())
    schema = json.loads(
        (resources.files("tachikoma_backends_core.conformance") / "report.schema.json").read_text()
    )
    jsonschema.Draft202012Validator(schema).validate(report)
    installed = {info.name for info in registry.available()}
    assert {entry["name"] for entry in report["plugins"]} == installed
    for entry in report["plugins"]:
        assert entry["summary"]["failed"] == 0, entry["name"]
        assert entry["summary"]["passed"] > 60, entry["name"]


def test_unknown_plugin_fails_at_once_listing_the_known_ones(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "--plugin=nope")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown backend plugin(s): nope; known plugins: " in result.stderr
    known = result.stderr.split("known plugins: ", 1)[1].split()[0:10]
    assert "mock" in [name.strip(",") for name in known]


def test_live_without_a_live_service_skips_with_the_reason(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "--plugin=mock", "--live", "-rs")
    # Nothing ran live: the skips say why, and the run fails (--live-allow-skip allows it).
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "MockHarness does not support --live" in result.stdout
    assert "scripted trait: not run with --live" in result.stdout
    assert " passed" not in result.stdout.splitlines()[-1]


def test_without_plugin_the_suite_is_inert(tmp_path: Path) -> None:
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True is not False\n")
    result = run_pytest(tmp_path, "--fixtures", "-q")
    assert "tachikoma_harness" not in result.stdout
    collected = run_pytest(tmp_path, "--collect-only", "-q")
    assert collected.stdout.splitlines()[0] == "test_own.py::test_own"
    assert "1 test collected" in collected.stdout
    probe = (
        "import sys, pytest\n"
        "pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider'])\n"
        "loaded = [m for m in sys.modules if m.startswith('tachikoma_backends_core')]\n"
        "print('LOADED', sorted(loaded))\n"
    )
    modules = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    line = next(x for x in modules.stdout.splitlines() if x.startswith("LOADED"))
    # Only the entry module and its (import-free) package: no pydantic-backed module.
    assert line == (
        "LOADED ['tachikoma_backends_core', 'tachikoma_backends_core.conformance', "
        "'tachikoma_backends_core.conformance.plugin']"
    )


def test_the_report_lists_only_the_traits_that_ran(tmp_path: Path) -> None:
    report = tmp_path / "out" / "report.json"
    result = run_pytest(
        tmp_path, "--plugin=mock", "-k", "basic_completion", f"--conformance-report={report}"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (mock,) = json.loads(report.read_text())["plugins"]
    assert [trait["trait"] for trait in mock["traits"]] == ["test_basic_completion"] * len(
        mock["traits"]
    )
    assert mock["summary"] == {
        "passed": len(mock["traits"]),
        "failed": 0,
        "xfailed": 0,
        "skipped": 0,
    }
    assert f"conformance report written to {report}" in result.stdout


def test_the_report_option_needs_plugins(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "--conformance-report=x.json")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--conformance-report needs --plugin" in result.stderr


def test_socket_mode_runs_from_an_empty_directory_as_documented(tmp_path: Path) -> None:
    # The command docs/conformance.md prints, exactly; outside this repository, so on
    # asyncio alone, as a third party runs it.
    page = (Path(__file__).resolve().parents[1] / "docs" / "conformance.md").read_text()
    command = "pytest --plugin=claude --sockets -m tachikoma_area -k sockets"
    assert f"$ {command}\n" in page
    result = run_pytest(tmp_path, *command.split()[1:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("claude "))
    area, passed, failed = row.split()[1:4]
    assert area == "sockets"
    assert int(failed) == 0
    assert int(passed) >= 60, row  # every fault on both call kinds, and the lifecycle traits


def test_the_sockets_option_needs_plugins(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "--sockets")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--sockets needs --plugin (names or 'all')" in result.stderr


def test_live_without_credentials_fails_the_run_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "live" CI job with no key must not go green having run nothing."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = run_pytest(tmp_path, "--plugin=claude", "--live", "-q")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "--live ran no live trait" in result.stdout
    assert "pass --live-allow-skip to allow it" in result.stdout
    allowed = run_pytest(tmp_path, "--plugin=claude", "--live", "--live-allow-skip", "-q")
    assert allowed.returncode == pytest.ExitCode.OK, allowed.stdout + allowed.stderr


def test_every_trait_assertion_says_what_the_plugin_did_wrong() -> None:
    """A bare ``assert`` fails with a tuple diff, truncated, that names nothing."""
    import ast

    from tachikoma_backends_core import conformance

    folder = Path(conformance.__file__).parent
    bare = [
        f"{module.name}:{node.lineno}"
        for module in sorted(folder.glob("traits*.py"))
        for node in ast.walk(ast.parse(module.read_text()))
        if isinstance(node, ast.Assert) and node.msg is None
    ]
    assert bare == []
