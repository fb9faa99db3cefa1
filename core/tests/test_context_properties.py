"""Property tests: compression keeps every conversation one a provider would accept.

Random conversations (system messages at the start, user and assistant turns, assistant
tool calls answered by 1-3 results, provider usage reports in between) are compressed to
random thresholds; the invariants are checked against a reference written independently
of the tracker.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from tachikoma_backends_core import Message, Role, ToolCall, ToolResult, Usage
from tachikoma_backends_core.context import ContextConfig, ContextTracker
from tachikoma_backends_core.tokens import SimpleTokenCounter


@dataclass(frozen=True)
class Report:
    """A provider's usage report between messages."""

    usage: Usage


Event = Message | Report

texts = st.integers(min_value=0, max_value=120).map(lambda n: "x" * n)


@st.composite
def conversations(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = [Message.system(t) for t in draw(st.lists(texts, max_size=2))]
    call_number = 0
    for kind in draw(st.lists(st.sampled_from(["user", "assistant", "tools", "report"]))):
        if kind == "user":
            events.append(Message.user(draw(texts)))
        elif kind == "assistant":
            events.append(Message.assistant(draw(texts)))
        elif kind == "tools":
            ids = []
            for _ in range(draw(st.integers(min_value=1, max_value=3))):
                call_number += 1
                ids.append(f"call_{call_number}")
            calls = [
                ToolCall(id=i, name="lookup", arguments=f'{{"q": "{draw(texts)}"}}') for i in ids
            ]
            events.append(Message.assistant(draw(texts), tool_calls=calls))
            for call_id in draw(st.permutations(ids)):
                result = ToolResult.success(call_id, "lookup", draw(texts))
                events.append(Message.tool_result(result))
        else:
            tokens = st.integers(min_value=0, max_value=3000)
            events.append(Report(Usage(draw(tokens), draw(tokens))))
    return events


def undroppable(messages: list[Message], keep_recent: int) -> set[int]:
    """Indices that must survive: system, newest user, the newest `keep_recent`, and
    everything sharing a tool call with one of those (to a fixed point)."""
    keep = {i for i, m in enumerate(messages) if m.role is Role.SYSTEM}
    users = [i for i, m in enumerate(messages) if m.role is Role.USER]
    keep.update(users[-1:])
    keep.update(range(max(0, len(messages) - keep_recent), len(messages)))
    links: dict[int, set[int]] = {i: set() for i in range(len(messages))}
    for i, message in enumerate(messages):
        for j, other in enumerate(messages):
            if other.role is Role.TOOL and other.tool_call_id in {c.id for c in message.tool_calls}:
                links[i].add(j)
                links[j].add(i)
    frontier = list(keep)
    while frontier:
        for linked in links[frontier.pop()] - keep:
            keep.add(linked)
            frontier.append(linked)
    return keep


@settings(max_examples=300, deadline=None)
@given(
    events=conversations(),
    max_tokens=st.integers(min_value=1, max_value=4000),
    percent=st.floats(min_value=0.0, max_value=150.0),
    keep_recent=st.integers(min_value=0, max_value=4),
)
def test_compression_keeps_the_conversation_valid(
    events: list[Event], max_tokens: int, percent: float, keep_recent: int
) -> None:
    counter = SimpleTokenCounter()
    tracker = ContextTracker(max_tokens, counter, ContextConfig(keep_recent=keep_recent))
    for event in events:
        if isinstance(event, Report):
            tracker.record_usage(event.usage)
        else:
            tracker.add_message(event)
    original = list(tracker.messages)
    before = tracker.current_usage().tokens_used

    dropped = tracker.compress_to_threshold(percent)
    kept = list(tracker.messages)
    after = tracker.current_usage().tokens_used

    # Nothing lost, nothing reordered: kept and dropped split the original in order.
    position = {id(m): i for i, m in enumerate(original)}
    kept_at = [position[id(m)] for m in kept]
    dropped_at = [position[id(m)] for m in dropped]
    assert kept_at == sorted(kept_at)
    assert dropped_at == sorted(dropped_at)
    assert sorted(kept_at + dropped_at) == list(range(len(original)))

    # What must stay, stays; and the threshold is met unless only that is left.
    must_stay = undroppable(original, keep_recent)
    assert must_stay <= set(kept_at)
    assert after <= before
    assert after <= percent * max_tokens / 100 or set(kept_at) == must_stay

    # Tool calls and their results are kept together.
    kept_call_ids = {call.id for m in kept for call in m.tool_calls}
    kept_result_ids = {m.tool_call_id for m in kept if m.role is Role.TOOL}
    original_result_ids = {m.tool_call_id for m in original if m.role is Role.TOOL}
    assert kept_result_ids <= kept_call_ids
    assert kept_call_ids & original_result_ids <= kept_result_ids

    # Oldest first: every droppable message that was kept is newer than every dropped one.
    kept_droppable = [i for i in kept_at if i not in must_stay]
    if dropped_at and kept_droppable:
        dropped_heads = [i for i in dropped_at if original[i].role is not Role.TOOL]
        assert max(dropped_heads, default=-1) < min(kept_droppable)


@settings(max_examples=200, deadline=None)
@given(
    events=conversations().map(lambda es: [e for e in es if isinstance(e, Message)]),
    max_tokens=st.integers(min_value=1, max_value=600),
    percent=st.floats(min_value=0.0, max_value=120.0),
)
def test_compression_without_reports_stops_as_soon_as_it_fits(
    events: list[Message], max_tokens: int, percent: float
) -> None:
    counter = SimpleTokenCounter()
    tracker = ContextTracker(max_tokens, counter, ContextConfig(keep_recent=0))
    tracker.add_messages(events)
    dropped = tracker.compress_to_threshold(percent)
    after = tracker.current_usage().tokens_used

    # Estimates only: usage is the counter's count of what is kept, exactly.
    assert after == counter.count_messages(tracker.messages)
    if dropped:
        # The last unit dropped was needed: without it, usage was above the limit. (Here
        # results follow their call, so that unit is the newest dropped non-tool message
        # with the results answering it.)
        head = next(m for m in reversed(dropped) if m.role is not Role.TOOL)
        call_ids = {call.id for call in head.tool_calls}
        unit = [head, *(m for m in dropped if m.role is Role.TOOL and m.tool_call_id in call_ids)]
        unit_tokens = sum(counter.count_message(m) for m in unit)
        assert after + unit_tokens > percent * max_tokens / 100
