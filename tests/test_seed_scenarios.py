"""The seed's acceptance scenarios (075, sections 2 and 3), translated to the Python API.

One test per seed scenario, named as in the seed, against the ``mock`` plugin and the public
names of ``tachikoma_backends_core``. Async scenarios run under asyncio and trio.

Sections 5 (rate limiting) and 6 (context tracking) need core alone and live with core's
tests, under the seed's names: ``core/tests/test_rate_limit.py``
(``test_rate_limiter_allows_requests``, ``..._blocks_on_limit``, ``..._token_limit``,
``test_adaptive_rate_limiter``) and ``core/tests/test_context.py``
(``test_context_usage_calculation``, ``test_context_state_thresholds``,
``test_context_tracker``, ``test_context_compression``).
"""

from __future__ import annotations

import pytest

from tachikoma_backend_mock import MockBackend, MockResponse
from tachikoma_backends_core import (
    CompletionRequest,
    FinishReason,
    Message,
    NetworkError,
    RateLimitError,
    ToolCall,
    ToolDefinition,
    ToolResult,
    all_predefined_tools,
)

# --- 2. Backend trait tests ---------------------------------------------------------------


@pytest.mark.anyio
async def test_basic_completion() -> None:
    backend = MockBackend()
    backend.queue_response(MockResponse.text("Hello, world!"))

    request = CompletionRequest(messages=[Message.user("Hi")])
    response = await backend.complete(request)

    assert response.content == "Hello, world!"
    assert response.finish_reason == FinishReason.STOP


@pytest.mark.anyio
async def test_tool_calling() -> None:
    backend = MockBackend()
    backend.queue_response(
        MockResponse.text("").with_tool_call(
            ToolCall(id="call_1", name="read_file", arguments='{"path": "/tmp/test"}')
        )
    )

    request = CompletionRequest(messages=[Message.user("Read /tmp/test")])
    response = await backend.complete(request)

    assert len(response.tool_calls) == 1
    assert response.tool_calls[0].name == "read_file"


@pytest.mark.anyio
async def test_streaming() -> None:
    backend = MockBackend()
    backend.queue_response(MockResponse.text("Streaming response"))

    request = CompletionRequest(messages=[Message.user("Stream test")])
    stream = await backend.complete_stream(request)

    content = ""
    async with stream:
        async for chunk in stream:
            content += chunk.delta

    assert "Streaming" in content


@pytest.mark.anyio
async def test_error_handling() -> None:
    backend = MockBackend()
    backend.set_failure(RateLimitError("Rate limited", retry_after=60))

    request = CompletionRequest(messages=[Message.user("Test")])
    with pytest.raises(RateLimitError) as caught:
        await backend.complete(request)

    assert caught.value.retry_after == 60.0


@pytest.mark.anyio
async def test_health_check() -> None:
    backend = MockBackend()

    assert await backend.health_check()

    backend.set_failure(NetworkError("Connection failed"))
    assert not await backend.health_check()


@pytest.mark.anyio
async def test_request_recording() -> None:
    backend = MockBackend()
    backend.queue_response(MockResponse.text("Response"))

    request = CompletionRequest(messages=[Message.system("You are helpful"), Message.user("Hello")])
    await backend.complete(request)

    recorded = backend.last_request()
    assert recorded is not None
    assert len(recorded.messages) == 2


# --- 3. Tool definition tests -------------------------------------------------------------


def test_tool_definition_builder() -> None:
    tool = (
        ToolDefinition.builder("test_tool")
        .description("A test tool")
        .required_string("input", "The input string")
        .optional_int("count", "Number of items")
        .build()
    )

    assert tool.name == "test_tool"
    assert "input" in tool.parameters.required
    assert "count" not in tool.parameters.required


def test_tool_json_schema() -> None:
    tool = (
        ToolDefinition.builder("read_file")
        .description("Read a file")
        .required_string("path", "File path")
        .build()
    )

    schema = tool.parameters.to_json_schema()
    assert schema["type"] == "object"
    assert isinstance(schema["properties"]["path"], dict)


def test_tool_call_parsing() -> None:
    call = ToolCall(id="call_1", name="test", arguments='{"name": "test", "count": 5}')

    assert call.get_string("name") == "test"
    assert call.get_int("count") == 5


def test_tool_result_formatting() -> None:
    result = ToolResult.success("call_1", "test", "Success!")

    assert result.success
    assert result.content.as_text() == "Success!"


def test_predefined_tools() -> None:
    tools = all_predefined_tools()
    assert tools

    read_tool = next(t for t in tools if t.name == "read_file")
    assert "path" in read_tool.parameters.required
