"""Turn pydantic's validation errors into our typed errors, naming the field.

Why: callers catch ``InvalidRequestError``/``ConfigurationError`` (``BackendError``s), not
pydantic internals, and the message must say which field was wrong without echoing the
input value (which, for configurations, may be a secret).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigurationError, InvalidRequestError

__all__ = ["ValidatedModel", "field_path", "validation_problems"]


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("messages", 0, "content")`` -> ``"messages[0].content"``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _join(base: str, path: str) -> str:
    if not base or not path:
        return base or path
    return base + path if path.startswith("[") else f"{base}.{path}"


# Model-level validators cannot set a location, so they start their message with it.
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.*)$", re.DOTALL)


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field path, message)`` for each problem in ``exc``, without input values.

    Nested models raise our own typed errors (pydantic calls their ``__init__``), so their
    problems are spliced in under the outer path: ``messages[0].role``.
    """
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_input=False, include_url=False):
        # Drop pydantic's union-branch and validator-kind markers ("function-after[...]").
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
        base = field_path(loc)
        inner = (error.get("ctx") or {}).get("error")
        nested = getattr(inner, "problems", None)
        if nested:
            problems.extend((_join(base, path), message) for path, message in nested)
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        match = _FIELD_PREFIX.match(message)
        if match:
            problems.append((_join(base, match[1]), match[2]))
        else:
            problems.append((base, message))
    return _without_union_noise(problems)


def _top_field(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _without_union_noise(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop "wrong type" reports from union branches when the field has a specific problem.

    ``content: str | list[...]`` given a bad list reports both "not a valid string" and the
    list's real problem; only the latter helps.
    """
    specific_fields = {
        _top_field(path) for path, msg in problems if not msg.startswith("Input should be a")
    }
    kept = [
        (path, msg)
        for path, msg in problems
        if not (msg.startswith("Input should be a") and _top_field(path) in specific_fields)
    ]
    return kept or problems


class ValidatedModel(BaseModel):
    """Immutable pydantic model whose invalid input raises a ``BackendError``.

    Subclasses pick the error type with ``invalid_input_error``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    invalid_input_error: ClassVar[type[InvalidRequestError | ConfigurationError]] = (
        InvalidRequestError
    )

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise self._typed_error(exc) from None

    def __setattr__(self, name: str, value: Any) -> None:
        # Models are immutable; say so with our error type rather than pydantic's.
        raise self.invalid_input_error(
            f"{type(self).__name__} is immutable: build a new one (requests have with_* "
            f"builders) instead of assigning {name!r}",
            field=name,
        )

    @classmethod
    def _typed_error(cls, exc: ValidationError) -> InvalidRequestError | ConfigurationError:
        problems = validation_problems(exc)
        description = "; ".join(f"{path}: {msg}" if path else msg for path, msg in problems)
        message = f"invalid {cls.__name__}: {description}"
        field = next((path for path, _ in problems if path), None)
        return cls.invalid_input_error(message, field=field, problems=problems)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        """As pydantic's, but invalid input raises our typed error."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise cls._typed_error(exc) from None
