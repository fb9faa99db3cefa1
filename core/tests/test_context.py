"""Context usage, states, tracking, provider-reported usage and compression."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

import pytest

from tachikoma_backends_core import (
    InvalidRequestError,
    Message,
    Role,
    ToolCall,
    ToolResult,
    Usage,
)
from tachikoma_backends_core.context import (
    ContextConfig,
    ContextState,
    ContextTracker,
    ContextUsage,
)
from tachikoma_backends_core.tokens import SimpleTokenCounter


class CountingCounter(SimpleTokenCounter):
    """A `SimpleTokenCounter` that remembers how often it counted a message."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message_counts = 0

    def count_message(self, message: Message) -> int:
        self.message_counts += 1
        return super().count_message(message)


class FlatCounter:
    """Every message costs `per_message` tokens; each request `per_request` more."""

    def __init__(self, per_message: int, per_request: int = 0) -> None:
        self.per_message = per_message
        self.per_request = per_request

    def count_text(self, text: str) -> int:
        return len(text)

    def count_message(self, message: Message) -> int:
        return self.per_message

    def count_messages(self, messages: Iterable[Message]) -> int:
        return self.per_request + sum(map(self.count_message, messages))


def tool_round(call_id: str, *results: str) -> list[Message]:
    """An assistant message calling a tool once per result, followed by the results."""
    ids = [f"{call_id}_{i}" for i in range(len(results))]
    calls = [ToolCall(id=i, name="lookup", arguments='{"q": "x"}') for i in ids]
    return [
        Message.assistant("", tool_calls=calls),
        *(
            Message.tool_result(ToolResult.success(call_id, "lookup", result))
            for call_id, result in zip(ids, results, strict=True)
        ),
    ]


# --- ContextUsage and ContextState --------------------------------------------------------


def test_context_usage_calculation() -> None:
    usage = ContextUsage(50000, 100000)
    assert usage.usage_percent == 50.0
    assert usage.tokens_remaining == 50000
    assert usage.state == ContextState.ELEVATED


def test_context_usage_accepts_keywords_and_is_frozen() -> None:
    usage = ContextUsage(tokens_used=10, max_tokens=40)
    assert usage == ContextUsage(10, 40)
    assert (usage.usage_percent, usage.state) == (25.0, ContextState.NOMINAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        usage.tokens_used = 20  # type: ignore[misc]


def test_context_usage_over_the_window_is_redlined_with_nothing_remaining() -> None:
    usage = ContextUsage(150, 100)
    assert (usage.usage_percent, usage.tokens_remaining) == (150.0, 0)
    assert usage.state is ContextState.REDLINED
    assert ContextUsage(0, 100).state is ContextState.NOMINAL


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((-1, 100), "tokens_used"),
        ((0, 0), "max_tokens"),
        ((0, -5), "max_tokens"),
        ((1.5, 100), "tokens_used"),
        ((True, 100), "tokens_used"),
    ],
)
def test_context_usage_rejects_bad_numbers_naming_the_field(args: Any, field: str) -> None:
    with pytest.raises(InvalidRequestError, match=field) as caught:
        ContextUsage(*args)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("percentage", "state"),
    [
        (0.0, ContextState.NOMINAL),
        (49.999, ContextState.NOMINAL),
        (50.0, ContextState.ELEVATED),
        (74.9, ContextState.ELEVATED),
        (75.0, ContextState.WARNING),
        (89.9, ContextState.WARNING),
        (90.0, ContextState.CRITICAL),
        (99.9, ContextState.CRITICAL),
        (100.0, ContextState.REDLINED),
        (150.0, ContextState.REDLINED),
    ],
)
def test_context_state_thresholds(percentage: float, state: ContextState) -> None:
    assert ContextState.from_percentage(percentage) is state


def test_context_state_values_are_strings() -> None:
    assert [s.value for s in ContextState] == [
        "nominal",
        "elevated",
        "warning",
        "critical",
        "redlined",
    ]
    assert ContextState("warning") is ContextState.WARNING


@pytest.mark.parametrize("percentage", [-0.1, float("nan"), float("inf")])
def test_context_state_rejects_impossible_percentages(percentage: float) -> None:
    with pytest.raises(InvalidRequestError, match="percentage"):
        ContextState.from_percentage(percentage)


# --- ContextConfig ------------------------------------------------------------------------


