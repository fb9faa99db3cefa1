"""The conformance suite holds fake plugins to their contract, and says why in its report.

One fake distribution (written into a temporary site directory, found by
``importlib.metadata`` through ``PYTHONPATH``) declares eleven backend plugins over one tiny
in-memory backend and harness. Each plugin is named after the one thing it does wrong
(``wellbehaved`` does nothing wrong); its manifest sits in ``[tachikoma.manifests]``.
``pytest --plugin=<all of them>,mock --conformance-report=...`` runs once, in a
subprocess from an empty directory, and the tests below read its JSON report and output:

* a plugin is held only to the traits of the contract it declares (``oldcontract``), and
  one declaring a contract this core cannot drive fails once saying so (``future``), as
  does one without a harness (``noharness``) or whose harness needs a pytest plugin that is
  not installed (``unplugged``);
* a declared capability that does not work fails (``liar``), and so does one the backend
  silently drops instead of sending (``dropper``); an undeclared one that works is a
  warning, not a failure (``modest``);
* an offline trait that reaches the network fails with the address (``phonehome``);
* a hidden retry loop is caught by attempt counting (``eager``);
* the stream lifecycle invariants catch usage before the finish (``usagefirst``) and a
  repeated finish (``doublefinish``);
* expected failures become xfails with their reason, and one without a reason fails
  (``known``);
* the report validates against the schema core ships, and every other trait passes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import jsonschema
import pytest

from tachikoma_backends_core.conformance._report import SCHEMA_PATH
from tachikoma_backends_core.manifest import (
    CONTRACT_VERSION,
    MANIFEST_ENTRY_POINT_GROUP,
    MIN_CONTRACT_VERSION,
)
from tachikoma_backends_core.registry import PLUGINS_ENV_VAR, Registry

if TYPE_CHECKING:
    from conftest import RunSuite, SuiteRun

MODULE = "tachikoma_conformance_fakes"
DISTRIBUTION = "tachikoma-conformance-fakes"
ALL_CAPABILITIES = "streaming,tool_calling,json_mode"

#: plugin name -> its manifest. The name is also the fake backend's "bug" knob.
MANIFESTS = {
    "wellbehaved": f"contract=2; capabilities={ALL_CAPABILITIES}",
    "oldcontract": "contract=1",
    "future": f"contract=99; capabilities={ALL_CAPABILITIES}",
    "liar": f"contract=2; capabilities={ALL_CAPABILITIES},vision",
    "modest": "contract=2; capabilities=streaming,tool_calling",
    "phonehome": f"contract=2; capabilities={ALL_CAPABILITIES}",
    "eager": f"contract=2; capabilities={ALL_CAPABILITIES}",
    "usagefirst": f"contract=2; capabilities={ALL_CAPABILITIES}",
    "doublefinish": f"contract=2; capabilities={ALL_CAPABILITIES}",
    "known": f"contract=2; capabilities={ALL_CAPABILITIES}",
    "dropper": f"contract=2; capabilities={ALL_CAPABILITIES},vision",
    "noharness": f"contract=2; capabilities={ALL_CAPABILITIES}",
    "unplugged": f"contract=2; capabilities={ALL_CAPABILITIES}",
}
SELECTED = [*MANIFESTS, "mock"]

FAKE_SOURCE = '''\
"""A tiny scripted provider, its backend and its harness; each plugin's name is its bug.

wellbehaved: none. oldcontract (contract 1): usage also on the first streamed chunk.
liar: claims vision, rejects images. modest: json_mode works, undeclared.
phonehome: the first complete() of the process pings 203.0.113.7:80.
eager: retries a retryable failure once itself. usagefirst: like oldcontract, contract 2.
doublefinish: repeats the final chunk. dropper: claims vision and json_mode, drops both.
known: complete() keeps only the first tool call and expects to fail
test_parallel_tool_calls (saying why) and test_basic_completion (without a reason, which
the suite refuses). future (contract 99): never driven.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from collections import deque
from typing import Any, ClassVar

import anyio.lowlevel
from pydantic import Field

