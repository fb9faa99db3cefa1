"""Counting tokens before a request is sent.

Providers report exact usage only *after* a call; deciding whether a conversation still fits
a context window has to happen *before* it. A `TokenCounter` answers that question:
`SimpleTokenCounter` estimates from character counts (no dependency, cheap enough to run on
every request), `TiktokenCounter` counts exactly for OpenAI models with the optional
`tiktoken` package. `ContextTracker` (in `context`) uses either and lets the
provider's reported usage override the estimate once a call has returned.

What is counted: message text (tool results included), each tool call's id, name and
argument JSON, a tool message's `tool_call_id`, a fixed cost per image (its size is not
known here), and a per-message overhead for the role and framing each provider adds.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from .content import ImagePart, TextPart
from .errors import ConfigurationError, InvalidRequestError
from .messages import Message, Role
from .tool_calls import ToolResult

__all__ = ["SimpleTokenCounter", "TiktokenCounter", "TokenCounter"]

# Anthropic bills an image at about width x height / 750 tokens and scales images down to
# about 1.15 megapixels, so a full-size image costs about 1600 tokens; OpenAI's high-detail
# 1024x1024 image costs 765. An estimate should err high: compressing a little early is
# cheap, overflowing the window fails the request.
_DEFAULT_IMAGE_TOKENS = 1600
# OpenAI (gpt-4o and later), high detail, 1024x1024: 85 base + 4 tiles x 170.
_OPENAI_IMAGE_TOKENS = 765

_TIKTOKEN_INSTALL = "pip install 'tachikoma-backends-core[tiktoken]'"
_FALLBACK_ENCODING = "o200k_base"


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens that text and messages take in a model's context.

    Contract (`ContextTracker` relies on it to count incrementally instead of recounting
    the whole conversation after each message): `count_messages(ms)` equals
    `count_messages([])` (a fixed per-request cost, possibly 0) plus the sum of
    `count_message(m)` over `ms`.

    Examples:
        >>> from tachikoma_backends_core.tokens import SimpleTokenCounter, TokenCounter
        >>> isinstance(SimpleTokenCounter(), TokenCounter)
        True
    """

    def count_text(self, text: str) -> int:
        """Tokens in `text` alone; `""` is 0."""
        ...

    def count_message(self, message: Message) -> int:
        """Tokens `message` takes in a request, framing included."""
        ...

    def count_messages(self, messages: Iterable[Message]) -> int:
        """Tokens `messages` take as one request's prompt."""
        ...


def _message_pieces(message: Message) -> tuple[list[str], int]:
    """The text pieces a provider sends for `message`, and how many images it holds."""
    texts: list[str] = []
    images = 0
    content = message.content
    if isinstance(content, str):
        texts.append(content)
    else:
        for part in content:
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif isinstance(part, ImagePart):
                images += 1
            elif isinstance(part, ToolResult):
                for inner in part.content.parts:
                    if isinstance(inner, TextPart):
                        texts.append(inner.text)
                    else:
                        images += 1
    for call in message.tool_calls:
        texts += (call.id, call.name, call.arguments)
    if message.tool_call_id:
        texts.append(message.tool_call_id)
    return texts, images


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(
            f"{name} must be a non-negative integer, got {value!r}", field=name
        )


class SimpleTokenCounter:
    """A fast, dependency-free estimate: about `chars_per_token` characters a token.

    Why a heuristic: exact counts need the provider's tokenizer, which most providers do not
    publish; about 4 characters a token holds for English prose across current tokenizers
    (code and non-Latin scripts take more tokens: lower `chars_per_token` for them). It
    looks only at string lengths, so it costs next to nothing per request.

    A message costs `ceil(characters / chars_per_token)` for its text, tool calls (id,
    name, argument JSON) and `tool_call_id` together, plus `message_overhead` for the
    role and framing, plus `image_tokens` per image. A request adds nothing beyond its
    messages.

    Args:
        chars_per_token: average characters per token; must be positive.
        message_overhead: tokens added per message for role and framing.
        image_tokens: tokens charged per image. The default, 1600, is about what Anthropic
            charges for a full-size image (OpenAI charges 765 at high detail for
            1024x1024): an estimate should err high, since compressing early is cheap and
            overflowing the window fails the request.

    Examples:
        >>> from tachikoma_backends_core import Message
        >>> counter = SimpleTokenCounter()
        >>> counter.count_text("Hello, world")
        3
        >>> counter.count_message(Message.user("Hello, world"))
        7
    """

    __slots__ = ("chars_per_token", "image_tokens", "message_overhead")

    def __init__(
        self,
        chars_per_token: float = 4.0,
        message_overhead: int = 4,
        image_tokens: int = _DEFAULT_IMAGE_TOKENS,
    ) -> None:
        if (
            isinstance(chars_per_token, bool)
            or not isinstance(chars_per_token, (int, float))
            or not math.isfinite(chars_per_token)
            or chars_per_token <= 0
        ):
            raise InvalidRequestError(
                f"chars_per_token must be a positive number, got {chars_per_token!r}",
                field="chars_per_token",
            )
        _check_count("message_overhead", message_overhead)
        _check_count("image_tokens", image_tokens)
        self.chars_per_token = float(chars_per_token)
        self.message_overhead = message_overhead
        self.image_tokens = image_tokens

    def _tokens_for_chars(self, chars: int) -> int:
        return math.ceil(chars / self.chars_per_token)

    def count_text(self, text: str) -> int:
        return self._tokens_for_chars(len(text))

    def count_message(self, message: Message) -> int:
        texts, images = _message_pieces(message)
        chars = sum(map(len, texts))
        return self._tokens_for_chars(chars) + self.message_overhead + images * self.image_tokens

    def count_messages(self, messages: Iterable[Message]) -> int:
        return sum(map(self.count_message, messages))

    def __repr__(self) -> str:
        return (
            f"SimpleTokenCounter(chars_per_token={self.chars_per_token}, "
            f"message_overhead={self.message_overhead}, image_tokens={self.image_tokens})"
        )