def test_context_config_defaults() -> None:
    config = ContextConfig()
    assert (config.compress_at_percent, config.target_percent, config.keep_recent) == (
        90.0,
        50.0,
        2,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"compress_at_percent": 0}, "compress_at_percent"),
        ({"compress_at_percent": float("nan")}, "compress_at_percent"),
        ({"target_percent": -1}, "target_percent"),
        ({"target_percent": 95.0}, "target_percent"),
        ({"keep_recent": -1}, "keep_recent"),
    ],
)
def test_context_config_rejects_inconsistent_settings(kwargs: Any, field: str) -> None:
    with pytest.raises(InvalidRequestError, match=field) as caught:
        ContextConfig(**kwargs)
    assert caught.value.field == field


# --- ContextTracker -----------------------------------------------------------------------


def test_context_tracker() -> None:
    tracker = ContextTracker(1000, SimpleTokenCounter())
    tracker.add_message(Message.user("Hello"))
    tracker.add_message(Message.assistant("Hi there!"))

    usage = tracker.current_usage()
    assert usage.tokens_used > 0
    assert tracker.message_count() == 2


def test_tracker_counts_each_message_once_and_matches_the_counter() -> None:
    counter = CountingCounter()
    tracker = ContextTracker(10_000, counter)
    messages = [Message.system("be brief"), Message.user("Hi"), *tool_round("c", "result")]
    tracker.add_messages(messages)
    for _ in range(3):
        tracker.current_usage()
    assert counter.message_counts == len(messages)
    assert tracker.current_usage().tokens_used == SimpleTokenCounter().count_messages(messages)
    assert tracker.messages == tuple(messages)


def test_tracker_includes_the_counters_per_request_cost() -> None:
    tracker = ContextTracker(100, FlatCounter(per_message=10, per_request=3))
    assert tracker.current_usage().tokens_used == 3
    tracker.add_messages([Message.user("a"), Message.user("b")])
    assert tracker.current_usage().tokens_used == 23


def test_tracker_messages_is_a_read_only_snapshot() -> None:
    tracker = ContextTracker(100, SimpleTokenCounter())
    tracker.add_message(Message.user("Hi"))
    snapshot = tracker.messages
    assert isinstance(snapshot, tuple)
    tracker.add_message(Message.user("again"))
    assert len(snapshot) == 1
    assert tracker.message_count() == 2


def test_tracker_state_and_needs_compression_follow_usage() -> None:
    tracker = ContextTracker(100, FlatCounter(per_message=10))
    tracker.add_messages([Message.user(str(i)) for i in range(5)])
    assert (tracker.state, tracker.needs_compression()) == (ContextState.ELEVATED, False)
    tracker.add_messages([Message.user(str(i)) for i in range(4)])
    assert (tracker.state, tracker.needs_compression()) == (ContextState.CRITICAL, True)
    custom = ContextTracker(
        100, FlatCounter(10), ContextConfig(compress_at_percent=30.0, target_percent=20.0)
    )
    custom.add_messages([Message.user(str(i)) for i in range(3)])
    assert custom.needs_compression()


@pytest.mark.parametrize("max_tokens", [0, -1, 2.5])
def test_tracker_rejects_a_window_that_is_not_a_positive_integer(max_tokens: Any) -> None:
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        ContextTracker(max_tokens, SimpleTokenCounter())


# --- Provider-reported usage --------------------------------------------------------------


def test_record_usage_replaces_the_estimate_and_counts_the_reply() -> None:
    tracker = ContextTracker(10_000, FlatCounter(per_message=10))
    tracker.add_messages([Message.system("s"), Message.user("question")])
    assert tracker.current_usage().tokens_used == 20

    tracker.record_usage(Usage(300, 40, cache_read_input_tokens=200, cache_creation_input_tokens=7))
    assert tracker.current_usage().tokens_used == 300 + 200 + 7 + 40
    tracker.add_message(Message.assistant("answer"))  # the reply: already counted as output
    assert tracker.current_usage().tokens_used == 547
    tracker.add_message(Message.user("follow-up"))  # estimated on top
    assert tracker.current_usage().tokens_used == 557


def test_record_usage_forgets_the_output_when_the_reply_is_not_kept() -> None:
    tracker = ContextTracker(10_000, FlatCounter(per_message=10))
    tracker.add_message(Message.user("question"))
    tracker.record_usage(Usage(100, 40))
    tracker.add_message(Message.user("never mind"))
    assert tracker.current_usage().tokens_used == 100 + 10