from tachikoma_backends_core import (
    Backend,
    BackendCapabilities,
    BackendError,
    BackendInfo,
    BackendPlugin,
    CompletionChunk,
    CompletionResponse,
    CompletionStream,
    ImagePart,
    InvalidRequestError,
    Message,
    NetworkError,
    PluginConfig,
    RateLimitError,
    StreamProtocolError,
    ToolCallDelta,
    Usage,
)
from tachikoma_backends_core.conformance.harness import (
    EXPECTED_ERRORS,
    ConformanceHarness,
    ErrorKind,
    ScriptedFailure,
    ScriptedReply,
    SentRequest,
)

MODEL = "fake-1"
MAX_OUTPUT = 1000
WORDS = re.compile(r"\\s*\\S+\\s*|\\s+")
NAMES = [
    "wellbehaved", "oldcontract", "future", "liar", "modest", "phonehome", "eager",
    "usagefirst", "doublefinish", "known", "dropper", "noharness", "unplugged",
]
CAPABILITIES = {"streaming": True, "tool_calling": True, "json_mode": True, "vision": False}
CAPABILITY_BUGS = {
    "liar": {"vision": True},
    "modest": {"json_mode": False},
    "dropper": {"vision": True},
}
EXPECTED_FAILURES = {
    "known": {
        "test_parallel_tool_calls": "provider has no parallel calls",
        "test_basic_completion": "",
        "test_paralel_tool_calls": "a typo: names no trait",
    },
}
EARLY_USAGE = ("oldcontract", "usagefirst")
_phoned_home = False


class Service:
    """The scripted provider: answers in order and remembers every request it got."""

    def __init__(self) -> None:
        self.answers: deque[ScriptedReply | ScriptedFailure] = deque()
        self.sent: list[tuple[Any, bool]] = []  # failed requests included
        self.healthy = True
        self.open_responses = 0

    def take(self, name: str, request: Any, streamed: bool) -> ScriptedReply | ScriptedFailure:
        self.sent.append((request, streamed))
        answer = self.answers.popleft() if self.answers else ScriptedReply(text="unscripted")
        if isinstance(answer, ScriptedFailure) and not answer.kind.mid_stream:
            if answer.kind is ErrorKind.RATE_LIMIT:
                raise RateLimitError(
                    answer.message, retry_after=answer.retry_after, provider=name, status_code=429
                )
            raise EXPECTED_ERRORS[answer.kind].error_type(answer.message, provider=name)
        return answer


def chunks_of(reply: ScriptedReply) -> list[CompletionChunk]:
    chunks = [CompletionChunk.text(piece) for piece in WORDS.findall(reply.text)]
    for index, call in enumerate(reply.tool_calls):
        chunks.append(CompletionChunk(tool_call_deltas=(ToolCallDelta(index, call.id, call.name),)))
        half = len(call.arguments) // 2
        for piece in (call.arguments[:half], call.arguments[half:]):
            delta = ToolCallDelta(index, arguments_delta=piece)
            chunks.append(CompletionChunk(tool_call_deltas=(delta,)))
    chunks.append(CompletionChunk.final_chunk(reply.usage, reply.effective_finish_reason))
    return chunks


def without_images(message: Message) -> Message:
    if isinstance(message.content, str):
        return message
    if not any(isinstance(part, ImagePart) for part in message.content):
        return message
    return Message.user(message.text)


