"""Token counting: the character heuristic, and tiktoken wiring through a fake module."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest

from tachikoma_backends_core import (
    ConfigurationError,
    ImagePart,
    InvalidRequestError,
    Message,
    TextPart,
    ToolCall,
    ToolResult,
)
from tachikoma_backends_core.tokens import SimpleTokenCounter, TiktokenCounter, TokenCounter

IMAGE = ImagePart.from_url("https://example.com/cat.png")

# --- SimpleTokenCounter -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100), ("x" * 401, 101)],
)
def test_simple_count_text_is_characters_over_four_rounded_up(text: str, tokens: int) -> None:
    assert SimpleTokenCounter().count_text(text) == tokens


def test_simple_count_text_is_monotonic_in_length() -> None:
    counter = SimpleTokenCounter(chars_per_token=3.3)
    counts = [counter.count_text("y" * n) for n in range(200)]
    assert counts == sorted(counts)
    assert counts[0] == 0
    assert counts[-1] > counts[1] > 0


def test_simple_message_adds_overhead_to_its_text() -> None:
    counter = SimpleTokenCounter(message_overhead=5)
    assert counter.count_message(Message.user("")) == 5
    assert counter.count_message(Message.user("abcdefgh")) == 2 + 5
    # Parts of one message are counted together, then rounded once.
    split = Message.user([TextPart(text="abcd"), TextPart(text="efgh")])
    assert counter.count_message(split) == 2 + 5


def test_simple_counts_tool_calls_and_tool_call_ids() -> None:
    counter = SimpleTokenCounter(chars_per_token=1.0, message_overhead=0)
    call = ToolCall(id="c1", name="read_file", arguments='{"path":"/tmp/x"}')
    assistant = Message.assistant("ok", tool_calls=[call])
    assert counter.count_message(assistant) == len("ok") + len("c1read_file") + len(
        '{"path":"/tmp/x"}'
    )
    result = Message.tool_result(ToolResult.success("c1", "read_file", "contents"))
    assert counter.count_message(result) == len("contents") + len("c1")


def test_simple_charges_a_fixed_cost_per_image_wherever_it_is() -> None:
    counter = SimpleTokenCounter(message_overhead=0, image_tokens=500)
    assert counter.count_message(Message.user([IMAGE])) == 500
    assert counter.count_message(Message.user([IMAGE, TextPart(text="abcd"), IMAGE])) == 1001
    in_tool_result = Message.tool_result(ToolResult.success("c9", "shot", [IMAGE]))
    assert counter.count_message(in_tool_result) == 500 + 1  # + "c9"


def test_simple_default_image_cost_is_documented_high_estimate() -> None:
    assert SimpleTokenCounter().image_tokens == 1600


def test_simple_count_messages_is_the_sum_with_no_request_overhead() -> None:
    counter = SimpleTokenCounter()
    messages = [Message.system("be brief"), Message.user("Hi"), Message.assistant("Hello!")]
    assert counter.count_messages(messages) == sum(map(counter.count_message, messages))
    assert counter.count_messages([]) == 0
    assert counter.count_messages(iter(messages)) == counter.count_messages(messages)


def test_simple_counter_satisfies_the_protocol() -> None:
    assert isinstance(SimpleTokenCounter(), TokenCounter)
    assert not isinstance(object(), TokenCounter)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chars_per_token": 0}, "chars_per_token"),
        ({"chars_per_token": -1.5}, "chars_per_token"),
        ({"chars_per_token": float("nan")}, "chars_per_token"),
        ({"chars_per_token": float("inf")}, "chars_per_token"),
        ({"message_overhead": -1}, "message_overhead"),
        ({"image_tokens": -1}, "image_tokens"),
        ({"image_tokens": 2.5}, "image_tokens"),
    ],
)
def test_simple_counter_rejects_bad_settings_naming_them(kwargs: Any, field: str) -> None:
    with pytest.raises(InvalidRequestError, match=field) as caught:
        SimpleTokenCounter(**kwargs)
    assert caught.value.field == field


# --- TiktokenCounter with a fake tiktoken -------------------------------------------------


class FakeEncoding:
    """One token per whitespace-separated word; records what it was asked to encode."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.encoded: list[str] = []

    def encode_ordinary(self, text: str) -> list[int]:
        self.encoded.append(text)
        return [0] * len(text.split())


def make_fake_tiktoken(*, load_error: Exception | None = None) -> Any:
    module: Any = ModuleType("tiktoken")
    loaded: list[str] = []
    models = {"gpt-4o": "o200k_base", "gpt-4": "cl100k_base"}

    def encoding_name_for_model(model: str) -> str:
        if model not in models:
            raise KeyError(f"Could not automatically map {model} to a tokeniser.")
        return models[model]

    def get_encoding(name: str) -> FakeEncoding:
        if load_error is not None:
            raise load_error
        loaded.append(name)
        return FakeEncoding(name)

    module.encoding_name_for_model = encoding_name_for_model
    module.get_encoding = get_encoding
    module.list_encoding_names = lambda: ["cl100k_base", "o200k_base"]
    module.loaded = loaded
    return module


