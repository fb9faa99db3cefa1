"""A third-party plugin, built and installed like any other, is checked by the suite.

The ``parrot`` distribution (its own pyproject, entry point and harness) is written to a
temp dir and installed with core and pytest into a scratch venv. ``pytest --plugin=all``
passes for the correct plugin and fails, saying what is wrong, for two deliberately wrong
variants (chosen at run time with ``PARROT_BUG``): one drops the usage from the last
stream chunk, one maps a 429 to a generic server error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[1]

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "tachikoma-backend-parrot"
version = "1.2.3"
requires-python = ">=3.10"
dependencies = ["tachikoma-backends-core"]

[project.entry-points."tachikoma.backends"]
parrot = "parrot_backend:plugin"

[tool.hatch.build.targets.wheel]
packages = ["parrot_backend"]
"""

PLUGIN = '''\
"""An in-memory "provider" and its Tachikoma plugin and harness, as a third party writes."""
import os
from collections import deque

from tachikoma_backends_core import (
    Backend, BackendCapabilities, BackendInfo, BackendPlugin, CompletionChunk,
    CompletionResponse, CompletionStream, FinishReason, InvalidRequestError, PluginConfig,
    RateLimitError, ServerError, StreamProtocolError, ToolCallDelta,
)
from tachikoma_backends_core import errors
from tachikoma_backends_core.conformance.harness import (
    EXPECTED_ERRORS, ConformanceHarness, ErrorKind, SentRequest,
)

BUG = os.environ.get("PARROT_BUG", "")
MAX_OUTPUT = 100


class Service:
    """The scripted provider: answers in order, remembers what it was sent."""

    def __init__(self):
        self.answers = deque()
        self.sent = []
        self.healthy = True

    def take(self, request, stream):
        self.sent.append((request, stream))
        answer = self.answers.popleft()
        if isinstance(answer, tuple) and answer[0] == "http-error":
            _, status, kind, retry_after = answer
            if status == 429 and BUG != "generic-429":
                raise RateLimitError("slow down", retry_after=retry_after, status_code=429)
            error_type = EXPECTED_ERRORS[kind].error_type if status != 429 else ServerError
            raise error_type(f"provider said {status}", status_code=status)
        return answer


class ParrotBackend(Backend):
    def __init__(self, service):
        self.service = service

    @property
    def info(self):
        return BackendInfo(
            name="parrot", version="1.2.3", default_model="parrot-1",
            available_models=["parrot-1"],
            capabilities=BackendCapabilities(
                streaming=True, tool_calling=True, vision=False, json_mode=False,
                max_context_tokens=1000, max_output_tokens=MAX_OUTPUT,
            ),
        )

    def _check(self, request):
        if request.max_tokens is not None and request.max_tokens > MAX_OUTPUT:
            raise InvalidRequestError("max_tokens too large", field="max_tokens")

    async def complete(self, request):
        self._check(request)
        reply = self.service.take(request, stream=False)
        if isinstance(reply, str):
            raise StreamProtocolError("broken body")
        return CompletionResponse(
            content=reply.text, tool_calls=list(reply.tool_calls),
            finish_reason=reply.effective_finish_reason, usage=reply.usage, model="parrot-1",
        )

    async def complete_stream(self, request):
        self._check(request)
        reply = self.service.take(request, stream=True)
        return CompletionStream(self._chunks(reply), model="parrot-1", provider="parrot")

    async def _chunks(self, reply):
        if isinstance(reply, str):  # "malformed" or "cut"
            yield CompletionChunk.text("partial ")
            if reply == "malformed":
                raise StreamProtocolError("garbage event")
            return
        for word in reply.text.split(" "):
            yield CompletionChunk.text(word + " " if word != reply.text.split(" ")[-1] else word)
        for i, call in enumerate(reply.tool_calls):
            yield CompletionChunk(tool_call_deltas=[ToolCallDelta(i, call.id, call.name)])
            half = len(call.arguments) // 2
            for piece in (call.arguments[:half], call.arguments[half:]):
                yield CompletionChunk(tool_call_deltas=[ToolCallDelta(i, arguments_delta=piece)])
        usage = None if BUG == "drop-usage" else reply.usage
        yield CompletionChunk(usage=usage, finish_reason=reply.effective_finish_reason)

    async def health_check(self):
        return self.service.healthy


class ParrotConfig(PluginConfig):
    pass


class ParrotHarness(ConformanceHarness):
    supports_live = True
    live_environment = ("PARROT_API_KEY",)

    def create_live_backend(self):
        return ParrotBackend(Service())

    def create_backend(self, **config):
        self.service = Service()
        return ParrotBackend(self.service)

    def script_reply(self, reply):
        self.service.answers.append(reply)

    def script_failure(self, failure):
        if failure.kind is ErrorKind.MALFORMED_STREAM:
            self.service.answers.append("malformed")
        elif failure.kind is ErrorKind.STREAM_CUT:
            self.service.answers.append("cut")
        else:
            status = 429 if failure.kind is ErrorKind.RATE_LIMIT else 500
            self.service.answers.append(("http-error", status, failure.kind, failure.retry_after))

    def sent_requests(self):
        return [
            SentRequest(
                messages=request.messages, tools=[t.name for t in request.tools],
                max_tokens=request.max_tokens, model=request.model, stream=stream,
            )
            for request, stream in self.service.sent
        ]

    def script_unhealthy(self):
        self.service.healthy = False


plugin = BackendPlugin(
    name="parrot",
    config_model=ParrotConfig,
    factory=lambda config: ParrotBackend(Service()),
    harness="parrot_backend:ParrotHarness",
)
'''


@pytest.fixture(scope="module")
def scratch_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("third-party")
    source = root / "parrot"
    (source / "parrot_backend").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "parrot_backend" / "__init__.py").write_text(PLUGIN)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    python = root / "venv" / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run(
        [*install, str(REPO / "core"), str(source), "pytest"],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return python


def run_suite(
    python: Path, tmp_path: Path, bug: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("PARROT_API_KEY", None)
    env["PARROT_BUG"] = bug
    return subprocess.run(
        [str(python), "-m", "pytest", "--plugin=all", "-p", "no:cacheprovider", "-q", *extra],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip


def test_the_correct_plugin_passes_the_suite(scratch_python: Path, tmp_path: Path) -> None:
    result = run_suite(scratch_python, tmp_path, bug="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "parrot        errors" in result.stdout
    assert " passed" in result.stdout.splitlines()[-1]


@pytest.mark.parametrize(
    ("bug", "failing_trait", "message"),
    [
        ("drop-usage", "test_streaming_text[parrot", "the last chunk must carry the usage"),
        (
            "generic-429",
            "test_request_error_maps_to_its_type[parrot-",
            "rate_limit must raise RateLimitError, got ServerError",
        ),
    ],
)
def test_a_wrong_plugin_fails_saying_what_is_wrong(
    scratch_python: Path, tmp_path: Path, bug: str, failing_trait: str, message: str
) -> None:
    result = run_suite(scratch_python, tmp_path, bug=bug)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert any(failing_trait in line for line in failed), result.stdout
    assert message in result.stdout, result.stdout


def test_live_without_the_key_skips_with_the_reason(scratch_python: Path, tmp_path: Path) -> None:
    result = run_suite(scratch_python, tmp_path, "", "--live", "-rs")
    # Skipped, saying why; and since nothing ran live, the run fails unless allowed.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--live needs PARROT_API_KEY in the environment" in result.stdout
    assert "passed" not in result.stdout.splitlines()[-1]
    allowed = run_suite(scratch_python, tmp_path, "", "--live", "--live-allow-skip")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