class FakeBackend(Backend):
    def __init__(self, name: str) -> None:
        self.name = name
        self.service = Service()
        flags = {**CAPABILITIES, **CAPABILITY_BUGS.get(name, {})}
        self._info = BackendInfo(
            name=name,
            version="0.0.1",
            default_model=MODEL,
            available_models=[MODEL],
            capabilities=BackendCapabilities(
                **flags, max_context_tokens=10_000, max_output_tokens=MAX_OUTPUT
            ),
        )

    @property
    def info(self) -> BackendInfo:
        return self._info

    def _check(self, request: Any) -> None:
        """What the provider would refuse; nothing is sent."""
        if request.max_tokens is not None and request.max_tokens > MAX_OUTPUT:
            raise InvalidRequestError(
                f"max_tokens above {MAX_OUTPUT}", field="max_tokens", provider=self.name
            )
        for message in request.messages:
            if not isinstance(message.content, str) and any(
                isinstance(part, ImagePart) for part in message.content
            ):
                raise InvalidRequestError(
                    "images are not supported", field="messages", provider=self.name
                )

    def _phone_home(self) -> None:
        global _phoned_home
        if _phoned_home:
            return
        _phoned_home = True
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(0.5)
        try:
            sock.connect(("203.0.113.7", 80))
        except OSError as exc:
            raise NetworkError(f"usage ping failed: {exc}", provider=self.name) from exc
        finally:
            sock.close()

    async def _attempt(self, request: Any, streamed: bool) -> ScriptedReply | ScriptedFailure:
        await anyio.lowlevel.checkpoint()
        if self.name == "dropper":  # sends what it cannot encode without it: no error
            plain = [without_images(message) for message in request.messages]
            request = request.model_copy(update={"json_mode": False, "messages": plain})
        self._check(request)
        try:
            return self.service.take(self.name, request, streamed)
        except BackendError as error:
            if self.name != "eager" or not error.retryable:
                raise
        await anyio.lowlevel.checkpoint()
        return self.service.take(self.name, request, streamed)  # the hidden retry

    async def complete(self, request: Any) -> CompletionResponse:
        if self.name == "phonehome":
            self._phone_home()
        answer = await self._attempt(request, streamed=False)
        if isinstance(answer, ScriptedFailure):
            raise StreamProtocolError("the response body was cut off", provider=self.name)
        calls = list(answer.tool_calls)[: 1 if self.name == "known" else None]
        return CompletionResponse(
            content=answer.text,
            tool_calls=calls,
            finish_reason=answer.effective_finish_reason,
            usage=answer.usage,
            model=request.model or MODEL,
        )

    async def complete_stream(self, request: Any) -> CompletionStream:
        answer = await self._attempt(request, streamed=True)
        self.service.open_responses += 1
        early = partial_usage(self.name, answer) if isinstance(answer, ScriptedReply) else None
        return CompletionStream(
            self._chunks(answer),
            model=request.model or MODEL,
            provider=self.name,
            on_close=self._closed,
            usage_so_far=lambda: early,
        )

    async def _closed(self) -> None:
        self.service.open_responses -= 1

    async def _chunks(self, answer: ScriptedReply | ScriptedFailure) -> Any:
        if isinstance(answer, ScriptedFailure):
            await anyio.lowlevel.checkpoint()
            yield CompletionChunk.text("partial ")
            if answer.kind is ErrorKind.MALFORMED_STREAM:
                raise StreamProtocolError("malformed event", provider=self.name)
            return  # STREAM_CUT: ends without its final chunk
        chunks = chunks_of(answer)
        if self.name in EARLY_USAGE:
            chunks[0] = dataclasses.replace(chunks[0], usage=answer.usage)
        if self.name == "doublefinish":
            chunks.append(chunks[-1])
        for chunk in chunks:
            await anyio.lowlevel.checkpoint()
            yield chunk

    async def health_check(self) -> bool:
        return self.service.healthy


def partial_usage(name: str, reply: ScriptedReply) -> Usage:
    """What the provider reports before the end: the input tokens (all of it, if early)."""
    return reply.usage if name in EARLY_USAGE else Usage(reply.usage.input_tokens, 0)


class FakeConfig(PluginConfig):
    max_retries: int = Field(default=0, ge=0, le=10)