@pytest.fixture
def fake_tiktoken(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = make_fake_tiktoken()
    monkeypatch.setitem(sys.modules, "tiktoken", fake)
    return fake


@pytest.mark.parametrize(
    ("model", "encoding"),
    [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base"), ("some-future-model", "o200k_base")],
)
def test_tiktoken_picks_the_models_encoding_or_falls_back(
    fake_tiktoken: Any, model: str, encoding: str
) -> None:
    counter = TiktokenCounter(model)
    assert counter.encoding_name == encoding
    assert fake_tiktoken.loaded == [encoding]
    assert counter.model == model


def test_tiktoken_explicit_encoding_wins_over_the_model(fake_tiktoken: Any) -> None:
    assert TiktokenCounter("gpt-4o", encoding="cl100k_base").encoding_name == "cl100k_base"


def test_tiktoken_unknown_encoding_is_a_configuration_error(fake_tiktoken: Any) -> None:
    with pytest.raises(ConfigurationError, match="no encoding 'p99k'") as caught:
        TiktokenCounter(encoding="p99k")
    assert caught.value.field == "encoding"
    assert fake_tiktoken.loaded == []


def test_tiktoken_counts_with_the_cookbook_formula(fake_tiktoken: Any) -> None:
    counter = TiktokenCounter("gpt-4o")
    assert counter.count_text("") == 0
    assert counter.count_text("three little words") == 3
    # 3 per message + role ("user": 1 word) + content.
    assert counter.count_message(Message.user("hello there")) == 3 + 1 + 2
    messages = [Message.system("be brief"), Message.user("hi")]
    # Each reply is primed with <|start|>assistant<|message|>: 3 more per request.
    assert counter.count_messages(messages) == (3 + 1 + 2) + (3 + 1 + 1) + 3
    assert counter.count_messages([]) == 3


def test_tiktoken_counts_tool_calls_ids_and_images(fake_tiktoken: Any) -> None:
    counter = TiktokenCounter("gpt-4o", image_tokens=100)
    call = ToolCall(id="c1", name="search", arguments='{"q": "cats"}')
    assistant = Message.assistant("", tool_calls=[call])
    assert counter.count_message(assistant) == 3 + 1 + (1 + 1 + 2)
    result = Message.tool_result(ToolResult.success("c1", "search", "two results"))
    assert counter.count_message(result) == 3 + 1 + 2 + 1
    assert counter.count_message(Message.user([IMAGE, IMAGE])) == 3 + 1 + 200


def test_tiktoken_encodes_text_as_ordinary_text(fake_tiktoken: Any) -> None:
    counter = TiktokenCounter()
    assert counter.count_text("<|endoftext|>") == 1  # not refused as a special token
    encoding = counter._encoding
    assert isinstance(encoding, FakeEncoding)
    assert "<|endoftext|>" in encoding.encoded


def test_tiktoken_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import tiktoken` raise ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'tachikoma-backends-core\["):
        TiktokenCounter()


def test_tiktoken_unloadable_encoding_explains_the_offline_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = make_fake_tiktoken(load_error=OSError("Name or service not known"))
    monkeypatch.setitem(sys.modules, "tiktoken", fake)
    with pytest.raises(ConfigurationError, match="TIKTOKEN_CACHE_DIR") as caught:
        TiktokenCounter("gpt-4o")
    assert "o200k_base" in caught.value.message
    assert "Name or service not known" in caught.value.message
    assert isinstance(caught.value.__cause__, OSError)


def test_tiktoken_counter_satisfies_the_protocol(fake_tiktoken: Any) -> None:
    assert isinstance(TiktokenCounter(), TokenCounter)
    assert "o200k_base" in repr(TiktokenCounter())


@pytest.mark.skipif(importlib.util.find_spec("tiktoken") is None, reason="tiktoken not installed")
@pytest.mark.parametrize(
    ("model", "encoding"), [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")]
)
def test_real_tiktoken_counts_like_openai(model: str, encoding: str) -> None:
    try:
        counter = TiktokenCounter(model)
    except ConfigurationError as error:  # installed, but the encoding is not cached offline
        pytest.skip(f"tiktoken cannot load {encoding} here: {error.message}")
    assert counter.encoding_name == encoding
    assert counter.count_text("") == 0
    assert counter.count_text("hello world") == 2
    # 3 priming + 3 per message + "user" (1) + "hello world" (2).
    assert counter.count_messages([Message.user("hello world")]) == 9
    assert counter.count_text("<|endoftext|>") > 1  # ordinary text, not the special token
