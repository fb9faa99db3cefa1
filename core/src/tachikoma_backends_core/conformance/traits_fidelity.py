"""Request and response fidelity traits, introduced by Backend contract 3.

Collected with the other trait modules; every trait here carries ``tachikoma_since(3)``,
so plugins declaring contract 1 or 2 report them as ``not_in_contract``. They catch the
one-line bugs provider plugins really ship, each with a message that names the bug:

* **requests**: a sampling parameter or the stop sequences dropped, the request's
  ``model`` ignored, ``tool_choice`` sent as something else, a tool definition sent in
  part, metadata lost, a field sent only when not streaming, two user turns merged
  wrongly, tool results paired with calls by position instead of by id (or dropped),
  assistant text lost next to tool calls, an image's media type relabelled, an image
  inside a tool result dropped;
* **responses**: a length, stop-sequence or content-filter finish reported as a natural
  stop, cache token counts dropped, text before a tool call lost, a tool call without
  arguments left unterminated, a fractional ``retry-after`` truncated.

A plugin may refuse what its provider cannot do, with an ``InvalidRequestError`` naming
the field and nothing sent; what it may not do is change or drop it silently.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import pytest

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.completion import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    Usage,
)
from tachikoma_backends_core.content import ImagePart, TextPart
from tachikoma_backends_core.errors import (
    BackendError,
    InvalidRequestError,
    ModelNotFoundError,
    RateLimitError,
)
from tachikoma_backends_core.messages import Message, Role
from tachikoma_backends_core.tool_calls import ToolCall, ToolChoice, ToolResult, ToolResultContent
from tachikoma_backends_core.tools import ToolDefinition

from .harness import ConformanceHarness, ErrorKind, ScriptedFailure, ScriptedReply, SentRequest
from .traits import (
    CALL,
    CALLS,
    READ_FILE,
    area,
    ask,
    assert_no_hidden_retry,
    calls_summary,
    requires,
    send,
    since,
    skip_unless_it_streams,
)

pytestmark = pytest.mark.anyio

SEARCH = (
    ToolDefinition.builder("search_files")
    .description("Search files for a pattern")
    .required_string("pattern", "A regular expression")
    .optional_int("limit", "At most this many matches")
    .enum("mode", ["literal", "regex"], "How to read the pattern")
    .build()
)
LIST_FILES = ToolDefinition.builder("list_files").description("List the files here").build()
ALPHA = ToolCall.from_arguments("call_alpha", "read_file", {"path": "/tmp/alpha.txt"})
BETA = ToolCall.from_arguments("call_beta", "read_file", {"path": "/tmp/beta.txt"})
# A 1x1 JPEG's first bytes are enough: no provider is asked to look at it offline.
JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwg"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
    "rkJggg=="
)


async def _sent_or_refused(
    harness: ConformanceHarness,
    backend: Backend,
    request: CompletionRequest,
    field: str,
    call: str = "complete",
) -> SentRequest | None:
    """Send ``request``; the request as sent, or ``None`` when the plugin refused ``field``
    with an ``InvalidRequestError`` naming it and sent nothing."""
    harness.script_reply(ScriptedReply(text="ok"))
    before = len(harness.sent_requests())
    try:
        await send(backend, request, call)
    except InvalidRequestError as error:
        if not (error.field or "").startswith(field):
            raise
        refusal: InvalidRequestError | None = error
    else:
        refusal = None
    if refusal is None:
        return harness.sent_requests()[-1]
    assert len(harness.sent_requests()) == before, (
        f"the plugin refused {field} ({refusal}) but sent the request anyway"
    )
    return None


def _told(harness: ConformanceHarness, value: object, what: str) -> None:
    """A declared capability needs a harness that can tell what was sent."""
    assert value is not None, (
        f"{type(harness).__name__}.sent_requests() cannot tell {what} (None): a plugin "
        "declaring tool_calling needs a harness that decodes it (contract 3)"
    )


# -- requests -------------------------------------------------------------------------

SAMPLING = {"temperature": 0.3, "top_p": 0.9}


@since(3)
@area("requests")
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("parameter", [*SAMPLING, "stop"])
async def test_sampling_parameters_are_sent(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, parameter: str, call: str
) -> None:
    skip_unless_it_streams(tachikoma_backend, call)
    value: Any = ["END", "STOP HERE"] if parameter == "stop" else SAMPLING[parameter]
    async with tachikoma_backend as backend:
        sent = await _sent_or_refused(
            tachikoma_harness, backend, ask(**{parameter: value}), parameter, call
        )
    if sent is None:
        return  # refused, naming the parameter: the provider cannot take it
    if (sent.stop if parameter == "stop" else sent.sampling) is None:
        pytest.skip(f"{type(tachikoma_harness).__name__} cannot tell the {parameter} sent")
    got: Any = (
        list(sent.stop or ()) if parameter == "stop" else (sent.sampling or {}).get(parameter)
    )
    assert got == value, (
        f"{parameter}={value!r} was not sent to the provider ({call}): sent {got!r}; a "
        "request's sampling parameters and stop sequences must reach the provider, or be "
        "refused with an InvalidRequestError naming them"
    )


@since(3)
@area("requests")
async def test_the_requested_model_is_sent(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    info = tachikoma_backend.info
    others = [model for model in info.available_models if model != info.default_model]
    model = others[0] if others else "tachikoma-conformance-other-model"
    tachikoma_harness.script_reply(ScriptedReply(text="ok"))
    refusal: BackendError | None = None
    async with tachikoma_backend as backend:
        try:
            await backend.complete(ask(model=model))
        except (ModelNotFoundError, InvalidRequestError) as error:
            refusal = error
    if refusal is not None:
        # Refusing a model the backend knows it does not serve is fine; sending the
        # default instead is not.
        sent = tachikoma_harness.sent_requests()
        assert not sent, f"the model {model!r} was refused ({refusal}) but a request was sent"
        return
    sent_model = tachikoma_harness.sent_requests()[-1].model
    assert sent_model == model, (
        f"the request asked for model {model!r} but {sent_model!r} was sent: the request's "
        "model was ignored in favour of the configured default"
    )


TOOL_CHOICES = {
    "auto": ToolChoice.auto(),
    "none": ToolChoice.none(),
    "required": ToolChoice.required(),
    "tool": ToolChoice.tool("search_files"),
}


@since(3)
@area("requests")
@requires("tool_calling")
@pytest.mark.parametrize("mode", list(TOOL_CHOICES))
async def test_tool_choice_is_sent(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, mode: str
) -> None:
    choice = TOOL_CHOICES[mode]
    request = ask("Find TODOs").with_tools([READ_FILE, SEARCH], choice)
    async with tachikoma_backend as backend:
        sent = await _sent_or_refused(tachikoma_harness, backend, request, "tool_choice")
    if sent is None:
        assert mode not in ("auto", "none"), f"tool_choice {mode} was refused; every provider can"
        return
    _told(tachikoma_harness, sent.tool_choice, "the tool_choice sent")
    assert sent.tool_choice is not None, "checked by _told"
    if mode == "none" and not sent.tools:
        return  # sending no tools says "none" too
    assert sent.tool_choice == choice, (
        f"tool_choice {mode!r} was sent as {sent.tool_choice.mode!r}"
        + (f" ({sent.tool_choice.name})" if sent.tool_choice.name else "")
        + ": a tool choice the provider cannot honour must be refused, not changed"
    )


def _definition_problems(sent: ToolDefinition, wanted: ToolDefinition) -> list[str]:
    problems = []
    if sent.description != wanted.description:
        problems.append(f"description {sent.description!r} instead of {wanted.description!r}")
    if sent.parameters.required != wanted.parameters.required:
        problems.append(
            f"the 'required' list was sent as {sent.parameters.required} instead of "
            f"{wanted.parameters.required}"
        )
    if sent.parameters.properties != wanted.parameters.properties:
        problems.append(
            f"the parameter schemas differ: {sent.parameters.properties} instead of "
            f"{wanted.parameters.properties}"
        )
    return problems


@since(3)
@area("requests")
@requires("tool_calling")
async def test_tool_definitions_are_sent_whole(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tools = [READ_FILE, SEARCH, LIST_FILES]
    async with tachikoma_backend as backend:
        sent = await _sent_or_refused(
            tachikoma_harness, backend, ask("Find TODOs").with_tools(tools), "tools"
        )
    assert sent is not None, "plain tool definitions must not be refused"
    _told(tachikoma_harness, sent.tool_definitions, "the tool definitions sent")
    by_name = {tool.name: tool for tool in sent.tool_definitions or ()}
    assert list(by_name) == [tool.name for tool in tools], (
        f"tools {[tool.name for tool in tools]} were offered but {list(by_name)} were sent"
    )
    for wanted in tools:
        problems = _definition_problems(by_name[wanted.name], wanted)
        assert not problems, f"tool {wanted.name!r} was not sent whole: " + "; ".join(problems)


@since(3)
@area("requests")
async def test_metadata_is_sent(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    request = ask(metadata={"user_id": "user-42", "trace": "t-1"})
    async with tachikoma_backend as backend:
        sent = await _sent_or_refused(tachikoma_harness, backend, request, "metadata")
    if sent is None:
        return
    if sent.metadata is None:
        pytest.skip(f"{type(tachikoma_harness).__name__}: the provider takes no request metadata")
    assert sent.metadata.get("user_id") == "user-42", (
        f"metadata user_id='user-42' was lost: the provider received {dict(sent.metadata)} "
        "(user_id is the portable key; a provider with a metadata field must receive it)"
    )


def _rich_request(tool_calling: bool) -> CompletionRequest:
    request = CompletionRequest(
        messages=[Message.system("Be brief."), Message.user("What changed?")],
        max_tokens=100,
        temperature=0.2,
        stop=["END"],
        metadata={"user_id": "user-42"},
    )
    return request.with_tools([SEARCH], ToolChoice.auto()) if tool_calling else request


def _differences(plain: SentRequest, streamed: SentRequest) -> list[str]:
    names = [f.name for f in dataclasses.fields(SentRequest) if f.name != "stream"]
    found = [name for name in names if getattr(plain, name) != getattr(streamed, name)]
    if "messages" in found:
        roles = [m.role for m in streamed.messages]
        if Role.SYSTEM in [m.role for m in plain.messages] and Role.SYSTEM not in roles:
            found[found.index("messages")] = "messages (the system prompt was dropped)"
    return found


@since(3)
@area("requests")
@requires("streaming")
async def test_a_streamed_request_sends_what_a_plain_one_does(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    async with tachikoma_backend as backend:
        request = _rich_request(backend.info.capabilities.tool_calling)
        tachikoma_harness.script_reply(ScriptedReply(text="ok"))
        tachikoma_harness.script_reply(ScriptedReply(text="ok"))
        await backend.complete(request)
        await send(backend, request, "stream")
    plain, streamed = tachikoma_harness.sent_requests()[-2:]
    assert streamed.stream, "a streamed request must be sent as a stream"
    assert not plain.stream, "a plain request must not be sent as a stream"
    differences = _differences(plain, streamed)
    assert not differences, (
        "the same request was sent differently when streaming: "
        + ", ".join(differences)
        + " differ(s)"
    )


def _turn_words(messages: Sequence[Message]) -> list[tuple[str, list[str]]]:
    """Consecutive same-role turns as one, by their words: merging two user turns into one
    message is fine, losing or gluing their text together is not."""
    runs: list[tuple[str, list[str]]] = []
    for message in messages:
        parts = [message.content] if isinstance(message.content, str) else message.content
        words = [
            word
            for part in parts
            if isinstance(part, (str, TextPart))
            for word in (part if isinstance(part, str) else part.text).split()
        ]
        if runs and runs[-1][0] == message.role.value:
            runs[-1][1].extend(words)
        else:
            runs.append((message.role.value, words))
    return runs


@since(3)
@area("requests")
async def test_consecutive_user_turns_are_all_sent(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    conversation = [
        Message.system("Be brief."),
        Message.user("first question"),
        Message.user("second question"),
        Message.assistant("an answer"),
        Message.user("third question"),
    ]
    tachikoma_harness.script_reply(ScriptedReply(text="ok"))
    async with tachikoma_backend as backend:
        await backend.complete(CompletionRequest(messages=conversation))
    sent = _turn_words(tachikoma_harness.sent_requests()[-1].messages)
    assert sent == _turn_words(conversation), (
        f"two user turns in a row were merged wrongly or dropped: the provider received {sent}"
    )


def _tool_results(sent: SentRequest) -> dict[str, str]:
    return {m.tool_call_id or "": m.text for m in sent.messages if m.role is Role.TOOL}


@since(3)
@area("requests")
@requires("tool_calling")
async def test_tool_results_are_paired_with_their_calls_by_id(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    conversation = [
        Message.user("Read alpha and beta"),
        Message.assistant("", tool_calls=[ALPHA, BETA]),
        # The results come back in the other order: pairing is by id, not position.
        Message.tool_result(ToolResult.success(BETA.id, BETA.name, "beta contents")),
        Message.tool_result(ToolResult.success(ALPHA.id, ALPHA.name, "alpha contents")),
    ]
    tachikoma_harness.script_reply(ScriptedReply(text="ok"))
    async with tachikoma_backend as backend:
        await backend.complete(CompletionRequest(messages=conversation, tools=[READ_FILE]))
    results = _tool_results(tachikoma_harness.sent_requests()[-1])
    wanted = {ALPHA.id: "alpha contents", BETA.id: "beta contents"}
    missing = [call_id for call_id in wanted if call_id not in results]
    assert not missing, f"the tool result for {', '.join(missing)} was not sent (dropped)"
    assert results == wanted, (
        f"tool results were sent as {results}, expected {wanted}: results are paired with "
        "their calls by position instead of by id"
    )


@since(3)
@area("requests")
@requires("tool_calling")
async def test_assistant_text_next_to_tool_calls_is_sent(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    conversation = [
        Message.user("Read /tmp/a.txt"),
        Message.assistant("Let me read that file.", tool_calls=[CALL]),
        Message.tool_result(ToolResult.success(CALL.id, CALL.name, "hello")),
    ]
    tachikoma_harness.script_reply(ScriptedReply(text="ok"))
    async with tachikoma_backend as backend:
        await backend.complete(CompletionRequest(messages=conversation, tools=[READ_FILE]))
    assistant = [
        m for m in tachikoma_harness.sent_requests()[-1].messages if m.role is Role.ASSISTANT
    ]
    assert assistant, "the assistant turn was not sent back"
    assert calls_summary(assistant[0].tool_calls) == calls_summary([CALL]), (
        "the assistant's tool calls were not sent back"
    )
    assert assistant[0].text == "Let me read that file.", (
        f"the assistant's text was lost when it came with tool calls: sent {assistant[0].text!r}"
    )


def _images(messages: Sequence[Message]) -> list[ImagePart]:
    found = []
    for message in messages:
        parts = [] if isinstance(message.content, str) else message.content
        for part in parts:
            if isinstance(part, ImagePart):
                found.append(part)
            elif isinstance(part, ToolResult):
                found.extend(p for p in part.content.parts if isinstance(p, ImagePart))
    return found


@since(3)
@area("requests")
@requires("vision")
@pytest.mark.parametrize("media_type", ["image/jpeg", "image/png"])
async def test_an_image_keeps_its_media_type(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, media_type: str
) -> None:
    data = JPEG if media_type == "image/jpeg" else PNG
    image = ImagePart.from_base64(data, media_type)
    request = CompletionRequest(messages=[Message.user([TextPart(text="What is this?"), image])])
    async with tachikoma_backend as backend:
        sent = await _sent_or_refused(tachikoma_harness, backend, request, "messages")
    assert sent is not None, f"a base64 {media_type} image must not be refused by a vision plugin"
    images = _images(sent.messages)
    assert images, "the image was not sent (dropped)"
    assert (images[0].media_type, images[0].data) == (media_type, data), (
        f"a base64 {media_type} image was sent labelled {images[0].media_type!r}"
    )


@since(3)
@area("requests")
@requires("vision", "tool_calling")
async def test_an_image_inside_a_tool_result_is_sent(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    content = ToolResultContent(
        parts=[TextPart(text="the chart:"), ImagePart.from_base64(PNG, "image/png")]
    )
    conversation = [
        Message.user("Draw the chart"),
        Message.assistant("", tool_calls=[CALL]),
        Message.tool_result(ToolResult(call_id=CALL.id, name=CALL.name, content=content)),
    ]
    request = CompletionRequest(messages=conversation, tools=[READ_FILE])
    async with tachikoma_backend as backend:
        sent = await _sent_or_refused(tachikoma_harness, backend, request, "messages")
    if sent is None:
        return  # refused, naming the message: the provider takes no images in tool results
    assert _images(sent.messages), (
        "the image inside a tool result was dropped: send it, or refuse the request with an "
        "InvalidRequestError naming the message"
    )


# -- responses ------------------------------------------------------------------------

FINISHES = [FinishReason.LENGTH, FinishReason.STOP_SEQUENCE, FinishReason.CONTENT_FILTER]


async def _both_ways(
    harness: ConformanceHarness,
    backend: Backend,
    reply: ScriptedReply,
    call: str,
    request: CompletionRequest | None = None,
) -> CompletionResponse:
    skip_unless_it_streams(backend, call)
    harness.script_reply(reply)
    async with backend:
        return await send(backend, request or ask(), call)


@since(3)
@area("responses")
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("reason", FINISHES, ids=[reason.value for reason in FINISHES])
async def test_finish_reason_is_reported(
    tachikoma_harness: ConformanceHarness,
    tachikoma_backend: Backend,
    reason: FinishReason,
    call: str,
) -> None:
    if reason not in tachikoma_harness.finish_reasons:
        pytest.skip(f"the provider cannot report {reason.value} (harness finish_reasons)")
    reply = ScriptedReply(text="Cut short", finish_reason=reason)
    response = await _both_ways(tachikoma_harness, tachikoma_backend, reply, call)
    assert response.finish_reason is reason, (
        f"a {reason.value} finish was reported as {response.finish_reason} ({call})"
    )


@since(3)
@area("responses")
@pytest.mark.parametrize("call", CALLS)
async def test_usage_is_reported_whole(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, call: str
) -> None:
    every = {
        "input_tokens": 30,
        "output_tokens": 12,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 7,
        "reasoning_tokens": 3,
    }
    usage = Usage(**{name: every[name] for name in tachikoma_harness.usage_fields})
    response = await _both_ways(
        tachikoma_harness, tachikoma_backend, ScriptedReply("ok", usage=usage), call
    )
    lost = [
        f"{name}={getattr(response.usage, name)} (the provider said {getattr(usage, name)})"
        for name in sorted(tachikoma_harness.usage_fields)
        if getattr(response.usage, name) != getattr(usage, name)
    ]
    assert not lost, f"usage reported wrongly ({call}): " + ", ".join(lost)


@since(3)
@area("responses")
@requires("tool_calling")
@pytest.mark.parametrize("call", CALLS)
async def test_text_before_a_tool_call_is_kept(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, call: str
) -> None:
    reply = ScriptedReply(text="Let me look that up.", tool_calls=[CALL])
    request = ask("Read /tmp/a.txt").with_tools([READ_FILE])
    response = await _both_ways(tachikoma_harness, tachikoma_backend, reply, call, request)
    assert calls_summary(response.tool_calls) == calls_summary([CALL]), "the tool call was lost"
    assert response.content == reply.text, (
        f"the text that came before the tool call was lost ({call}): got {response.content!r}"
    )


@since(3)
@area("responses")
@requires("tool_calling")
@pytest.mark.parametrize("call", CALLS)
async def test_a_tool_call_without_arguments_completes(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, call: str
) -> None:
    bare = ToolCall.from_arguments("call_list", "list_files", {})
    reply = ScriptedReply(tool_calls=[bare])
    request = ask("List the files").with_tools([LIST_FILES])
    response = await _both_ways(tachikoma_harness, tachikoma_backend, reply, call, request)
    got = [(c.id, c.name, c.arguments) for c in response.tool_calls]
    assert [(c.id, c.name) for c in response.tool_calls] == [(bare.id, bare.name)], (
        f"a tool call without arguments was lost ({call}): got {got}"
    )
    text = response.tool_calls[0].arguments
    try:  # the text itself, as users hand it to json.loads: "" is no JSON object
        arguments = json.loads(text)
    except ValueError:
        arguments = None
    assert arguments == {}, (
        f"a tool call without arguments was left unterminated ({call}): its arguments are "
        f"{text!r}, not the JSON object '{{}}'"
    )


@since(3)
@area("errors")
@pytest.mark.parametrize("call", CALLS)
async def test_a_fractional_retry_after_is_kept(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, call: str
) -> None:
    skip_unless_it_streams(tachikoma_backend, call)
    tachikoma_harness.script_failure(ScriptedFailure(ErrorKind.RATE_LIMIT, retry_after=1.5))
    before = tachikoma_harness.attempts()
    async with tachikoma_backend as backend:
        send: Callable[[CompletionRequest], Awaitable[Any]] = (
            backend.complete if call == "complete" else backend.complete_stream
        )
        with anyio.fail_after(10), pytest.raises(BackendError) as raised:
            await send(ask())
    assert_no_hidden_retry(tachikoma_harness, before)
    assert isinstance(raised.value, RateLimitError), (
        f"a 429 must raise RateLimitError, got {type(raised.value).__name__}"
    )
    assert raised.value.retry_after == 1.5, (
        f"a retry-after of 1.5 s was reported as retry_after={raised.value.retry_after} "
        "(truncated to whole seconds?)"
    )