class FakeHarness(ConformanceHarness):
    plugin_name: ClassVar[str] = ""

    def create_backend(self, **config: Any) -> Backend:
        managed = globals()[self.plugin_name].create(**config)
        self.backend: FakeBackend = managed.inner
        return managed

    def script_reply(self, reply: ScriptedReply) -> None:
        self.backend.service.answers.append(reply)

    def script_failure(self, failure: ScriptedFailure) -> None:
        self.backend.service.answers.append(failure)

    def sent_requests(self) -> list[SentRequest]:
        return [
            SentRequest(
                messages=request.messages,
                tools=[tool.name for tool in request.tools],
                max_tokens=request.max_tokens,
                model=request.model,
                stream=streamed,
                json_mode=request.json_mode,
            )
            for request, streamed in self.backend.service.sent
        ]

    def script_unhealthy(self) -> None:
        self.backend.service.healthy = False

    def attempts(self) -> int:
        return len(self.backend.service.sent)

    def open_responses(self) -> int:
        return self.backend.service.open_responses

    def partial_usage(self, reply: ScriptedReply) -> Usage:
        return partial_usage(self.plugin_name, reply)


for _name in NAMES:
    globals()[f"harness_{_name}"] = type(
        f"Harness_{_name}",
        (FakeHarness,),
        {
            "plugin_name": _name,
            "expected_failures": EXPECTED_FAILURES.get(_name, {}),
            # unplugged: scripts with a pytest plugin that is not installed
            "requires_pytest_plugins": (
                {"tachikoma_no_such_module": "tachikoma-no-such-plugin>=1"}
                if _name == "unplugged"
                else {}
            ),
        },
    )
    globals()[_name] = BackendPlugin(
        name=_name,
        config_model=FakeConfig,
        factory=lambda config, name=_name: FakeBackend(name),
        harness=None if _name == "noharness" else f"{__name__}:harness_{_name}",
    )