def test_a_second_report_replaces_the_first() -> None:
    tracker = ContextTracker(10_000, FlatCounter(per_message=10))
    tracker.add_message(Message.user("q1"))
    tracker.record_usage(Usage(100, 40))
    tracker.add_messages([Message.assistant("a1"), Message.user("q2")])
    tracker.record_usage(Usage(180, 5))
    tracker.add_message(Message.assistant("a2"))
    assert tracker.current_usage().tokens_used == 185


def test_zero_usage_means_not_reported_and_keeps_the_estimates() -> None:
    tracker = ContextTracker(10_000, FlatCounter(per_message=10))
    tracker.add_message(Message.user("question"))
    tracker.record_usage(Usage())
    tracker.add_message(Message.assistant("answer"))
    assert tracker.current_usage().tokens_used == 20

    tracker.record_usage(Usage(500, 0))  # prompt reported, output not: estimate the reply
    tracker.add_message(Message.assistant("more"))
    assert tracker.current_usage().tokens_used == 510


def test_compression_keeps_the_providers_surplus_over_the_estimates() -> None:
    # The provider counted 1000 where the estimates say 100: tool definitions and the like.
    tracker = ContextTracker(2000, FlatCounter(per_message=10), ContextConfig(keep_recent=0))
    tracker.add_messages([Message.user(str(i)) for i in range(10)])
    tracker.record_usage(Usage(1000, 0))
    dropped = tracker.compress_to_threshold(48.0)  # 960 tokens: drop 4 messages (40 tokens)
    assert len(dropped) == 4
    assert tracker.current_usage().tokens_used == 960


def test_compression_scales_an_estimate_that_ran_high_never_below_zero() -> None:
    # The provider counted 50 where the estimates say 100: each message is worth half.
    tracker = ContextTracker(1000, FlatCounter(per_message=10), ContextConfig(keep_recent=0))
    tracker.add_messages([Message.user(str(i)) for i in range(10)])
    tracker.record_usage(Usage(50, 0))
    tracker.add_message(Message.user("later"))  # estimated: 10
    dropped = tracker.compress_to_threshold(3.0)  # 30 tokens
    assert len(dropped) == 6
    assert tracker.current_usage().tokens_used == 20 + 10
    assert len(tracker.compress_to_threshold(0.0)) == 4
    assert tracker.current_usage().tokens_used == 10  # only the newest user message


# --- Compression --------------------------------------------------------------------------


def test_context_compression() -> None:
    tracker = ContextTracker(100, SimpleTokenCounter())
    for i in range(20):
        tracker.add_message(Message.user(f"Message {i}"))

    before = tracker.current_usage().tokens_used
    tracker.compress_to_threshold(50.0)
    after = tracker.current_usage().tokens_used
    assert after < before


def test_compression_drops_the_oldest_first_and_returns_them_in_order() -> None:
    tracker = ContextTracker(100, FlatCounter(per_message=10))
    messages = [Message.user(f"m{i}") for i in range(10)]
    tracker.add_messages(messages)
    dropped = tracker.compress_to_threshold(50.0)
    assert dropped == messages[:5]
    assert tracker.messages == tuple(messages[5:])
    assert tracker.current_usage().tokens_used == 50


def test_compression_below_the_threshold_changes_nothing() -> None:
    tracker = ContextTracker(100, FlatCounter(per_message=10))
    tracker.add_messages([Message.user("a"), Message.user("b")])
    assert tracker.compress_to_threshold(20.0) == []
    assert tracker.message_count() == 2


def test_compression_defaults_to_the_configured_target() -> None:
    config = ContextConfig(compress_at_percent=80.0, target_percent=30.0, keep_recent=0)
    tracker = ContextTracker(100, FlatCounter(per_message=10), config)
    tracker.add_messages([Message.user(str(i)) for i in range(9)])
    assert tracker.needs_compression()
    assert len(tracker.compress_to_threshold()) == 6
    assert tracker.current_usage().usage_percent == 30.0


