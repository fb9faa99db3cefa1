"""Stream lifecycle invariants: what every stream of chunks must look like, checked.

Other frameworks' shared tests compare only the collected result, so a stream that
reports usage before its content, finishes twice or renames a tool call half-way
passes them and then breaks an application that renders chunks as they come. These
checks look at the chunks themselves and name the invariant that broke.

Examples:
    >>> from tachikoma_backends_core.completion import CompletionChunk, FinishReason, Usage
    >>> chunks = [CompletionChunk(delta="Hi"), CompletionChunk(
    ...     delta="", finish_reason=FinishReason.STOP, usage=Usage(1, 1))]
    >>> stream_lifecycle_problems(chunks)
    []
"""

from __future__ import annotations

from collections.abc import Sequence

from tachikoma_backends_core.completion import CompletionChunk
from tachikoma_backends_core.errors import BackendError
from tachikoma_backends_core.streaming import StreamAccumulator

__all__ = ["stream_lifecycle_problems"]


def stream_lifecycle_problems(chunks: Sequence[CompletionChunk]) -> list[str]:
    """Every invariant ``chunks`` break, each as one sentence (empty: all hold).

    1. exactly one chunk carries a finish reason, and it is the last chunk;
    2. usage arrives with or after the finish, never before it, and it does arrive;
    3. a tool call's first fragment carries its id and name, and later fragments of
       the same index never change them;
    4. the deltas add up to a well-formed response (every tool call complete, its
       arguments valid JSON).
    """
    problems: list[str] = []
    finishes = [i for i, chunk in enumerate(chunks) if chunk.finish_reason is not None]
    if len(finishes) != 1:
        problems.append(
            f"exactly one chunk must carry a finish reason; {len(finishes)} did"
            + (f" (chunks {finishes} of {len(chunks)})" if finishes else "")
        )
    elif finishes[0] != len(chunks) - 1:
        problems.append(
            f"the finish must come last; chunk {finishes[0]} of {len(chunks)} carried it"
        )
    first_finish = finishes[0] if finishes else len(chunks)
    early_usage = [i for i, chunk in enumerate(chunks[:first_finish]) if chunk.usage is not None]
    if early_usage:
        problems.append(
            f"usage must arrive with or after the finish, but chunk {early_usage[0]} of "
            f"{len(chunks)} carried usage before the finish (chunk {first_finish})"
        )
    if not any(chunk.usage is not None for chunk in chunks[first_finish:]):
        problems.append("no usage arrived with or after the finish")
    problems.extend(_tool_call_identity_problems(chunks))
    if not problems:
        accumulator = StreamAccumulator(model="conformance")
        for chunk in chunks:
            accumulator.add(chunk)
        try:
            for call in accumulator.response().tool_calls:
                call.parsed_arguments()
        except BackendError as error:
            problems.append(f"the deltas do not add up to a valid response: {error.message}")
    return problems


def _tool_call_identity_problems(chunks: Sequence[CompletionChunk]) -> list[str]:
    problems: list[str] = []
    identity: dict[int, tuple[str | None, str | None]] = {}
    for position, chunk in enumerate(chunks):
        for delta in chunk.tool_call_deltas:
            known = identity.get(delta.index)
            if known is None:
                if not delta.id or not delta.name:
                    problems.append(
                        f"tool call {delta.index} started (chunk {position}) without its "
                        f"{'id' if not delta.id else 'name'}: the first fragment must carry both"
                    )
                identity[delta.index] = (delta.id, delta.name)
                continue
            for label, before, now in (("id", known[0], delta.id), ("name", known[1], delta.name)):
                if now and before and now != before:
                    problems.append(
                        f"tool call {delta.index} changed its {label} from {before!r} to "
                        f"{now!r} at chunk {position}"
                    )
    return problems
