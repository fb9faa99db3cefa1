"""Differential: for the same recorded bytes, we agree with OpenAI's official SDK.

The SDK (test-only; the plugin never imports it) reads each answer through its own HTTP
client: a ``chat.completion`` body through ``chat.completions.create``, a chunk stream
through the ``chat.completions.stream`` helper and its ``get_final_completion``, which
accumulates the chunks as the SDK does. The backend reads the same bytes through its
wire layer. Final text, tool calls (id, name and parsed arguments), finish reason and
usage must match.

The answers are built with the plugin's scripting helpers (a text answer, one tool call,
three parallel calls whose fragments interleave) and, so that the comparison does not
rest on our own idea of the format alone, written out by hand as OpenAI sends them.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import anyio
import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from tachikoma_backend_openai import OpenAIBackend, OpenAIBackendConfig
from tachikoma_backend_openai._scripting import completion_body, sse_bytes, stream_chunks
from tachikoma_backends_core import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    Message,
    ToolCall,
    Usage,
)

openai = pytest.importorskip(
    "openai",
    reason="the differential test compares with the official SDK: pip install openai",
)

pytestmark = pytest.mark.anyio

BASE = "http://openai.differential/v1"
KEY = "sk-openai-differential"
MODEL = "gpt-5.4-mini"
ANSWERING = "gpt-5.4-mini-2026-03-17"
FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "tool_calls": FinishReason.TOOL_CALLS,
    "length": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER,
}
USAGE = Usage(57, 31, cache_read_input_tokens=1152, reasoning_tokens=12)
WEATHER = ToolCall(
    id="call_Wx7bq2", name="get_weather", arguments='{"city": "Paris", "unit": "celsius"}'
)
PARALLEL = [
    ToolCall(id="call_a1", name="get_weather", arguments='{"city": "Paris", "days": 3}'),
    ToolCall(id="call_b2", name="get_weather", arguments='{"city": "Tokyo", "days": 1}'),
    ToolCall(
        id="call_c3",
        name="search_flights",
        arguments='{"from": "CDG", "to": "HND", "when": {"month": "May", "flexible": true}}',
    ),
]
# (text, tool calls, finish_reason) of each scripted answer.
ANSWERS: dict[str, tuple[str, list[ToolCall], str]] = {
    "text": ("Paris is sunny today, 24 °C — «parfait» for a walk. 🌞", [], "stop"),
    "one-tool-call": ("", [WEATHER], "tool_calls"),
    "parallel-tool-calls": ("Let me check all three.", PARALLEL, "tool_calls"),
}

# A stream as OpenAI sends it, by hand: every chunk carries "usage": null and an
# "obfuscation" pad, a system fingerprint and service tier; text, then two parallel
# calls whose argument fragments interleave; the finish on a chunk of its own; the
# usage-only chunk with its details; [DONE].
_HEAD = (
    '"id":"chatcmpl-CxHand01","object":"chat.completion.chunk","created":1764000000,'
    '"model":"gpt-5.4-mini-2026-03-17","service_tier":"default",'
    '"system_fingerprint":"fp_a1b2c3d4e5"'
)
HAND_WRITTEN_STREAM = (
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{"role":"assistant","content":"",'
    f'"refusal":null}},"logprobs":null,"finish_reason":null}}],"usage":null,"obfuscation":"kP"}}\n\n'
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{"content":"Checking"}},"logprobs":null,'
    f'"finish_reason":null}}],"usage":null,"obfuscation":"Xq9"}}\n\n'
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{"content":" both."}},"logprobs":null,'
    f'"finish_reason":null}}],"usage":null,"obfuscation":"a"}}\n\n'
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,'
    f'"id":"call_Paris01","type":"function","function":{{"name":"get_weather","arguments":""}}}}]}},'
    f'"logprobs":null,"finish_reason":null}}],"usage":null,"obfuscation":"Zz"}}\n\n'
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,'
    f'"function":{{"arguments":"{{\\"ci"}}}}]}},"logprobs":null,"finish_reason":null}}],'
    f'"usage":null,"obfuscation":"m"}}\n\n'
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":1,'
    f'"id":"call_Rome02","type":"function","function":{{"name":"get_time","arguments":""}}}}]}},'
    f'"logprobs":null,"finish_reason":null}}],"usage":null,"obfuscation":"Q"}}\n\n'
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":1,'
    f'"function":{{"arguments":"{{\\"zone\\": \\"Europe/"}}}}]}},"logprobs":null,'
    f'"finish_reason":null}}],"usage":null,"obfuscation":"r4"}}\n\n'
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,'
    f'"function":{{"arguments":"ty\\": \\"Paris\\"}}"}}}}]}},"logprobs":null,'
    f'"finish_reason":null}}],"usage":null,"obfuscation":"p0"}}\n\n'
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":1,'
    f'"function":{{"arguments":"Rome\\"}}"}}}}]}},"logprobs":null,"finish_reason":null}}],'
    f'"usage":null,"obfuscation":"Jk"}}\n\n'
    f'data: {{{_HEAD},"choices":[{{"index":0,"delta":{{}},"logprobs":null,'
    f'"finish_reason":"tool_calls"}}],"usage":null,"obfuscation":"x"}}\n\n'
    f'data: {{{_HEAD},"choices":[],"usage":{{"prompt_tokens":2130,"completion_tokens":96,'
    f'"total_tokens":2226,"prompt_tokens_details":{{"cached_tokens":1920,"audio_tokens":0}},'
    f'"completion_tokens_details":{{"reasoning_tokens":40,"audio_tokens":0,'
    f'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}},"obfuscation":"wW"}}\n\n'
    "data: [DONE]\n\n"
)

# The same answer, not streamed, by hand.
HAND_WRITTEN_COMPLETION = """{
  "id": "chatcmpl-CxHand02",
  "object": "chat.completion",
  "created": 1764000000,
  "model": "gpt-5.4-mini-2026-03-17",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Checking both.",
        "refusal": null,
        "annotations": [],
        "tool_calls": [
          {
            "id": "call_Paris01",
            "type": "function",
            "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}
          },
          {
            "id": "call_Rome02",
            "type": "function",
            "function": {"name": "get_time", "arguments": "{\\"zone\\": \\"Europe/Rome\\"}"}
          }
        ]
      },
      "logprobs": null,
      "finish_reason": "tool_calls"
    }
  ],
  "usage": {
    "prompt_tokens": 2130,
    "completion_tokens": 96,
    "total_tokens": 2226,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {
      "reasoning_tokens": 40,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_a1b2c3d4e5"
}"""


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither side may be steered by the developer's OPENAI_* or AZURE_* variables."""
    for variable in OpenAIBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)


