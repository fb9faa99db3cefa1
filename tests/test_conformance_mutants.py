"""Mutation testing of the conformance suite: one realistic bug per plugin, each caught.

Each mutant is the real Claude plugin with one bug of a class provider plugins really
ship (a parameter dropped, a finish reason flattened, a response never closed...). The
plugin is copied into a temporary site directory under its own module name, the bug
patched in, and declared as its own backend plugin (``mutant_<bug>``) with Claude's
manifest. One ``pytest --plugin=<every mutant>,claude`` subprocess runs the suite over
all of them, and the tests below read its JSON report:

* every mutant fails the trait meant for its bug, with a message that names the bug;
* a mutant whose bug touches one thing fails nothing else;
* unmutated Claude passes everything.

``BEFORE_CONTRACT_3`` records which of these bugs the contract 2 traits alone caught,
so the gain stays measured: `test_contract_2_alone_missed_most_of_them` checks it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import tachikoma_backend_claude
from tachikoma_backends_core.manifest import MANIFEST_ENTRY_POINT_GROUP

if TYPE_CHECKING:
    from conftest import RunSuite, SuiteRun

#: The suite runs once per mutant in one subprocess: about a minute and a half in all.
pytestmark = pytest.mark.timeout(900)

CLAUDE = Path(tachikoma_backend_claude.__file__).parent
MANIFEST = "contract=4; capabilities=streaming,tool_calling,vision"

_CLIENT_STREAM = """\
        client = self._http.client
        response = await client.send(
            client.build_request("POST", MESSAGES_PATH, json=body), stream=True
        )
        decoder = ClaudeStreamDecoder()

        async def chunks():  # type: ignore[no-untyped-def]
            async for data in response.aiter_raw():
                for chunk in decoder.feed(data):
                    yield chunk
            for chunk in decoder.close():
                yield chunk

        from tachikoma_backends_core import CompletionStream

        return CompletionStream(chunks(), model=model, provider="claude")