class _Encoding(Protocol):
    """The part of `tiktoken.Encoding` we use."""

    name: str

    def encode_ordinary(self, text: str) -> list[int]: ...


class TiktokenCounter:
    """Exact token counts for OpenAI models, with the optional `tiktoken` package.

    Messages are counted with OpenAI's published formula for chat models (gpt-3.5-turbo-0613
    and later, gpt-4o included; see "How to count tokens with tiktoken" in the OpenAI
    Cookbook): each message costs 3 tokens plus its role and content, and each request
    3 more because the reply is primed with `<|start|>assistant<|message|>`. Tool calls
    (id, name, argument JSON) and `tool_call_id` are counted as text, which is close but
    not exact, and images cost a fixed `image_tokens`. Text is encoded as ordinary text, so
    a user typing `<|endoftext|>` is counted rather than refused.

    `tiktoken` downloads an encoding's file on first use and caches it (in
    `TIKTOKEN_CACHE_DIR` when set). Without network access and without a filled cache the
    encoding cannot load, and building the counter raises `ConfigurationError` saying so;
    `SimpleTokenCounter` works everywhere.

    Args:
        model: the OpenAI model whose encoding to use; models `tiktoken` does not know use
            `o200k_base`, the encoding of gpt-4o and later models.
        encoding: an encoding name (`"cl100k_base"`) to use instead of the model's.
        image_tokens: tokens charged per image; 765 is a high-detail 1024x1024 image.

    Raises:
        ConfigurationError: `tiktoken` is not installed, `encoding` is unknown, or the
            encoding's file cannot be loaded.

    Examples:
        >>> counter = TiktokenCounter("gpt-4o")  # doctest: +SKIP
        >>> counter.encoding_name  # doctest: +SKIP
        'o200k_base'
    """

    tokens_per_message = 3
    reply_priming_tokens = 3

    __slots__ = ("_encoding", "_role_tokens", "image_tokens", "model")

    def __init__(
        self,
        model: str = "gpt-4o",
        *,
        encoding: str | None = None,
        image_tokens: int = _OPENAI_IMAGE_TOKENS,
    ) -> None:
        _check_count("image_tokens", image_tokens)
        tiktoken = _import_tiktoken()
        if encoding is None:
            try:
                encoding = str(tiktoken.encoding_name_for_model(model))
            except KeyError:
                encoding = _FALLBACK_ENCODING
        elif encoding not in tiktoken.list_encoding_names():
            raise ConfigurationError(
                f"tiktoken has no encoding {encoding!r}; known encodings: "
                f"{sorted(tiktoken.list_encoding_names())}",
                field="encoding",
            )
        self.model = model
        self.image_tokens = image_tokens
        self._encoding: _Encoding = _load_encoding(tiktoken, encoding)
        self._role_tokens = {role: self.count_text(role.value) for role in Role}

    @property
    def encoding_name(self) -> str:
        """The `tiktoken` encoding in use, such as `"o200k_base"`."""
        return self._encoding.name

    def count_text(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text)) if text else 0

    def count_message(self, message: Message) -> int:
        texts, images = _message_pieces(message)
        text_tokens = sum(map(self.count_text, texts))
        return (
            self.tokens_per_message
            + self._role_tokens[message.role]
            + text_tokens
            + images * self.image_tokens
        )

    def count_messages(self, messages: Iterable[Message]) -> int:
        return self.reply_priming_tokens + sum(map(self.count_message, messages))

    def __repr__(self) -> str:
        return f"TiktokenCounter(model={self.model!r}, encoding={self.encoding_name!r})"


def _import_tiktoken() -> Any:
    # Imported here, not at module top: tiktoken is optional and slow to import.
    try:
        return importlib.import_module("tiktoken")
    except ImportError:
        raise ConfigurationError(
            f"TiktokenCounter needs the optional tiktoken package: {_TIKTOKEN_INSTALL} "
            "(or count with SimpleTokenCounter, which needs nothing)",
            field="tiktoken",
        ) from None


def _load_encoding(tiktoken: Any, name: str) -> _Encoding:
    try:
        encoding: _Encoding = tiktoken.get_encoding(name)
    except Exception as exc:  # network and file errors vary with tiktoken's version
        raise ConfigurationError(
            f"tiktoken could not load encoding {name!r} ({type(exc).__name__}: {exc}). "
            "tiktoken downloads encoding files on first use; without network access, copy "
            "a filled cache to this machine and set TIKTOKEN_CACHE_DIR to it, or use "
            "SimpleTokenCounter",
            field="encoding",
        ) from exc
    return encoding