def sdk_http_module() -> Any:
    """The HTTP library this SDK version is built on (httpx2 in SDK 3.x, httpx before)."""
    client = next(c for c in openai.DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient")
    return importlib.import_module(client.__module__.split(".")[0])


async def sdk_reads(body: bytes, *, stream: bool) -> Any:
    """What the SDK makes of ``body``: its ``ChatCompletion`` (accumulated, for a stream).

    The SDK runs on an asyncio loop of its own, in a worker thread: its stream stops
    reading at ``[DONE]`` and leaves its own generators suspended, which trio reports
    (an error here) when they are collected, while asyncio closes them quietly as the
    loop ends. That is the SDK's business; the backend runs under both loops.
    """
    return await anyio.to_thread.run_sync(lambda: asyncio.run(_sdk_reads(body, stream=stream)))


async def _sdk_reads(body: bytes, *, stream: bool) -> Any:
    http = sdk_http_module()
    content_type = "text/event-stream" if stream else "application/json"

    def answer(request: Any) -> Any:
        return http.Response(200, headers={"content-type": content_type}, content=body)

    async with http.AsyncClient(transport=http.MockTransport(answer)) as http_client:
        client = openai.AsyncOpenAI(
            api_key=KEY, base_url=BASE, http_client=http_client, max_retries=0
        )
        arguments: dict[str, Any] = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "What's the weather?"}],
        }
        if not stream:
            return await client.chat.completions.create(**arguments)
        async with client.chat.completions.stream(
            **arguments, stream_options={"include_usage": True}
        ) as events:
            return await events.get_final_completion()