"""


@dataclass(frozen=True)
class Mutant:
    """One bug: ``(old, new)`` replacements in one file of the plugin.

    Attributes:
        name: the bug, as the plugin's name (``mutant_<name>``).
        path: the file, relative to the package.
        patches: each ``old`` must occur exactly once in the file.
        trait: the trait meant to catch it.
        says: what that trait's failure message must say.
        alone: whether it must be the only trait that fails (``False`` when the bug
            breaks more than one behaviour, as a hand-rolled stream does).
    """

    name: str
    path: str
    patches: tuple[tuple[str, str], ...]
    trait: str
    says: str
    alone: bool = True


def _one(name: str, path: str, old: str, new: str, trait: str, says: str, **kw: Any) -> Mutant:
    return Mutant(name, path, ((old, new),), trait, says, **kw)


ENCODE, DECODE, STREAM = "_wire/encode.py", "_wire/decode.py", "_wire/stream.py"
ERRORS, BACKEND = "_wire/errors.py", "_backend.py"

MUTANTS = [
    # -- request fidelity ------------------------------------------------------------
    _one(
        "temperature",
        ENCODE,
        'body["temperature"] = request.temperature',
        "pass",
        "test_sampling_parameters_are_sent",
        "temperature=0.3 was not sent",
    ),
    _one(
        "top_p",
        ENCODE,
        'body["top_p"] = request.top_p',
        "pass",
        "test_sampling_parameters_are_sent",
        "top_p=0.9 was not sent",
    ),
    _one(
        "stop",
        ENCODE,
        'body["stop_sequences"] = list(request.stop)',
        "pass",
        "test_sampling_parameters_are_sent",
        "stop=['END', 'STOP HERE'] was not sent",
    ),
    _one(
        "tool_choice_required",
        ENCODE,
        '"required": "any"',
        '"required": "auto"',
        "test_tool_choice_is_sent",
        "tool_choice 'required' was sent as 'auto'",
    ),
    _one(
        "metadata",
        ENCODE,
        'body["metadata"] = {"user_id": user_id}',
        "pass",
        "test_metadata_is_sent",
        "metadata user_id='user-42' was lost",
    ),
    _one(
        "required_list",
        ENCODE,
        'encoded["input_schema"] = tool.parameters.to_json_schema()',
        'encoded["input_schema"] = {**tool.parameters.to_json_schema(), "required": []}',
        "test_tool_definitions_are_sent_whole",
        "the 'required' list was sent as []",
    ),
    _one(
        "system_when_streaming",
        ENCODE,
        "if system is not None:",
        "if system is not None and not stream:",
        "test_a_streamed_request_sends_what_a_plain_one_does",
        "the system prompt was dropped",
    ),
    _one(
        "request_model",
        BACKEND,
        "model = request.model or self._config.model",
        "model = self._config.model",
        "test_the_requested_model_is_sent",
        "the request's model was ignored in favour of the configured default",
    ),
    _one(
        "user_turns",
        ENCODE,
        'turns[-1]["content"].extend(blocks)',
        'turns[-1]["content"] = blocks',
        "test_consecutive_user_turns_are_all_sent",
        "two user turns in a row were merged wrongly or dropped",
        alone=False,  # consecutive tool results are merged the same way
    ),
    Mutant(
        "pairing_by_position",
        ENCODE,
        (
            (
                "        blocks = _blocks(message, index)\n",
                "        blocks = _blocks(message, index)\n"
                "        if message.role is Role.TOOL:\n"
                "            asked = next(t for t in reversed(turns) if t['role'] == 'assistant')\n"
                "            ids = [b['id'] for b in asked['content'] if b['type'] == 'tool_use']\n"
                "            last = turns[-1]\n"
                "            answered = last['content'] if last['role'] == 'user' else []\n"
                "            blocks[0]['tool_use_id'] = ids[len(answered)]\n",
            ),
        ),
        "test_tool_results_are_paired_with_their_calls_by_id",
        "results are paired with their calls by position instead of by id",
    ),
    _one(
        "second_tool_result",
        ENCODE,
        '        if turns and turns[-1]["role"] == role:\n',
        '        if turns and turns[-1]["role"] == role and message.role is Role.TOOL:\n'
        "            continue\n"
        '        if turns and turns[-1]["role"] == role:\n',
        "test_tool_results_are_paired_with_their_calls_by_id",
        "the tool result for call_alpha was not sent (dropped)",
    ),
    _one(
        "assistant_text",
        ENCODE,
        "block = _content_block(part, index)",
        "block = None if message.tool_calls else _content_block(part, index)",
        "test_assistant_text_next_to_tool_calls_is_sent",
        "the assistant's text was lost when it came with tool calls",
    ),
    _one(
        "image_media_type",
        ENCODE,
        '"media_type": image.media_type, "data": image.data}',
        '"media_type": "image/png", "data": image.data}',
        "test_an_image_keeps_its_media_type",
        "a base64 image/jpeg image was sent labelled 'image/png'",
    ),
    _one(
        "tool_result_images",
        ENCODE,
        "for part in parts) if b is not None]",
        'for part in parts) if b is not None and b["type"] == "text"]',
        "test_an_image_inside_a_tool_result_is_sent",
        "the image inside a tool result was dropped",
    ),
    # -- response fidelity -----------------------------------------------------------
    _one(
        "length_finish",
        DECODE,
        '"max_tokens": FinishReason.LENGTH,',
        '"max_tokens": FinishReason.STOP,',
        "test_finish_reason_is_reported",
        "a length finish was reported as FinishReason.STOP",
    ),
    _one(
        "stop_sequence_finish",
        DECODE,
        '"stop_sequence": FinishReason.STOP_SEQUENCE,',
        '"stop_sequence": FinishReason.STOP,',
        "test_finish_reason_is_reported",
        "a stop_sequence finish was reported as FinishReason.STOP",
    ),
    _one(
        "cache_tokens",
        DECODE,
        'cache_read_input_tokens=_count(usage.get("cache_read_input_tokens")),',
        "cache_read_input_tokens=0,",
        "test_usage_is_reported_whole",
        "cache_read_input_tokens=0 (the provider said 7)",
    ),
    _one(
        "text_before_tool_call",
        DECODE,
        'content="".join(texts),',
        'content="" if calls else "".join(texts),',
        "test_text_before_a_tool_call_is_kept",
        "the text that came before the tool call was lost (complete)",
        alone=False,  # the byte-per-read trait's answer has text before tool calls too
    ),
    _one(
        "argumentless_call",
        STREAM,
        "            if block is None or block.streamed:\n                return None\n"
        "            # No input_json_delta",
        "            if True:\n                return None\n            # No input_json_delta",
        "test_a_tool_call_without_arguments_completes",
        "a tool call without arguments was left unterminated (stream)",
    ),
    _one(
        "fractional_retry_after",
        ERRORS,
        "retry_after=parse_retry_after(headers, now),",
        "retry_after=(int(parse_retry_after(headers, now) or 0) or None),",
        "test_a_fractional_retry_after_is_kept",
        "a retry-after of 1.5 s was reported as retry_after=1",
    ),
    # -- streams and lifecycle -------------------------------------------------------
    _one(
        "error_event_as_finish",
        STREAM,
        "            raise error_from_event(payload)\n",
        "            self.finished = True\n"
        "            return CompletionChunk(\n"
        "                usage=Usage(**self._counts),\n"
        "                finish_reason=finish_reason_for(None, False),\n"
        "            )\n",
        "test_a_provider_error_after_the_first_chunk_fails_the_stream",
        "error after the first chunk ended the stream as if it had finished",
        alone=False,  # the failed stream's response trait sees the same non-failure
    ),
    _one(
        "parser_per_read",
        STREAM,
        "events = self._sse.feed(data)  #",
        "events = SSEParser(provider=PROVIDER).feed(data)  #",
        "test_events_split_across_reads_arrive_whole",
        "an event split across network reads was lost or garbled",
    ),
    Mutant(
        "crlf_until_the_end",
        STREAM,
        (
            ('        "_sse",\n', '        "_sse",\n        "_raw",\n'),
            (
                "        self._sse = SSEParser(provider=PROVIDER)\n",
                '        self._sse = SSEParser(provider=PROVIDER)\n        self._raw = b""\n',
            ),
            (
                "        events = self._sse.feed(data)  #",
                '        self._raw += data if b"\\r" in data or self._raw else b""\n'
                "        events = [] if self._raw else self._sse.feed(data)  #",
            ),
            (
                "        events = self._sse.close()\n",
                "        events = self._sse.feed(self._raw) + self._sse.close()\n",
            ),
        ),
        "test_a_stream_ends_at_its_final_event",
        "with CRLF line endings no event arrives until the body ends",
    ),
    _one(
        "timeout_ignored",
        BACKEND,
        "        self._http = HttpConnection(\n            config,\n",
        "        self._http = HttpConnection(\n"
        '            config.model_copy(update={"timeout": 600.0, "read_timeout": None}),\n',
        "test_the_configured_timeout_ends_a_stalled_call",
        "the configured timeout was ignored",
        alone=False,  # a stalled health check outlasts the timeout the same way
    ),
    _one(
        "health_swallows_cancellation",
        BACKEND,
        "        return (await self.check_health()).healthy\n",
        "        try:\n"
        "            return (await self.check_health()).healthy\n"
        "        except BaseException:\n"
        "            return False\n",
        "test_a_cancelled_health_check_is_cancelled",
        "health_check swallowed the cancellation",
    ),
    _one(
        "health_without_reason",
        BACKEND,
        "    async def check_health(self) -> HealthReport:\n"
        '        """``GET /v1/models``: ok on a 2xx answer, else the typed error it met."""\n'
        '        return await self._http.health(MODELS_PATH, params={"limit": 1})\n'
        "\n"
        "    async def health_check(self) -> bool:\n"
        "        return (await self.check_health()).healthy\n",
        "    async def health_check(self) -> bool:\n"
        '        return await self._http.is_healthy(MODELS_PATH, params={"limit": 1})\n',
        "test_check_health_says_why",
        "an unhealthy report must carry the typed error the probe met",
        alone=False,  # the stalled probe's report has no error to name the timeout either
    ),
    _one(
        "plain_response_leak",
        BACKEND,
        '        raw = await self._http.read("POST", MESSAGES_PATH, json=body)\n',
        "        client = self._http.client\n"
        "        response = await client.send(\n"
        '            client.build_request("POST", MESSAGES_PATH, json=body), stream=True\n'
        "        )\n"
        "        raw = await response.aread()\n",
        "test_a_plain_call_cancelled_mid_body_closes_its_response",
        "a plain call cancelled mid-body left 1 upstream response(s) open",
        alone=False,  # a hand-rolled read also loses the error mapping
    ),
    _one(
        "stream_response_leak",
        BACKEND,
        "        return await self._http.stream(\n"
        '            "POST", MESSAGES_PATH, json=body, decoder=ClaudeStreamDecoder(), model=model\n'
        "        )\n",
        _CLIENT_STREAM,
        "test_leaving_a_stream_early_closes_its_response",
        "a stream left after its first chunk left 1 upstream response(s) open",
        alone=False,  # a hand-rolled stream also loses the error mapping
    ),
    Mutant(
        "sdk_retry",  # an SDK's fixed three attempts, underneath the core's retry loop
        BACKEND,
        (
            (
                '        raw = await self._http.read("POST", MESSAGES_PATH, json=body)\n',
                "        from tachikoma_backends_core import BackendError\n"
                "\n"
                "        for attempt in range(3):\n"
                "            try:\n"
                '                raw = await self._http.read("POST", MESSAGES_PATH, json=body)\n'
                "                break\n"
                "            except BackendError as error:\n"
                "                if not error.retryable or attempt == 2:\n"
                "                    raise\n",
            ),
            (
                "        return await self._http.stream(\n"
                '            "POST", MESSAGES_PATH, json=body, decoder=ClaudeStreamDecoder(), '
                "model=model\n"
                "        )\n",
                "        from tachikoma_backends_core import BackendError\n"
                "\n"
                "        for attempt in range(3):\n"
                "            try:\n"
                "                return await self._http.stream(\n"
                '                    "POST", MESSAGES_PATH, json=body,\n'
                "                    decoder=ClaudeStreamDecoder(), model=model,\n"
                "                )\n"
                "            except BackendError as error:\n"
                "                if not error.retryable or attempt == 2:\n"
                "                    raise\n"
                '        raise AssertionError("unreachable")\n',
            ),
        ),
        "test_no_hidden_retries",
        "made 2 attempts: the plugin retries on its own",
        alone=False,  # every trait that scripts a retryable failure: see the test below
    ),
    _one(
        "client_never_closed",
        BACKEND,
        "        await self._http.aclose()\n",
        "        pass\n",
        "test_aclose_closes_the_transport",
        "aclose() left the backend's HTTP client open",
    ),
]

#: The mutants the contract 2 traits alone caught (measured when contract 3 landed): the
#: two hand-rolled HTTP paths, and only because they also lose the error mapping.
BEFORE_CONTRACT_3 = {"plain_response_leak", "stream_response_leak", "sdk_retry"}


def _plugin_name(mutant: Mutant) -> str:
    return f"mutant_{mutant.name}"


def write_mutants(site: Path) -> None:
    """Each mutant as its own package and plugin, in one distribution."""
    for mutant in MUTANTS:
        module = _plugin_name(mutant)
        package = site / module
        shutil.copytree(CLAUDE, package, ignore=shutil.ignore_patterns("__pycache__"))
        for source in package.rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            source.write_text(text.replace("tachikoma_backend_claude", module), encoding="utf-8")
        plugin_file = package / "_plugin.py"
        text = plugin_file.read_text(encoding="utf-8")
        assert text.count('name="claude"') == 1, "the plugin's name moved: update the mutants"
        plugin_file.write_text(text.replace('name="claude"', f'name="{module}"'), encoding="utf-8")
        target = package / mutant.path
        text = target.read_text(encoding="utf-8")
        for old, new in mutant.patches:
            assert text.count(old) == 1, f"{mutant.name}: {old!r} is not once in {mutant.path}"
            text = text.replace(old, new)
        target.write_text(text, encoding="utf-8")
    dist_info = site / "tachikoma_claude_mutants-0.0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tachikoma-claude-mutants\nVersion: 0.0.1\n", encoding="utf-8"
    )
    names = [_plugin_name(mutant) for mutant in MUTANTS]
    lines = [
        "[tachikoma.backends]",
        *(f"{name} = {name}._plugin:plugin" for name in names),
        "",
        f"[{MANIFEST_ENTRY_POINT_GROUP}]",
        *(f"{name} = {MANIFEST}" for name in names),
    ]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, run_suite: RunSuite) -> SuiteRun:
    site = tmp_path_factory.mktemp("mutants")
    write_mutants(site)
    selected = [*(_plugin_name(mutant) for mutant in MUTANTS), "claude"]
    # One event loop is enough to catch a bug; the suite itself runs both.
    return run_suite(site, selected, "-k", "not trio", timeout=600)


def _failures(run: SuiteRun, plugin: str) -> dict[str, list[str]]:
    """Failed trait -> the failure messages of its parametrisations."""
    failed: dict[str, list[str]] = {}
    for trait in run.traits(plugin, outcome="failed"):
        failed.setdefault(trait["trait"], []).append(trait["reason"] or "")
    return failed


def test_unmutated_claude_passes_everything(run: SuiteRun) -> None:
    assert _failures(run, "claude") == {}


@pytest.mark.parametrize("mutant", MUTANTS, ids=[mutant.name for mutant in MUTANTS])
def test_the_suite_catches_the_bug_and_names_it(run: SuiteRun, mutant: Mutant) -> None:
    failed = _failures(run, _plugin_name(mutant))
    assert mutant.trait in failed, f"{mutant.name} was not caught by {mutant.trait}: {failed}"
    assert any(mutant.says in reason for reason in failed[mutant.trait]), (
        f"{mutant.trait} caught {mutant.name} without naming the bug ({mutant.says!r}): "
        f"{failed[mutant.trait]}"
    )
    if mutant.alone:
        assert set(failed) == {mutant.trait}, f"{mutant.name} also failed {sorted(failed)}"


def test_a_hidden_retry_is_named_by_every_failure_it_causes(run: SuiteRun) -> None:
    """One cause, said everywhere it shows: no failure blames the error's type, the wait
    or a timeout, and pytest-httpx adds no teardown complaint about unscripted requests."""
    failures = run.traits("mutant_sdk_retry", outcome="failed")
    assert len(failures) >= 10
    wrong = [(t["id"], t["reason"]) for t in failures if "retries on its own" not in t["reason"]]
    assert wrong == []
    assert "were not expected" not in run.result.stdout, "pytest-httpx repeated it at teardown"


def test_contract_2_alone_missed_most_of_them(run: SuiteRun) -> None:
    """Which mutants a contract 2 trait catches: the ones in ``BEFORE_CONTRACT_3``."""
    caught_before = {
        mutant.name
        for mutant in MUTANTS
        if any(t["since_contract"] <= 2 for t in run.traits(_plugin_name(mutant), outcome="failed"))
    }
    assert caught_before == BEFORE_CONTRACT_3