'''


def write_site(site: Path) -> None:
    """One fake distribution: every fake plugin and its manifest, and their module."""
    dist_info = site / f"{DISTRIBUTION.replace('-', '_')}-0.0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: 0.0.1\n", encoding="utf-8"
    )
    lines = [
        "[tachikoma.backends]",
        *(f"{name} = {MODULE}:{name}" for name in MANIFESTS),
        "",
        f"[{MANIFEST_ENTRY_POINT_GROUP}]",
        *(f"{name} = {manifest}" for name, manifest in MANIFESTS.items()),
    ]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (site / f"{MODULE}.py").write_text(FAKE_SOURCE, encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fake-site")
    write_site(path)
    return path


@pytest.fixture(scope="module")
def run(site: Path, run_suite: RunSuite) -> SuiteRun:
    run = run_suite(site, SELECTED)
    assert run.result.returncode == pytest.ExitCode.TESTS_FAILED, (
        run.result.stdout + run.result.stderr
    )
    return run


# -- the run as a whole -----------------------------------------------------------------


def test_the_report_validates_against_the_shipped_schema(run: SuiteRun) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(run.report)
    assert [entry["name"] for entry in run.report["plugins"]] == SELECTED
    assert run.report["core_contract"] == {"min": MIN_CONTRACT_VERSION, "max": CONTRACT_VERSION}
    assert run.report["live"] is False
    for entry in run.report["plugins"]:
        outcomes = [trait["outcome"] for trait in entry["traits"]]
        assert entry["summary"] == {
            outcome: outcomes.count(outcome) for outcome in entry["summary"]
        }
        if entry["name"] != "mock":
            assert (entry["distribution"], entry["version"]) == (DISTRIBUTION, "0.0.1")
    assert f"conformance report written to {run.report_path}" in run.result.stdout


def test_mock_and_the_well_behaved_fake_pass_everything(run: SuiteRun) -> None:
    for name in ("mock", "wellbehaved"):
        entry = run.plugin(name)
        assert run.with_outcome(name, "failed") == set(), run.failures(name)
        assert entry["summary"]["xfailed"] == 0
        assert (entry["error"], entry["warnings"]) == (None, [])
        assert entry["summary"]["passed"] > 80
        # Skipped: only vision (not declared, and it does not work), the --live trait, and
        # for the contract 2 fake the traits of the contracts after 2.
        skipped = {(t["trait"], t["skip_category"]) for t in run.traits(name, outcome="skipped")}
        vision = {
            "test_an_image_keeps_its_media_type",
            "test_an_image_inside_a_tool_result_is_sent",
        }
        expected = {
            ("test_declared_capability_works", "not_declared"),
            ("test_live_round_trip", "live_only"),
        }
        if name == "mock":  # contract 3: its vision traits are skipped, undeclared
            expected |= {(trait, "not_declared") for trait in vision}
        else:
            expected |= {
                (t["trait"], "not_in_contract")
                for t in run.traits(name)
                if t["since_contract"] > 2  # the fake's contract
            }
        assert skipped == expected


#: Exactly the traits each fake plugin fails: every other trait passes, is skipped for a
#: stated reason (capability not declared, not in the plugin's contract) or xfails.
EXPECTED_FAILED: dict[str, set[str]] = {
    "wellbehaved": set(),
    "oldcontract": set(),
    "future": {"test_basic_completion"},  # one trait, saying why; the rest deselected
    "liar": {"test_declared_capability_works"},
    "modest": set(),
    "phonehome": {"test_basic_completion"},
    "eager": {
        # Its hidden retry answers the call, so a retryable error never reaches the caller
        # and the core's loop never waits the provider's retry_after.
        "test_request_error_maps_to_its_type",
        "test_no_hidden_retries",
        "test_core_retry_loop_recovers",
        "test_max_retries_sizes_the_only_retry_loop",
    },
    "usagefirst": {"test_stream_lifecycle_invariants"},
    # The stream itself refuses the second finish (a StreamProtocolError, issue 13), so
    # every trait that reads a whole stream of it fails, naming the broken lifecycle.
    "doublefinish": {
        "test_streaming_text",
        "test_stream_lifecycle_invariants",
        "test_stream_collect_includes_chunks_already_read",
        "test_streamed_tool_call_arguments_reassemble",
        "test_request_recording",
        "test_declared_capability_works",
    },
    "known": {"test_basic_completion"},  # its expected failure without a reason
    "dropper": {"test_declared_capability_works"},  # vision and json_mode, dropped
}


@pytest.mark.parametrize("name", list(EXPECTED_FAILED))
def test_each_fake_fails_exactly_the_intended_traits(run: SuiteRun, name: str) -> None:
    expected = EXPECTED_FAILED[name]
    assert run.with_outcome(name, "failed") == expected, run.failures(name)
    assert run.with_outcome(name, "xfailed") == (
        {"test_parallel_tool_calls"} if name == "known" else set()
    )
    summary_lines = {line.split(" - ", 1)[0] for line in run.result.stdout.splitlines()}
    for trait in run.traits(name, outcome="failed"):
        assert trait["reason"], trait
        # pytest's own summary agrees (ERROR: failed in the harness fixture, in setup).
        assert summary_lines & {f"FAILED {trait['id']}", f"ERROR {trait['id']}"}, trait
    if name != "future":
        assert run.plugin(name)["summary"]["passed"] > 60


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("noharness", "plugin 'noharness' declares no conformance harness"),
        (
            "unplugged",
            "Harness_unplugged scripts the provider with tachikoma-no-such-plugin>=1, which is "
            "not installed: pip install 'tachikoma-no-such-plugin>=1' (or the plugin's "
            "[conformance] extra)",
        ),
    ],
)
def test_a_plugin_no_trait_can_run_for_fails_once_saying_why(
    run: SuiteRun, name: str, says: str
) -> None:
    (trait,) = run.traits(name)  # the others are deselected: one cause, said once
    assert trait["outcome"] == "failed"
    assert f"{name}: no trait can run: {says}" in trait["reason"]


# -- contract versions ------------------------------------------------------------------


def test_an_old_contract_plugin_is_held_only_to_its_contract(run: SuiteRun) -> None:
    entry = run.plugin("oldcontract")
    assert (entry["contract"], entry["capabilities"], entry["error"]) == (1, None, None)
    newer = [trait for trait in entry["traits"] if trait["since_contract"] >= 2]
    assert {trait["trait"] for trait in newer if trait["since_contract"] == 2} == {
        "test_stream_lifecycle_invariants",
        "test_cancelling_mid_stream_closes_the_upstream",
        "test_no_hidden_retries",
        "test_core_retry_loop_recovers",
        "test_max_retries_sizes_the_only_retry_loop",
        "test_manifest_matches_info",
    }
    for trait in newer:
        assert (trait["outcome"], trait["skip_category"]) == ("skipped", "not_in_contract")
        assert trait["reason"] == (
            f"trait of Backend contract {trait['since_contract']}; oldcontract implements "
            "contract 1"
        )
    assert entry["summary"]["skipped"] == len(newer) + 4  # + vision and --live, as for mock
    # Its stream carries usage before the finish: contract 1 traits pass, and the same
    # stream fails the lifecycle trait of a contract 2 plugin (usagefirst).
    assert "test_streaming_text" in run.with_outcome("oldcontract", "passed")
    assert run.with_outcome("usagefirst", "failed") == {"test_stream_lifecycle_invariants"}


def test_a_plugin_of_a_future_contract_fails_once_saying_why(run: SuiteRun) -> None:
    entry = run.plugin("future")
    assert entry["contract"] == 99
    assert entry["error"] == (
        "plugin 'future' implements Backend contract 99, but this tachikoma-backends-core "
        f"supports contracts {MIN_CONTRACT_VERSION} to {CONTRACT_VERSION}; "
        "upgrade tachikoma-backends-core"
    )
    # One trait fails with the reason; the others are deselected: one cause, said once.
    (trait,) = entry["traits"]
    assert (trait["outcome"], trait["reason"]) == ("failed", f"Failed: {entry['error']}")


def test_listing_refuses_a_future_contract_without_importing_the_plugin(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(PLUGINS_ENV_VAR, "future,wellbehaved")
    infos = {info.name: info for info in Registry().available()}
    assert sorted(infos) == ["future", "wellbehaved"]
    error = infos["future"].error
    assert error is not None
    assert "plugin 'future' implements Backend contract 99" in error.message
    assert f"supports contracts {MIN_CONTRACT_VERSION} to {CONTRACT_VERSION}" in error.message
    assert infos["future"].manifest.contract == 99
    assert infos["wellbehaved"].ok
    assert infos["wellbehaved"].manifest.capabilities == frozenset(ALL_CAPABILITIES.split(","))
    assert MODULE not in sys.modules, "listing must not import the plugins' module"


# -- capabilities -----------------------------------------------------------------------


def test_a_declared_capability_that_does_not_work_fails_naming_it(run: SuiteRun) -> None:
    assert run.plugin("liar")["capabilities"] == sorted([*ALL_CAPABILITIES.split(","), "vision"])
    capability_traits = run.traits("liar", "test_declared_capability_works")
    failed = run.traits("liar", outcome="failed")
    assert failed == [trait for trait in capability_traits if "-vision]" in trait["id"]]
    assert len(failed) >= 1
    for trait in failed:
        assert "liar declares the capability 'vision', but it does not work" in trait["reason"]
        assert "InvalidRequestError: images are not supported" in trait["reason"]


def test_a_declared_capability_silently_dropped_fails(run: SuiteRun) -> None:
    failed = run.traits("dropper", outcome="failed")
    reasons = {trait["id"].rsplit("-", 1)[1].rstrip("]"): trait["reason"] for trait in failed}
    assert set(reasons) == {"vision", "json_mode"}
    assert "the image part was not sent to the provider (silently dropped)" in reasons["vision"]
    assert "the request was sent without JSON mode" in reasons["json_mode"]


def test_an_undeclared_capability_that_works_is_a_warning_not_a_failure(run: SuiteRun) -> None:
    entry = run.plugin("modest")
    assert entry["warnings"] == [
        "capability 'json_mode' answered without error but is not declared; if the provider "
        "really honours it, declare it in the manifest and in BackendInfo.capabilities"
    ]
    assert f"warning: modest: {entry['warnings'][0]}" in run.result.stdout
    json_mode = [
        trait
        for trait in run.traits("modest", "test_declared_capability_works")
        if "-json_mode]" in trait["id"]
    ]
    assert len(json_mode) >= 1
    for trait in json_mode:
        assert (trait["outcome"], trait["skip_category"]) == ("skipped", "not_declared")
        assert trait["reason"] == "modest does not declare json_mode (it answered)"
    assert [name for name in SELECTED if run.plugin(name)["warnings"]] == ["modest", "known"]
    others = run.result.stdout.replace("warning: modest: ", "").replace("warning: known: ", "")
    assert "warning: " not in others


# -- the network guard, attempts, stream lifecycle --------------------------------------


def test_an_offline_trait_that_reaches_the_network_fails_naming_the_address(
    run: SuiteRun,
) -> None:
    # The fake pings once per process: the first trait calling complete() catches it.
    (failed,) = run.traits("phonehome", outcome="failed")
    assert failed["trait"] == "test_basic_completion"
    assert failed["reason"].startswith("network guard: ")
    assert "refused a connection to 203.0.113.7:80" in failed["reason"]


def test_a_hidden_retry_loop_fails_the_attempt_counting_traits(run: SuiteRun) -> None:
    traits = run.traits("eager", "test_no_hidden_retries")
    assert len(traits) >= 6  # 3 retryable kinds x complete/stream, per event loop
    assert {trait["outcome"] for trait in traits} == {"failed"}


def test_every_failure_of_a_hidden_retry_names_it(run: SuiteRun) -> None:
    """One cause, said by every trait it breaks: none blames the retryable error's type or
    the core's wait, which is what the extra attempt did next."""
    failures = run.traits("eager", outcome="failed")
    assert len(failures) >= 10
    for trait in failures:
        assert "the plugin retries on its own" in trait["reason"], trait


def test_a_hidden_retry_loop_is_reported_as_extra_attempts(run: SuiteRun) -> None:
    for trait in run.traits("eager", "test_no_hidden_retries"):
        assert "made 2 attempts" in trait["reason"], trait


def test_usage_before_the_finish_breaks_the_stream_lifecycle(run: SuiteRun) -> None:
    traits = run.traits("usagefirst", "test_stream_lifecycle_invariants")
    assert len(traits) >= 2  # text and tool_calls shapes, per event loop
    for trait in traits:
        assert trait["outcome"] == "failed"
        assert "usage must arrive with or after the finish, but chunk 0 of" in trait["reason"]


def test_a_repeated_finish_breaks_the_stream_lifecycle(run: SuiteRun) -> None:
    traits = run.traits("doublefinish", "test_stream_lifecycle_invariants")
    assert len(traits) >= 2
    for trait in traits:
        assert trait["outcome"] == "failed"
        # The stream itself refuses the second finish now (issue 13), naming what broke.
        assert "a chunk came after the final chunk" in trait["reason"]


# -- expected failures ------------------------------------------------------------------


def test_an_expected_failure_with_a_reason_is_an_xfail_with_it(run: SuiteRun) -> None:
    traits = run.traits("known", "test_parallel_tool_calls")
    assert len(traits) >= 1
    assert run.traits("known", outcome="xfailed") == traits
    for trait in traits:
        assert trait["reason"] == "known: provider has no parallel calls"
    assert f"{len(traits)} xfailed" in run.result.stdout.splitlines()[-1]


def test_an_expected_failure_naming_no_trait_is_a_warning(run: SuiteRun) -> None:
    message = "expected_failures names 'test_paralel_tool_calls', which is not a collected trait"
    assert run.plugin("known")["warnings"] == [message]
    assert f"warning: known: {message}" in run.result.stdout


def test_an_expected_failure_without_a_reason_is_refused(run: SuiteRun) -> None:
    traits = run.traits("known", "test_basic_completion")
    assert len(traits) >= 1
    for trait in traits:
        assert trait["outcome"] == "failed"
        assert trait["reason"] == (
            "Failed: known: expected_failures['test_basic_completion'] has no reason; "
            "an expected failure must say why"
        )
