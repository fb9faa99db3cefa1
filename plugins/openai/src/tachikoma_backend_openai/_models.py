"""The OpenAI chat models this plugin knows, with their documented limits and rules.

Limits are the context window and maximum output tokens of OpenAI's model pages
(https://developers.openai.com/api/docs/models), cross-checked with the model ids of the
official SDK (``openai/types/shared/chat_model.py``). Models whose shutdown date has
passed, and those served only by the Responses API (the ``-pro`` and codex variants), are
left out. A model missing here still works, passed through untouched: the API (or an
OpenAI-compatible server) decides, and `OpenAIModel.lookup` returns ``None``.

What a model's entry decides when the plugin encodes a request:

* ``reasoning``: the system prompt goes out as a ``developer`` message and the output
  limit as ``max_completion_tokens`` (reasoning models refuse ``max_tokens``); other
  models get ``system`` and ``max_tokens``.
* ``efforts``: the ``reasoning_effort`` values the model takes; another is refused before
  anything is sent.
* ``tools_need_no_effort``: on Chat Completions, GPT-5.2 and later call function tools
  only with ``reasoning_effort`` ``"none"``; with tools the plugin sends ``"none"`` when
  the request names no effort, and refuses any other. A model without ``"none"`` (GPT-6
  Astra) cannot call function tools here at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_MODEL", "OpenAIModel"]

#: The model a backend uses when neither the config nor the request names one: current,
#: not scheduled for shutdown, and its default effort ("none") lets tools and
#: temperature work as they do on any chat model.
DEFAULT_MODEL = "gpt-5.4-mini"

# Snapshot ids end with their release date: "gpt-5.4-mini-2026-03-17".
_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_NONE_TO_XHIGH = frozenset({"none", "low", "medium", "high", "xhigh"})
_NONE_TO_MAX = _NONE_TO_XHIGH | {"max"}
_LOW_TO_HIGH = frozenset({"low", "medium", "high"})


@dataclass(frozen=True, slots=True)
class OpenAIModel:
    """An OpenAI chat model and how requests to it must be shaped.

    Attributes:
        id: the id to pass as ``model``.
        context_window: input plus output tokens the model can attend to.
        max_output_tokens: the most output tokens a request may ask for.
        reasoning: a reasoning model (``developer`` role, ``max_completion_tokens``).
        efforts: the ``reasoning_effort`` values it takes (empty: none at all).
        tools_need_no_effort: function tools work only with ``reasoning_effort="none"``.
        vision: it reads images.

    Examples:
        >>> model = OpenAIModel.lookup("gpt-5.4-mini-2026-03-17")
        >>> model.id, model.context_window, model.max_output_tokens, model.reasoning
        ('gpt-5.4-mini', 400000, 128000, True)
        >>> OpenAIModel.lookup("my-local-llama") is None
        True
    """

    id: str
    context_window: int
    max_output_tokens: int
    reasoning: bool = True
    efforts: frozenset[str] = _NONE_TO_XHIGH
    tools_need_no_effort: bool = False
    vision: bool = True

    @classmethod
    def known(cls) -> tuple[OpenAIModel, ...]:
        """Every model in the registry, newest first."""
        return _KNOWN

    @classmethod
    def lookup(cls, name: str) -> OpenAIModel | None:
        """The model ``name`` denotes (an id, or a dated snapshot of one)."""
        return _BY_ID.get(name) or _BY_ID.get(_DATE_SUFFIX.sub("", name))


def _gpt6(model_id: str, efforts: frozenset[str], *, tools_need_no_effort: bool) -> OpenAIModel:
    return OpenAIModel(
        model_id, 1_050_000, 128_000, efforts=efforts, tools_need_no_effort=tools_need_no_effort
    )


_KNOWN: tuple[OpenAIModel, ...] = (
    # GPT-6.2 (2026-11-17): whether Chat Completions still limits their tools to effort
    # "none" is not documented yet, so the API is left to decide.
    _gpt6("gpt-6.2-astra", _NONE_TO_MAX - {"none"}, tools_need_no_effort=False),
    _gpt6("gpt-6.2-sol", _NONE_TO_MAX - {"none"}, tools_need_no_effort=False),
    # GPT-6: no "none" on Astra and 6.1 Sol, so no function tools on Chat Completions.
    _gpt6("gpt-6-astra", _LOW_TO_HIGH | {"xhigh"}, tools_need_no_effort=True),
    _gpt6("gpt-6.1-sol", _LOW_TO_HIGH | {"xhigh"}, tools_need_no_effort=True),
    _gpt6("gpt-6.1-terra", _NONE_TO_XHIGH, tools_need_no_effort=True),
    _gpt6("gpt-6-sol", _NONE_TO_XHIGH, tools_need_no_effort=True),
    _gpt6("gpt-6-luna", _NONE_TO_XHIGH, tools_need_no_effort=True),
    # GPT-5.6 ("gpt-5.6" is Sol's alias).
    _gpt6("gpt-5.6-sol", _NONE_TO_XHIGH, tools_need_no_effort=True),
    _gpt6("gpt-5.6", _NONE_TO_XHIGH, tools_need_no_effort=True),
    _gpt6("gpt-5.6-terra", _NONE_TO_XHIGH, tools_need_no_effort=True),
    _gpt6("gpt-5.6-luna", _NONE_TO_XHIGH, tools_need_no_effort=True),
    # GPT-5.5 to 5.2: their default effort is "none", so tools work with none named.
    _gpt6("gpt-5.5", _NONE_TO_XHIGH, tools_need_no_effort=True),
    _gpt6("gpt-5.4", _NONE_TO_XHIGH, tools_need_no_effort=True),
    OpenAIModel("gpt-5.4-mini", 400_000, 128_000, tools_need_no_effort=True),
    OpenAIModel("gpt-5.4-nano", 400_000, 128_000, tools_need_no_effort=True),
    OpenAIModel("gpt-5.2", 400_000, 128_000, tools_need_no_effort=True),
    OpenAIModel("gpt-5.1", 400_000, 128_000, efforts=_LOW_TO_HIGH | {"none"}),
    # GPT-5 (shut down 2026-12-11): "minimal" to "high", no "none".
    OpenAIModel("gpt-5", 400_000, 128_000, efforts=_LOW_TO_HIGH | {"minimal"}),
    OpenAIModel("gpt-5-mini", 400_000, 128_000, efforts=_LOW_TO_HIGH | {"minimal"}),
    OpenAIModel("gpt-5-nano", 400_000, 128_000, efforts=_LOW_TO_HIGH | {"minimal"}),
    OpenAIModel("o3", 200_000, 100_000, efforts=_LOW_TO_HIGH),
    # Chat models without reasoning (shut down 2027-01-14).
    OpenAIModel("gpt-4.1", 1_047_576, 32_768, reasoning=False, efforts=frozenset()),
    OpenAIModel("gpt-4.1-mini", 1_047_576, 32_768, reasoning=False, efforts=frozenset()),
    OpenAIModel("gpt-4o", 128_000, 16_384, reasoning=False, efforts=frozenset()),
    OpenAIModel("gpt-4o-mini", 128_000, 16_384, reasoning=False, efforts=frozenset()),
)
_BY_ID: dict[str, OpenAIModel] = {model.id: model for model in _KNOWN}
