"""The ``tachikoma`` command, with the installed plugins: every command and flag.

Health and retries run the Claude plugin against a local `WireServer` over real TCP:
the one-line reason for a 401, a 529, a refused connection and a stall, and the retry
lines that go to standard error while standard output holds the reply alone.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tachikoma_backends_core.cli import main
from tachikoma_backends_core.hooks import default_hooks, hookimpl
from tachikoma_backends_core.http.wire_server import HOLD, WireServer, closed_port_url, response

TACHIKOMA = Path(sys.executable).with_name("tachikoma")
COMMANDS = ["backends", "complete", "health", "models", "pull", "conformance", "new-plugin"]
KEY = "sk-ant-cli-test-0000000000"
JSON = {"content-type": "application/json"}


class TerminalErr(io.StringIO):
    """Standard error as a terminal: where the status line is drawn."""

    def isatty(self) -> bool:
        return True


def run(*argv: str, stdin: str = "", err: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), err or io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv), out=out, err=err)
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def anthropic_error(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def claude_at(url: str) -> list[str]:
    return ["-o", f"base_url={url}", "-o", f"api_key={KEY}"]


@pytest.fixture
def server() -> Iterator[WireServer]:
    with WireServer() as wire:
        yield wire


# -- the command itself ---------------------------------------------------------------


def test_version() -> None:
    code, out, _ = run("--version")
    version = importlib.metadata.version("tachikoma-backends-core")
    assert (code, out) == (0, f"tachikoma {version}\n")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_describes_itself(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    usage, _, rest = out.partition("\n\n")
    assert usage.startswith(f"Usage: tachikoma {command} "), out
    description = rest.splitlines()[0].strip()
    assert len(description) > 20, f"{command} --help has no description:\n{out}"
    _, listing, _ = run("--help")
    assert re.search(rf"^  {command} +\w", listing, re.MULTILINE), listing


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["complete", "-b", "mock", "--bogus", "Hi"], "No such option '--bogus'"),
        (["complete", "Hi"], "Missing option '-b' / '--backend'"),
        (["complete", "-b", "mock", "-o", "novalue", "Hi"], "'novalue' must look like KEY=VALUE"),
        (["complete", "-b", "mock", ""], "the prompt is empty"),
        (["complete", "-b", "mock", " \n "], "the prompt is empty"),
        (["health", "--timeout", "0"], "Invalid value for '--timeout'"),
        (["backends", "--bogus"], "No such option '--bogus'"),
    ],
    ids=["unknown-option", "no-backend", "option-form", "empty", "blank", "timeout", "backends"],
)
def test_usage_errors_name_the_subcommand_and_exit_2(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"Usage: tachikoma {argv[0]} "), err
    assert f"Try 'tachikoma {argv[0]} --help' for help." in err
    assert message in err


def test_an_unknown_command_and_no_command_are_usage_errors() -> None:
    code, out, err = run("nope")
    assert (code, out) == (2, "")
    assert err.endswith("Error: No such command 'nope'.\n"), err
    code, _, err = run()
    assert code == 2
    assert err.startswith("Usage: tachikoma [OPTIONS] COMMAND [ARGS]..."), err
    assert "  health " in err  # the commands are listed


def test_an_empty_prompt_on_stdin_is_refused() -> None:
    code, _, err = run("complete", "-b", "mock", "-", stdin="\n")
    assert code == 2
    assert "the prompt is empty" in err


# -- backends -------------------------------------------------------------------------


def test_backends_lists_metadata() -> None:
    code, out, err = run("backends")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    at = lines.index("mock         tachikoma-backend-mock 0.1.0")
    assert lines[at + 1 : at + 3] == [
        "             Scripted, in-memory Tachikoma backend for tests and demos.",
        "             contract 4; json_mode, streaming, tool_calling",
    ]
    assert "configured" not in out  # nothing was created


def test_backends_check_creates_each_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    code, out, _ = run("backends", "--check")
    assert code == 0  # not configured is not an error
    assert (
        "             configured: streaming, tool_calling, json_mode; context 100,000, "
        "output 4,096 tokens"
    ) in out.splitlines()
    assert (
        "             not configured: no Anthropic API key: pass api_key=... or set "
        "ANTHROPIC_API_KEY"
    ) in out.splitlines()


def test_backends_json() -> None:
    code, out, _ = run("backends", "--json")
    assert code == 0
    (mock,) = [entry for entry in json.loads(out) if entry["name"] == "mock"]
    assert mock == {
        "name": "mock",
        "distribution": "tachikoma-backend-mock",
        "version": "0.1.0",
        "description": "Scripted, in-memory Tachikoma backend for tests and demos.",
        "contract": 4,
        "capabilities": ["json_mode", "streaming", "tool_calling"],
        "error": None,
    }


def test_backends_check_json() -> None:
    code, out, _ = run("backends", "--check", "--json")
    assert code == 0
    (mock,) = [entry for entry in json.loads(out) if entry["name"] == "mock"]
    assert mock["check"] == {
        "configured": True,
        "description": "Scripted in-memory backend for tests and demos (no network, no key).",
        "reason": None,
        "broken": False,
        "capabilities": ["streaming", "tool_calling", "json_mode"],
        "max_context_tokens": 100_000,
        "max_output_tokens": 4_096,
    }


def test_backends_no_load_is_still_accepted() -> None:
    assert run("backends", "--no-load") == run("backends")


# -- complete -------------------------------------------------------------------------


class RecordRequests:
    def __init__(self) -> None:
        self.prompts: list[str] = []

    @hookimpl
    def tachikoma_request(self, request: Any) -> None:
        self.prompts.append(request.messages[-1].text)


@pytest.fixture
def sent() -> Iterator[RecordRequests]:
    recorder = RecordRequests()
    hooks = default_hooks()
    hooks.register(recorder)
    try:
        yield recorder
    finally:
        hooks.unregister(recorder)


@pytest.mark.parametrize(
    ("argv", "stdin", "expected", "prompt"),
    [
        (["complete", "-b", "mock", "Hi"], "", "Mock response\n", "Hi"),
        (["complete", "-b", "mock", "--no-stream", "Hi"], "", "Mock response\n", "Hi"),
        (["complete", "-b", "mock", "-o", "default_reply=Hello", "Hi"], "", "Hello\n", "Hi"),
        (["complete", "-b", "mock", "-"], "from stdin\n", "Mock response\n", "from stdin\n"),
        (["complete", "-b", "mock"], "piped, no PROMPT", "Mock response\n", "piped, no PROMPT"),
    ],
    ids=["stream", "no-stream", "option", "dash-stdin", "piped-stdin"],
)
def test_complete_prints_the_reply(
    sent: RecordRequests, argv: list[str], stdin: str, expected: str, prompt: str
) -> None:
    code, out, err = run(*argv, stdin=stdin)
    assert (code, out, err) == (0, expected, "")
    assert sent.prompts == [prompt]


def test_complete_verbose_reports_usage_on_stderr() -> None:
    code, out, err = run("complete", "-b", "mock", "-v", "--system", "be brief", "Hi")
    assert code == 0
    assert out == "Mock response\n"
    assert err.strip() == "[mock-model: finish=stop, tokens in=100 out=50]"


@pytest.mark.parametrize("stream", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_complete_json_prints_the_whole_response_only(stream: list[str]) -> None:
    code, out, err = run("complete", "-b", "mock", "--json", *stream, "Hi")
    assert (code, err) == (0, "")
    response = json.loads(out)  # one document, no streamed text around it
    assert response["content"] == "Mock response"
    assert response["finish_reason"] == "stop"
    assert response["usage"]["total_tokens"] == 150


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["complete", "-b", "nope", "Hi"], "no backend plugin named 'nope'; installed plugins:"),
        (["complete", "-b", "mock", "--temperature", "7", "Hi"], "field=temperature"),
        (["complete", "-b", "mock", "--max-tokens", "99999", "Hi"], "field=max_tokens"),
        (["complete", "-b", "mock", "-o", "bogus=1", "Hi"], "field=bogus"),
        (["complete", "-b", "mock", "-m", "gpt-0", "Hi"], "model 'gpt-0' is not available"),
    ],
    ids=["unknown-backend", "temperature", "max-tokens", "unknown-option", "model"],
)
def test_failures_print_one_line_and_exit_1(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("tachikoma: error: ")
    assert message in err


def test_a_status_line_shows_on_a_terminal_until_the_first_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    err = TerminalErr()
    code, out, shown = run("complete", "-b", "mock", "-o", "chunk_delay=0.3", "Hi", err=err)
    assert (code, out) == (0, "Mock response\n")  # stdout never sees the status line
    assert "waiting for mock" in shown
    assert shown.endswith("\r\x1b[2K"), "the status line must be erased"


def test_no_status_line_on_a_dumb_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    code, out, err = run("complete", "-b", "mock", "-o", "chunk_delay=0.3", "Hi", err=TerminalErr())
    assert (code, out, err) == (0, "Mock response\n", "")


def test_no_status_line_when_stderr_is_not_a_terminal() -> None:
    code, out, err = run("complete", "-b", "mock", "-o", "chunk_delay=0.3", "Hi")
    assert (code, out, err) == (0, "Mock response\n", "")


RETRY_LINE = re.compile(
    r"^tachikoma: retrying in (\d+\.\d) s \(attempt (\d) of 3\): (\w+Error): ", re.MULTILINE
)


@pytest.mark.parametrize("stream", [[], ["--no-stream"]], ids=["stream", "no-stream"])
def test_retries_show_on_stderr_while_stdout_holds_the_reply(
    server: WireServer, stream: list[str]
) -> None:
    server.answer(
        response(429, {**JSON, "retry-after": "0.1"}, anthropic_error("rate_limit_error", "slow"))
    )
    server.answer(response(529, JSON, anthropic_error("overloaded_error", "Overloaded")))
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1},
    }  # fmt: skip
    if stream:
        server.answer(response(200, JSON, json.dumps(message).encode()))
    else:
        server.answer(response(200, {"content-type": "text/event-stream"}, _sse(message)))
    code, out, err = run("complete", "-b", "claude", *claude_at(server.url), *stream, "Hi")
    assert (code, out) == (0, "Hello\n"), err
    retries = RETRY_LINE.findall(err)
    assert [(attempt, kind) for _, attempt, kind in retries] == [
        ("2", "RateLimitError"),
        ("3", "OverloadedError"),
    ], err
    assert retries[0][0] == "0.1", "the provider's retry-after is the wait shown"
    assert len(err.splitlines()) == 2, err


def _sse(message: dict[str, Any]) -> bytes:
    start = {**message, "content": [], "usage": {"input_tokens": 3, "output_tokens": 0}}
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hello"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events)


# -- health ---------------------------------------------------------------------------


def test_health_reports_each_named_backend() -> None:
    code, out, _ = run("health", "mock")
    assert (code, out) == (0, "mock         ok\n")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            response(401, {**JSON, "request-id": "req_1"},
                     anthropic_error("authentication_error", "invalid x-api-key")),
            "AuthenticationError: invalid x-api-key (check the API key (api_key or "
            "ANTHROPIC_API_KEY)) (provider=claude, status_code=401, "
            "provider_error_type=authentication_error, request_id=req_1)",
        ),
        (
            response(529, JSON, anthropic_error("overloaded_error", "Overloaded")),
            "OverloadedError: Overloaded (Anthropic's API is overloaded for everyone; retry "
            "later) (provider=claude, status_code=529, provider_error_type=overloaded_error)",
        ),
    ],
    ids=["401", "529"],
)  # fmt: skip
def test_health_says_why_in_one_line(server: WireServer, answer: bytes, reason: str) -> None:
    server.answer(answer)
    code, out, err = run("health", "claude", *claude_at(server.url))
    assert (code, err) == (1, "")
    assert out == f"claude       unhealthy: {reason}\n"


def test_health_names_a_refused_connection() -> None:
    code, out, _ = run("health", "claude", *claude_at(closed_port_url()))
    assert code == 1
    assert out == (
        "claude       unhealthy: NetworkError: network failure calling Claude: ConnectError: "
        "All connection attempts failed; check base_url and connectivity (provider=claude)\n"
    )


def test_health_timeout_holds_for_every_backend_at_once(server: WireServer) -> None:
    server.answer(HOLD)
    server.answer(HOLD)
    timeout = 1.5  # one after the other would take 3 s: room for a slow machine
    started = time.monotonic()
    code, out, _ = run(
        "health", "claude", "openai", "--timeout", str(timeout), "-o", f"base_url={server.url}",
        "-o", f"api_key={KEY}",
    )  # fmt: skip
    took = time.monotonic() - started
    assert code == 1
    assert out.splitlines() == [
        f"{name:<12} unhealthy: BackendTimeoutError: no answer within 1.5 s; raise --timeout to "
        f"wait longer (provider={name})"
        for name in ("claude", "openai")
    ]
    # Both hung: one after the other would take twice the timeout; Claude's own read
    # timeout (600 s) is not what ended them.
    assert took < 2 * timeout, f"took {took:.2f} s: the checks did not run concurrently"


def test_health_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    code, out, _ = run("health", "claude", "mock", "--json")
    assert code == 1
    by_name = {entry["name"]: entry for entry in json.loads(out)}
    assert by_name["mock"]["healthy"] is True
    assert by_name["mock"]["reason"] == "ok"
    assert by_name["claude"]["healthy"] is False
    assert by_name["claude"]["error"]["type"] == "ConfigurationError"  # no key given


def test_health_options_go_to_every_backend(server: WireServer) -> None:
    server.answer(response(529, JSON, anthropic_error("overloaded_error", "Overloaded")))
    code, out, _ = run("health", "claude", "--json", *claude_at(server.url))
    (entry,) = json.loads(out)
    assert code == 1
    assert entry["error"] == {
        "type": "OverloadedError",
        "message": "Overloaded (Anthropic's API is overloaded for everyone; retry later)",
        "status_code": 529,
        "retryable": True,
    }


# -- the console script and conformance ----------------------------------------------


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
