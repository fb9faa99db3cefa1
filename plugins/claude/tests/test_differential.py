"""Differential: for the same recorded bytes, we agree with Anthropic's official SDK.

The SDK (test-only; the plugin never imports it) reads each transcript through its own
HTTP client and stream accumulator; the backend reads the same bytes through its wire
layer. Final text, tool calls (name and parsed input), stop reason and usage must match.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pytest_httpx import HTTPXMock

from tachikoma_backend_claude import ClaudeBackend, ClaudeBackendConfig
from tachikoma_backends_core import CompletionRequest, CompletionResponse, FinishReason, Message

anthropic = pytest.importorskip(
    "anthropic",
    reason="the differential test compares with the official SDK: pip install anthropic",
)

pytestmark = pytest.mark.anyio

TRANSCRIPTS = Path(__file__).parent / "transcripts"
BASE = "http://claude.differential"
MODEL = "claude-sonnet-5-5"  # any current id: the SDK warns about deprecated ones
STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "tool_use": FinishReason.TOOL_CALLS,
    "max_tokens": FinishReason.LENGTH,
}


def sdk_http_module() -> Any:
    """The HTTP library this SDK version is built on (httpx, or httpx2 in SDK 2.x)."""
    client = next(
        c for c in anthropic.DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient"
    )
    return importlib.import_module(client.__module__.split(".")[0])


async def sdk_reads(body: bytes, *, stream: bool) -> Any:
    http = sdk_http_module()
    content_type = "text/event-stream" if stream else "application/json"

    def answer(request: Any) -> Any:
        return http.Response(200, headers={"content-type": content_type}, content=body)

    async with http.AsyncClient(transport=http.MockTransport(answer)) as http_client:
        client = anthropic.AsyncAnthropic(
            api_key="sk-ant-differential", base_url=BASE, http_client=http_client, max_retries=0
        )
        arguments: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "What's the weather?"}],
        }
        if not stream:
            return await client.messages.create(**arguments)
        async with client.messages.stream(**arguments) as events:
            return await events.get_final_message()


async def we_read(httpx_mock: HTTPXMock, body: bytes, *, stream: bool) -> CompletionResponse:
    httpx_mock.add_response(content=body)
    request = CompletionRequest(messages=[Message.user("What's the weather?")], model=MODEL)
    config = ClaudeBackendConfig(api_key=SecretStr("sk-ant-differential"), base_url=BASE)
    async with ClaudeBackend(config) as backend:
        if not stream:
            return await backend.complete(request)
        async with await backend.complete_stream(request) as chunks:
            return await chunks.collect()


def assert_same(ours: CompletionResponse, theirs: Any) -> None:
    text = "".join(block.text for block in theirs.content if block.type == "text")
    calls = [(b.id, b.name, b.input) for b in theirs.content if b.type == "tool_use"]
    assert ours.text == text
    assert [(c.id, c.name, c.parsed_arguments()) for c in ours.tool_calls] == calls
    assert ours.finish_reason is STOP_REASONS[theirs.stop_reason]
    usage = theirs.usage
    assert (
        ours.usage.input_tokens,
        ours.usage.output_tokens,
        ours.usage.cache_creation_input_tokens,
        ours.usage.cache_read_input_tokens,
    ) == (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens or 0,
        usage.cache_read_input_tokens or 0,
    )


@pytest.mark.parametrize("name", ["text_stream.sse", "tool_use_stream.sse", "thinking_stream.sse"])
async def test_streams_agree_with_the_sdk(httpx_mock: HTTPXMock, name: str) -> None:
    body = (TRANSCRIPTS / name).read_bytes()
    theirs = await sdk_reads(body, stream=True)
    ours = await we_read(httpx_mock, body, stream=True)
    assert_same(ours, theirs)
    if name == "tool_use_stream.sse":
        assert theirs.usage.cache_read_input_tokens == 2048, "the transcript has cache usage"
        assert len(ours.tool_calls) == 2


@pytest.mark.parametrize("name", ["text_message.json", "tool_use_message.json"])
async def test_messages_agree_with_the_sdk(httpx_mock: HTTPXMock, name: str) -> None:
    body = (TRANSCRIPTS / name).read_bytes()
    theirs = await sdk_reads(body, stream=False)
    ours = await we_read(httpx_mock, body, stream=False)
    assert_same(ours, theirs)