def test_compression_never_drops_system_messages_or_the_newest_user_message() -> None:
    tracker = ContextTracker(100, FlatCounter(per_message=10), ContextConfig(keep_recent=0))
    system = Message.system("rules")
    newest_user = Message.user("the question")
    tracker.add_messages(
        [system, Message.user("old"), Message.assistant("old answer"), newest_user]
    )
    tracker.add_message(Message.assistant("thinking"))
    dropped = tracker.compress_to_threshold(0.0)  # unreachable: drops all it may, no error
    assert [m.text for m in dropped] == ["old", "old answer", "thinking"]
    assert tracker.messages == (system, newest_user)


def test_compression_keeps_the_newest_messages_it_is_told_to() -> None:
    tracker = ContextTracker(100, FlatCounter(per_message=10), ContextConfig(keep_recent=3))
    messages = [Message.user(f"u{i}") if i % 2 else Message.assistant(f"a{i}") for i in range(8)]
    tracker.add_messages(messages)
    tracker.compress_to_threshold(0.0)
    assert tracker.messages == tuple(messages[-3:])


def test_compression_drops_a_tool_call_together_with_its_results() -> None:
    tracker = ContextTracker(1000, FlatCounter(per_message=100), ContextConfig(keep_recent=0))
    first_round = tool_round("a", "r1", "r2", "r3")
    tracker.add_messages(
        [Message.user("go"), *first_round, *tool_round("b", "r4"), Message.user("now")]
    )
    # 800 tokens; 55 % is 550: dropping "go" is not enough, and the first round goes whole.
    dropped = tracker.compress_to_threshold(55.0)
    assert dropped == [Message.user("go"), *first_round]
    assert [m.role for m in tracker.messages] == [Role.ASSISTANT, Role.TOOL, Role.USER]


def test_compression_keeps_a_whole_tool_round_when_one_result_must_stay() -> None:
    tracker = ContextTracker(1000, FlatCounter(per_message=100), ContextConfig(keep_recent=1))
    round_ = tool_round("a", "r1", "r2")
    tracker.add_messages([Message.user("first"), Message.user("newest user"), *round_])
    assert tracker.compress_to_threshold(0.0) == [Message.user("first")]
    # The newest message is a tool result: its call and its sibling result stay with it.
    assert tracker.messages == (Message.user("newest user"), *round_)


def test_compression_groups_results_that_arrive_out_of_order_or_late() -> None:
    assistant, first, second = tool_round("a", "r1", "r2")
    tracker = ContextTracker(1000, FlatCounter(per_message=100), ContextConfig(keep_recent=1))
    tracker.add_messages([assistant, second, Message.user("meanwhile"), first])
    assert tracker.compress_to_threshold(0.0) == []  # the late result pins its whole round
    assert tracker.message_count() == 4


def test_compression_may_drop_an_orphan_tool_result_alone() -> None:
    orphan = Message.tool_result(ToolResult.success("gone", "lookup", "stale"))
    tracker = ContextTracker(100, FlatCounter(per_message=10), ContextConfig(keep_recent=0))
    tracker.add_messages([orphan, Message.user("q")])
    assert tracker.compress_to_threshold(0.0) == [orphan]


@pytest.mark.parametrize("percent", [-1.0, float("nan"), float("inf")])
def test_compression_rejects_impossible_thresholds(percent: float) -> None:
    tracker = ContextTracker(100, SimpleTokenCounter())
    with pytest.raises(InvalidRequestError, match="percent"):
        tracker.compress_to_threshold(percent)


def test_compression_is_linear_not_quadratic() -> None:
    counter = CountingCounter()
    tracker = ContextTracker(1_000_000, counter, ContextConfig(keep_recent=0))
    for i in range(20_000):
        if i % 4 == 3:
            tracker.add_messages(tool_round(f"c{i}", "result"))
        else:
            tracker.add_message(Message.user(f"message number {i}"))
    counted = counter.message_counts
    started = time.perf_counter()
    dropped = tracker.compress_to_threshold(1.0)
    elapsed = time.perf_counter() - started
    assert counter.message_counts == counted  # nothing recounted
    assert len(dropped) > 20_000
    assert tracker.current_usage().tokens_used == SimpleTokenCounter().count_messages(
        tracker.messages
    )
    assert elapsed < 2.0  # quadratic recounting of 25 000 messages would take minutes


def test_tracker_repr_shows_its_state() -> None:
    tracker = ContextTracker(100, FlatCounter(per_message=60))
    tracker.add_message(Message.user("x"))
    assert repr(tracker) == (
        "ContextTracker(max_tokens=100, messages=1, tokens_used=60, state=elevated)"
    )
