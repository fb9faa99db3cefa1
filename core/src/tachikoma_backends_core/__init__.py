"""Tachikoma Backends core: one typed, async interface to LLM providers.

Public names are imported lazily (PEP 562): ``import tachikoma_backends_core`` costs almost
nothing, so listing plugins, the CLI's start-up and pytest runs of projects that merely
have us installed do not pay for pydantic until a model is actually used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import Backend as Backend
    from .backend import BackendCapabilities as BackendCapabilities
    from .backend import BackendInfo as BackendInfo
    from .clock import Clock as Clock
    from .clock import FakeClock as FakeClock
    from .clock import SystemClock as SystemClock
    from .completion import CompletionChunk as CompletionChunk
    from .completion import CompletionRequest as CompletionRequest
    from .completion import CompletionResponse as CompletionResponse
    from .completion import FinishReason as FinishReason
    from .completion import ReasoningEffort as ReasoningEffort
    from .completion import ResponseSchema as ResponseSchema
    from .completion import Usage as Usage
    from .content import ImagePart as ImagePart
    from .content import TextPart as TextPart
    from .context import ContextConfig as ContextConfig
    from .context import ContextState as ContextState
    from .context import ContextTracker as ContextTracker
    from .context import ContextUsage as ContextUsage
    from .errors import AuthenticationError as AuthenticationError
    from .errors import BackendError as BackendError
    from .errors import BackendTimeoutError as BackendTimeoutError
    from .errors import ConfigurationError as ConfigurationError
    from .errors import ContentFilteredError as ContentFilteredError
    from .errors import ContextLengthExceededError as ContextLengthExceededError
    from .errors import InvalidRequestError as InvalidRequestError
    from .errors import ModelNotFoundError as ModelNotFoundError
    from .errors import NetworkError as NetworkError
    from .errors import OverloadedError as OverloadedError
    from .errors import PermissionDeniedError as PermissionDeniedError
    from .errors import PluginLoadError as PluginLoadError
    from .errors import RateLimitError as RateLimitError
    from .errors import RateLimiterUnavailableError as RateLimiterUnavailableError
    from .errors import ServerError as ServerError
    from .errors import StreamProtocolError as StreamProtocolError
    from .errors import ToolArgumentError as ToolArgumentError
    from .health import HealthReport as HealthReport
    from .hooks import Hooks as Hooks
    from .hooks import hookimpl as hookimpl
    from .managed import ManagedBackend as ManagedBackend
    from .manifest import CONTRACT_VERSION as CONTRACT_VERSION
    from .manifest import PluginManifest as PluginManifest
    from .messages import ContentPart as ContentPart
    from .messages import Message as Message
    from .messages import Role as Role
    from .model_management import ModelManager as ModelManager
    from .model_management import ModelSummary as ModelSummary
    from .model_management import PullProgress as PullProgress
    from .plugin import BackendPlugin as BackendPlugin
    from .plugin import EnvVar as EnvVar
    from .plugin import PluginConfig as PluginConfig
    from .predefined_tools import all_predefined_tools as all_predefined_tools
    from .predefined_tools import predefined_tool as predefined_tool
    from .rate_limit import AdaptiveRateLimiter as AdaptiveRateLimiter
    from .rate_limit import Allow as Allow
    from .rate_limit import Permit as Permit
    from .rate_limit import RateLimitConfig as RateLimitConfig
    from .rate_limit import RateLimitDecision as RateLimitDecision
    from .rate_limit import RateLimiter as RateLimiter
    from .rate_limit import RateLimiterStats as RateLimiterStats
    from .rate_limit import RateLimiting as RateLimiting
    from .rate_limit import Wait as Wait
    from .redis_rate_limit import RedisAdaptiveRateLimiter as RedisAdaptiveRateLimiter
    from .redis_rate_limit import RedisPermit as RedisPermit
    from .redis_rate_limit import RedisRateLimiter as RedisRateLimiter
    from .registry import PluginInfo as PluginInfo
    from .registry import Registry as Registry
    from .retry import RetryPolicy as RetryPolicy
    from .streaming import CompletionStream as CompletionStream
    from .streaming import MissingUsageWarning as MissingUsageWarning
    from .streaming import StreamAccumulator as StreamAccumulator
    from .tokens import SimpleTokenCounter as SimpleTokenCounter
    from .tokens import TiktokenCounter as TiktokenCounter
    from .tokens import TokenCounter as TokenCounter
    from .tool_calls import ToolCall as ToolCall
    from .tool_calls import ToolCallDelta as ToolCallDelta
    from .tool_calls import ToolChoice as ToolChoice
    from .tool_calls import ToolResult as ToolResult
    from .tool_calls import ToolResultContent as ToolResultContent
    from .tools import ToolDefinition as ToolDefinition
    from .tools import ToolDefinitionBuilder as ToolDefinitionBuilder
    from .tools import ToolParameters as ToolParameters

# Public name -> the private-ish module that defines it. Kept in step with the
# TYPE_CHECKING block above by tests/test_public_api.py.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["Backend", "BackendCapabilities", "BackendInfo"], "backend"),
    **dict.fromkeys(
        [
            "CompletionChunk",
            "CompletionRequest",
            "CompletionResponse",
            "FinishReason",
            "ReasoningEffort",
            "ResponseSchema",
            "Usage",
        ],
        "completion",
    ),
    **dict.fromkeys(["ImagePart", "TextPart"], "content"),
    **dict.fromkeys(
        [
            "AuthenticationError",
            "BackendError",
            "BackendTimeoutError",
            "ConfigurationError",
            "ContentFilteredError",
            "ContextLengthExceededError",
            "InvalidRequestError",
            "ModelNotFoundError",
            "NetworkError",
            "OverloadedError",
            "PermissionDeniedError",
            "PluginLoadError",
            "RateLimitError",
            "RateLimiterUnavailableError",
            "ServerError",
            "StreamProtocolError",
            "ToolArgumentError",
        ],
        "errors",
    ),
    **dict.fromkeys(["ContentPart", "Message", "Role"], "messages"),
    **dict.fromkeys(["BackendPlugin", "EnvVar", "PluginConfig"], "plugin"),
    **dict.fromkeys(["all_predefined_tools", "predefined_tool"], "predefined_tools"),
    **dict.fromkeys(["PluginInfo", "Registry"], "registry"),
    **dict.fromkeys(["CompletionStream", "MissingUsageWarning", "StreamAccumulator"], "streaming"),
    **dict.fromkeys(
        ["ToolCall", "ToolCallDelta", "ToolChoice", "ToolResult", "ToolResultContent"],
        "tool_calls",
    ),
    **dict.fromkeys(["ToolDefinition", "ToolDefinitionBuilder", "ToolParameters"], "tools"),
    **dict.fromkeys(["Clock", "FakeClock", "SystemClock"], "clock"),
    **dict.fromkeys(["ContextConfig", "ContextState", "ContextTracker", "ContextUsage"], "context"),
    **dict.fromkeys(["HealthReport"], "health"),
    **dict.fromkeys(["Hooks", "hookimpl"], "hooks"),
    **dict.fromkeys(["ManagedBackend"], "managed"),
    **dict.fromkeys(["ModelManager", "ModelSummary", "PullProgress"], "model_management"),
    **dict.fromkeys(["CONTRACT_VERSION", "PluginManifest"], "manifest"),
    **dict.fromkeys(["RetryPolicy"], "retry"),
    **dict.fromkeys(["SimpleTokenCounter", "TiktokenCounter", "TokenCounter"], "tokens"),
    **dict.fromkeys(
        [
            "AdaptiveRateLimiter",
            "Allow",
            "Permit",
            "RateLimitConfig",
            "RateLimitDecision",
            "RateLimiter",
            "RateLimiterStats",
            "RateLimiting",
            "Wait",
        ],
        "rate_limit",
    ),
    **dict.fromkeys(
        ["RedisAdaptiveRateLimiter", "RedisPermit", "RedisRateLimiter"], "redis_rate_limit"
    ),
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version("tachikoma-backends-core")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
