"""``tachikoma complete``: one user message, the reply streamed to standard output.

While nothing has arrived, a status line on a terminal says what it waits for, and each
retry of the core's loop prints a line (see `_progress`); the reply itself is the only
thing written to standard output, or, with ``--json``, the whole response as one JSON
document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tachikoma_backends_core import registry

from ._progress import RetryLines, StatusLine, status_line
from ._terminal import EXIT_OK, Terminal

if TYPE_CHECKING:
    from tachikoma_backends_core.backend import Backend
    from tachikoma_backends_core.completion import CompletionRequest, CompletionResponse

__all__ = ["Ask", "complete"]


@dataclass(frozen=True)
class Ask:
    """What the command line asked for."""

    backend: str
    prompt: str
    settings: dict[str, str]
    model: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stream: bool = True
    verbose: bool = False
    as_json: bool = False

    def request(self) -> CompletionRequest:
        from tachikoma_backends_core.completion import CompletionRequest
        from tachikoma_backends_core.messages import Message

        system = [Message.system(self.system)] if self.system else []
        return CompletionRequest(
            messages=[*system, Message.user(self.prompt)],
            model=self.model,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )


async def _reply(
    ask: Ask, backend: Backend, request: CompletionRequest, line: StatusLine, terminal: Terminal
) -> CompletionResponse:
    if not ask.stream:
        response = await backend.complete(request)
        line.clear()
        if not ask.as_json:
            terminal.print(response.text)
        return response
    async with await backend.complete_stream(request) as stream:
        async for chunk in stream:
            line.clear()  # the first token: done waiting
            if chunk.delta and not ask.as_json:
                terminal.out.write(chunk.delta)
                terminal.out.flush()
        response = await stream.collect()
    if not ask.as_json:
        terminal.print()
    return response


async def complete(terminal: Terminal, ask: Ask) -> int:
    request = ask.request()  # an invalid one fails here, before any backend is made
    async with registry.create(ask.backend, **ask.settings) as backend:
        hooks = getattr(backend, "hooks", None)  # a ManagedBackend's: where retries show
        async with status_line(terminal, f"waiting for {ask.backend}") as line:
            retries = RetryLines(line)
            if hooks is not None:
                hooks.register(retries)
            try:
                response = await _reply(ask, backend, request, line, terminal)
            finally:
                if hooks is not None:
                    hooks.unregister(retries)
    if ask.as_json:
        terminal.print(json.dumps(response.model_dump(mode="json")))
    else:
        for call in response.tool_calls:
            terminal.print(f"[tool call {call.id}] {call.name}({call.arguments})")
    if ask.verbose:
        usage = response.usage
        print(
            f"[{response.model}: finish={response.finish_reason.value}, "
            f"tokens in={usage.input_tokens} out={usage.output_tokens}]",
            file=terminal.err,
        )
    return EXIT_OK
