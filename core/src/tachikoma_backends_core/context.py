"""How full a model's context window is, and making room in it.

A long conversation eventually outgrows the model's context window, and the request then
fails. `ContextTracker` keeps a running count of what the conversation takes, says how
close to the limit it is (`ContextState`), and drops the oldest messages that may safely
go when asked. Counts are estimates from a `TokenCounter` until a provider reports real
usage (`ContextTracker.record_usage`); the provider's figure then wins.

Compression never breaks a conversation a provider would accept: system messages and the
newest user message stay, and an assistant message that called tools goes or stays together
with the results answering it (providers reject a tool result without its call, and a call
without its results).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .completion import Usage
from .errors import InvalidRequestError
from .messages import Message, Role
from .tokens import TokenCounter

__all__ = ["ContextConfig", "ContextState", "ContextTracker", "ContextUsage"]


def _check_percent(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidRequestError(
            f"{name} must be a finite, non-negative percentage, got {value!r}", field=name
        )
    return float(value)


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidRequestError(
            f"{name} must be an integer of at least {minimum}, got {value!r}", field=name
        )


class ContextState(str, Enum):
    """How full the context window is, in bands a caller can act on.

    `NOMINAL` below 50 %, `ELEVATED` from 50 %, `WARNING` from 75 %, `CRITICAL`
    from 90 % and `REDLINED` at 100 % and above (the next request will not fit). Each
    band includes its lower bound.

    Examples:
        >>> ContextState.from_percentage(74.9), ContextState.from_percentage(75)
        (<ContextState.ELEVATED: 'elevated'>, <ContextState.WARNING: 'warning'>)
    """

    NOMINAL = "nominal"
    ELEVATED = "elevated"
    WARNING = "warning"
    CRITICAL = "critical"
    REDLINED = "redlined"

    @classmethod
    def from_percentage(cls, percentage: float) -> ContextState:
        """The band `percentage` (0 to 100 and beyond) falls in."""
        percentage = _check_percent("percentage", percentage)
        for lower_bound, state in _BANDS:
            if percentage >= lower_bound:
                return state
        return cls.NOMINAL


# Highest first: the first band whose lower bound is reached wins.
_BANDS = (
    (100.0, ContextState.REDLINED),
    (90.0, ContextState.CRITICAL),
    (75.0, ContextState.WARNING),
    (50.0, ContextState.ELEVATED),
)


@dataclass(frozen=True, slots=True)
class ContextUsage:
    """A snapshot: `tokens_used` of a `max_tokens` window.

    `tokens_used` may exceed `max_tokens` (the state is then `REDLINED`); a
    conversation can outgrow the window before anyone looks.

    Examples:
        >>> usage = ContextUsage(50000, 100000)
        >>> usage.usage_percent, usage.tokens_remaining, usage.state
        (50.0, 50000, <ContextState.ELEVATED: 'elevated'>)
    """

    tokens_used: int
    max_tokens: int

    def __post_init__(self) -> None:
        _check_int("tokens_used", self.tokens_used, 0)
        _check_int("max_tokens", self.max_tokens, 1)

    @property
    def usage_percent(self) -> float:
        """`tokens_used` as a percentage of `max_tokens` (above 100 when over)."""
        # Multiply first: one rounding, so 50000 of 100000 is exactly 50.0.
        return self.tokens_used * 100 / self.max_tokens

    @property
    def tokens_remaining(self) -> int:
        """Tokens still free; 0, never negative, once the window is full."""
        return max(0, self.max_tokens - self.tokens_used)

    @property
    def state(self) -> ContextState:
        return ContextState.from_percentage(self.usage_percent)


@dataclass(frozen=True, slots=True)
class ContextConfig:
    """When a `ContextTracker` should compress, how far, and what it always keeps.

    Args:
        compress_at_percent: `ContextTracker.needs_compression` is true from this usage
            on. The default, 90, is where `ContextState` turns `CRITICAL`.
        target_percent: what `ContextTracker.compress_to_threshold` aims for when called
            without a percentage; at most `compress_at_percent`. Aiming well below the
            trigger (the default, 50, is half the window) makes compression happen now
            and then rather than on every turn.
        keep_recent: the newest messages kept whatever the usage (with the tool calls or
            results they belong to), so the model keeps the immediate context of the
            conversation, not only the last question.

    System messages and the newest user message are always kept; there is no switch for
    that, since a conversation without them is not the same conversation.

    Examples:
        >>> ContextConfig(compress_at_percent=80.0, target_percent=60.0).keep_recent
        2
    """

    compress_at_percent: float = 90.0
    target_percent: float = 50.0
    keep_recent: int = 2

    def __post_init__(self) -> None:
        compress_at = _check_percent("compress_at_percent", self.compress_at_percent)
        if compress_at == 0:
            raise InvalidRequestError(
                "compress_at_percent must be above 0 (at 0 every state needs compression)",
                field="compress_at_percent",
            )
        target = _check_percent("target_percent", self.target_percent)
        if target > compress_at:
            raise InvalidRequestError(
                f"target_percent ({target}) must not exceed compress_at_percent "
                f"({compress_at}): compression would stop above where it started",
                field="target_percent",
            )
        _check_int("keep_recent", self.keep_recent, 0)


_DEFAULT_CONFIG = ContextConfig()


class ContextTracker:
    """A conversation's messages and how much of a `max_tokens` window they take.

    Counting is incremental: each message is counted once, when added, and compression
    drops messages without recounting the rest, so a long conversation costs O(n) per
    compression and O(1) per `current_usage`.

    Provider usage wins over estimates. After a call returns, `record_usage` replaces the
    estimate for every message sent with the provider's count of the prompt (input plus
    cache-creation and cache-read tokens), and counts the reply's `output_tokens` for
    the assistant message you add next; messages added later are estimated on top. When
    compression drops messages the provider counted, their estimate is taken out of the
    provider's figure (scaled down when the estimates ran higher than the provider, so it
    never goes negative); tokens the provider counted that no estimate sees, such as tool
    definitions, stay in it.

    Not thread-safe: one tracker follows one conversation.

    Args:
        max_tokens: the model's context window, in tokens.
        counter: how to estimate messages, such as `SimpleTokenCounter`.
        config: compression thresholds and what to keep; see `ContextConfig`.

    Examples:
        >>> from tachikoma_backends_core import Message
        >>> from tachikoma_backends_core.tokens import SimpleTokenCounter
        >>> tracker = ContextTracker(1000, SimpleTokenCounter())
        >>> tracker.add_messages([Message.user("Hello"), Message.assistant("Hi there!")])
        >>> tracker.current_usage().tokens_used, tracker.state
        (13, <ContextState.NOMINAL: 'nominal'>)
    """

    def __init__(
        self,
        max_tokens: int,
        counter: TokenCounter,
        config: ContextConfig = _DEFAULT_CONFIG,
    ) -> None:
        _check_int("max_tokens", max_tokens, 1)
        self._max_tokens = max_tokens
        self._counter = counter
        self._config = config
        self._messages: list[Message] = []
        self._estimates: list[int] = []
        # The first _prefix_len messages were counted by a provider as _prefix_tokens;
        # _prefix_estimate is what the counter says for them (request overhead included).
        # Without a report the prefix is empty and both equal the request overhead.
        overhead = counter.count_messages(())
        self._prefix_len = 0
        self._prefix_estimate = overhead
        self._prefix_tokens = overhead
        self._later_tokens = 0  # estimates of the messages after the prefix
        self._reply_tokens = 0  # reported output_tokens, until the reply is added

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def counter(self) -> TokenCounter:
        return self._counter

    @property
    def config(self) -> ContextConfig:
        return self._config

    @property
    def messages(self) -> tuple[Message, ...]:
        """The conversation as it stands, oldest first (a copy; add with `add_message`)."""
        return tuple(self._messages)

    def message_count(self) -> int:
        return len(self._messages)

    def add_message(self, message: Message) -> None:
        """Append `message`; it is counted once, now.

        Right after `record_usage`, an assistant message is taken to be the reply that the
        reported `output_tokens` already count. Any other message means the reply was not
        kept, and its output tokens are forgotten.
        """
        estimate = self._counter.count_message(message)
        self._messages.append(message)
        self._estimates.append(estimate)
        if self._reply_tokens:
            reply_tokens, self._reply_tokens = self._reply_tokens, 0
            if message.role is Role.ASSISTANT:
                self._prefix_len += 1
                self._prefix_estimate += estimate
                self._prefix_tokens += reply_tokens
                return
        self._later_tokens += estimate

    def add_messages(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.add_message(message)

    def record_usage(self, usage: Usage) -> None:
        """Take a provider's reported `usage` for the call that sent every message so far.

        Call it when the call returns, before adding the reply with `add_message`. The
        prompt size, `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`,
        replaces the estimate for the messages so far, and `output_tokens` stands for the
        reply. (That sum assumes `input_tokens` excludes cached tokens, as Anthropic
        reports it; a plugin whose provider includes them, as OpenAI's `prompt_tokens`
        does, must subtract them when it fills `Usage`.)

        A zero prompt means the provider reported nothing (no real prompt is empty), so the
        estimates stay; a zero `output_tokens` likewise leaves the reply to be estimated.
        """
        prompt_tokens = (
            usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
        )
        self._reply_tokens = 0
        if prompt_tokens == 0:
            return
        self._prefix_len = len(self._messages)
        self._prefix_estimate += self._later_tokens
        self._prefix_tokens = prompt_tokens
        self._later_tokens = 0
        self._reply_tokens = usage.output_tokens

    def current_usage(self) -> ContextUsage:
        tokens = self._prefix_tokens + self._reply_tokens + self._later_tokens
        return ContextUsage(tokens, self._max_tokens)

    @property
    def state(self) -> ContextState:
        return self.current_usage().state

    def needs_compression(self) -> bool:
        """Whether usage has reached `config.compress_at_percent`."""
        return self.current_usage().usage_percent >= self._config.compress_at_percent

    def _prefix_after_dropping(self, dropped_estimate: int) -> int:
        """The provider-counted prefix's tokens once messages estimated at
        `dropped_estimate` are gone from it.

        Where the provider counted at least the estimate, the surplus (tool definitions,
        formatting the counter cannot see) stays; where it counted less, the figure shrinks
        in proportion, so it never goes below zero.
        """
        reported, estimate = self._prefix_tokens, self._prefix_estimate
        if dropped_estimate == 0 or estimate == 0:
            return reported
        if reported >= estimate:
            return reported - dropped_estimate
        return -(-reported * (estimate - dropped_estimate) // estimate)

    def compress_to_threshold(self, percent: float | None = None) -> list[Message]:
        """Drop the oldest messages that may go until usage is at most `percent` %.

        `percent` defaults to `config.target_percent`. Returns the dropped messages,
        oldest first, so nothing is lost silently (summarise them, log them, or re-add
        them). Never dropped: system messages, the newest user message, the newest
        `config.keep_recent` messages. An assistant message that called tools and the
        tool results answering it go together or not at all. When even dropping
        everything allowed leaves usage above `percent`, it drops all that and stops:
        the caller decides what else to do (raise, summarise, switch models).

        Raises:
            InvalidRequestError: `percent` is negative or not a finite number.
        """
        target = _check_percent(
            "percent", self._config.target_percent if percent is None else percent
        )
        limit = target * self._max_tokens / 100
        usage = self.current_usage().tokens_used
        if usage <= limit:
            return []

        unit_of = self._atomic_units()
        protected = self._protected_units(unit_of)
        unit_prefix_cost = [0] * len(unit_of)
        unit_later_cost = [0] * len(unit_of)
        for index, (unit, estimate) in enumerate(zip(unit_of, self._estimates, strict=True)):
            if index < self._prefix_len:
                unit_prefix_cost[unit] += estimate
            else:
                unit_later_cost[unit] += estimate

        dropped_units: set[int] = set()
        dropped_prefix = dropped_later = 0
        after_prefix = self._reply_tokens + self._later_tokens
        for unit in range(len(unit_of)):
            if unit_of[unit] != unit or unit in protected:
                continue  # not the head of a unit, or must stay
            dropped_units.add(unit)
            dropped_prefix += unit_prefix_cost[unit]
            dropped_later += unit_later_cost[unit]
            usage = self._prefix_after_dropping(dropped_prefix) + after_prefix - dropped_later
            if usage <= limit:
                break
        return self._drop(unit_of, dropped_units, dropped_prefix, dropped_later)

    def _atomic_units(self) -> list[int]:
        """For each message, the index of the first message of the unit it goes with.

        A tool result belongs with the latest earlier assistant message that made its call;
        every other message is a unit of its own. A unit's first message is its oldest.
        """
        unit_of = list(range(len(self._messages)))
        caller_of: dict[str, int] = {}
        for index, message in enumerate(self._messages):
            if message.role is Role.ASSISTANT:
                for call in message.tool_calls:
                    caller_of[call.id] = index
            elif message.role is Role.TOOL and message.tool_call_id in caller_of:
                unit_of[index] = caller_of[message.tool_call_id]
        return unit_of

    def _protected_units(self, unit_of: list[int]) -> set[int]:
        """Units that must stay: those holding a system message, the newest user message,
        or one of the newest `keep_recent` messages."""
        protected = {unit_of[i] for i, m in enumerate(self._messages) if m.role is Role.SYSTEM}
        for index in range(len(self._messages) - 1, -1, -1):
            if self._messages[index].role is Role.USER:
                protected.add(unit_of[index])
                break
        recent_start = max(0, len(self._messages) - self._config.keep_recent)
        protected.update(unit_of[recent_start:])
        return protected

    def _drop(
        self, unit_of: list[int], dropped_units: set[int], dropped_prefix: int, dropped_later: int
    ) -> list[Message]:
        kept: list[Message] = []
        kept_estimates: list[int] = []
        dropped: list[Message] = []
        kept_in_prefix = 0
        for index, message in enumerate(self._messages):
            if unit_of[index] in dropped_units:
                dropped.append(message)
                continue
            kept.append(message)
            kept_estimates.append(self._estimates[index])
            if index < self._prefix_len:
                kept_in_prefix += 1
        self._prefix_tokens = self._prefix_after_dropping(dropped_prefix)
        self._prefix_estimate -= dropped_prefix
        self._prefix_len = kept_in_prefix
        self._later_tokens -= dropped_later
        self._messages = kept
        self._estimates = kept_estimates
        return dropped

    def __repr__(self) -> str:
        usage = self.current_usage()
        return (
            f"ContextTracker(max_tokens={self._max_tokens}, messages={len(self._messages)}, "
            f"tokens_used={usage.tokens_used}, state={usage.state.value})"
        )