async def we_read(httpx_mock: HTTPXMock, body: bytes, *, stream: bool) -> CompletionResponse:
    httpx_mock.add_response(url=f"{BASE}/chat/completions", content=body)
    request = CompletionRequest(messages=[Message.user("What's the weather?")], model=MODEL)
    config = OpenAIBackendConfig(api_key=SecretStr(KEY), base_url=BASE)
    async with OpenAIBackend(config) as backend:
        if not stream:
            return await backend.complete(request)
        async with await backend.complete_stream(request) as chunks:
            return await chunks.collect()


def assert_same(ours: CompletionResponse, theirs: Any) -> None:
    choice = theirs.choices[0]
    message = choice.message
    assert ours.text == (message.content or "")
    calls = [
        (call.id, call.function.name, json.loads(call.function.arguments))
        for call in message.tool_calls or ()
    ]
    assert [(c.id, c.name, c.parsed_arguments()) for c in ours.tool_calls] == calls
    assert ours.finish_reason is FINISH_REASONS[choice.finish_reason]
    usage = theirs.usage
    assert usage is not None
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
    reasoning = (
        usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else 0
    )
    assert (
        ours.usage.input_tokens + ours.usage.cache_read_input_tokens,
        ours.usage.output_tokens,
        ours.usage.cache_read_input_tokens,
        ours.usage.reasoning_tokens,
    ) == (usage.prompt_tokens, usage.completion_tokens, cached or 0, reasoning or 0)


def scripted(name: str, *, stream: bool) -> bytes:
    text, calls, finish = ANSWERS[name]
    if stream:
        chunks = stream_chunks(
            model=ANSWERING,
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=USAGE,
            interleave=True,
        )
        return sse_bytes(chunks)
    body = completion_body(
        model=ANSWERING, text=text, tool_calls=calls, finish_reason=finish, usage=USAGE
    )
    return json.dumps(body).encode()


@pytest.mark.parametrize("name", list(ANSWERS))
async def test_streams_agree_with_the_sdk(httpx_mock: HTTPXMock, name: str) -> None:
    body = scripted(name, stream=True)
    theirs = await sdk_reads(body, stream=True)
    ours = await we_read(httpx_mock, body, stream=True)
    assert_same(ours, theirs)
    assert len(ours.tool_calls) == len(ANSWERS[name][1])
    assert ours.usage == USAGE


@pytest.mark.parametrize("name", list(ANSWERS))
async def test_completions_agree_with_the_sdk(httpx_mock: HTTPXMock, name: str) -> None:
    body = scripted(name, stream=False)
    theirs = await sdk_reads(body, stream=False)
    ours = await we_read(httpx_mock, body, stream=False)
    assert_same(ours, theirs)
    assert ours.usage == USAGE


def test_the_parallel_calls_really_interleave() -> None:
    """The scripted stream sends a call's fragments between another's, not one by one."""
    order = [
        fragment["index"]
        for chunk in stream_chunks(model=ANSWERING, tool_calls=PARALLEL, interleave=True)
        for choice in chunk["choices"]
        for fragment in choice["delta"].get("tool_calls", ())
    ]
    assert order[:3] == [0, 1, 2]
    assert order != sorted(order)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "completion"])
async def test_a_hand_written_answer_agrees_with_the_sdk(
    httpx_mock: HTTPXMock, stream: bool
) -> None:
    body = (HAND_WRITTEN_STREAM if stream else HAND_WRITTEN_COMPLETION).encode()
    theirs = await sdk_reads(body, stream=stream)
    ours = await we_read(httpx_mock, body, stream=stream)
    assert_same(ours, theirs)
    # The transcript's own numbers, so that both sides reading nothing cannot pass.
    assert ours.text == "Checking both."
    assert [(c.id, c.name, c.parsed_arguments()) for c in ours.tool_calls] == [
        ("call_Paris01", "get_weather", {"city": "Paris"}),
        ("call_Rome02", "get_time", {"zone": "Europe/Rome"}),
    ]
    assert ours.usage == Usage(210, 96, cache_read_input_tokens=1920, reasoning_tokens=40)
    assert ours.model == ANSWERING
