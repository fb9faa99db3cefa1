"""Request content JSON cannot carry is a typed error naming where it sits (issue 13, defect 4).

Before the HTTP kit serialised bodies itself, httpx did it inside ``send``: a lone
surrogate in text, NaN in a tool schema or a non-JSON value in one raised a bare
``UnicodeEncodeError``/``ValueError``/``TypeError`` from the backend, and through the
registry a ``BackendError`` blaming "a bug in the plugin" and naming no field. Each case
runs against every HTTP plugin, called directly and through ``registry.create``; the
backend points at a closed port, so anything sent would be a ``NetworkError`` instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from tachikoma_backends_core import (
    Backend,
    CompletionRequest,
    InvalidRequestError,
    Message,
    ToolDefinition,
    registry,
)
from tachikoma_backends_core.http.wire_server import closed_port_url
from tachikoma_backends_core.tools import ToolParameters

pytestmark = pytest.mark.anyio

HTTP_PLUGINS = ["claude", "openai", "ollama"]
SETTINGS: dict[str, dict[str, Any]] = {
    "claude": {"api_key": "sk-ant-unsendable-0123456789"},
    "openai": {"api_key": "sk-unsendable-0123456789"},
    "ollama": {},
}


def _tool(schema: dict[str, Any]) -> ToolDefinition:
    return ToolDefinition(
        name="measure", description="Measures.", parameters=ToolParameters(properties={"x": schema})
    )


UNSENDABLE: dict[str, tuple[CompletionRequest, str, str]] = {
    # case: (request, what the message says, where the field path points)
    "lone surrogate in text": (
        CompletionRequest(messages=[Message.user("broken \udc80 text")]),
        "lone surrogate",
        "messages[0]",
    ),
    "NaN in a tool schema": (
        CompletionRequest(
            messages=[Message.user("Hi")],
            tools=[_tool({"type": "number", "maximum": float("nan")})],
        ),
        "NaN or infinity",
        "tools[0]",
    ),
    "infinity in a tool schema": (
        CompletionRequest(
            messages=[Message.user("Hi")],
            tools=[_tool({"type": "number", "minimum": float("-inf")})],
        ),
        "NaN or infinity",
        "tools[0]",
    ),
    "a set in a tool schema": (
        CompletionRequest(
            messages=[Message.user("Hi")], tools=[_tool({"type": "string", "enum": {"a", "b"}})]
        ),
        "a set, which JSON cannot hold",
        "tools[0]",
    ),
}


def _backend(name: str, *, via_registry: bool) -> Backend:
    settings = {**SETTINGS[name], "base_url": closed_port_url(), "max_retries": 0}
    created = registry.create(name, **settings)
    return created if via_registry else created.inner  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("name", HTTP_PLUGINS)
@pytest.mark.parametrize("case", list(UNSENDABLE))
@pytest.mark.parametrize("via_registry", [False, True], ids=["direct", "registry"])
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_unsendable_content_is_a_typed_error_naming_its_field(
    name: str, case: str, via_registry: bool, streamed: bool
) -> None:
    request, says, where = UNSENDABLE[case]
    async with _backend(name, via_registry=via_registry) as backend:
        call = backend.complete_stream if streamed else backend.complete
        with pytest.raises(InvalidRequestError) as raised:
            await call(request)
    error = raised.value
    assert says in error.message
    assert error.field is not None
    assert error.field.startswith(where), error.field
    assert error.provider == name
    assert not error.retryable
    assert "bug in the plugin" not in error.message
