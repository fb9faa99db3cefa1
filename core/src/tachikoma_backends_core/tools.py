"""Tool definitions: the name, description and JSON-schema parameters a model may call.

Two ways to make one, both validated once, when built (``InvalidRequestError`` names the
field): a chainable builder, for hand-written schemas, and `ToolDefinition.from_function`,
which reads a typed Python function and its docstring so the schema cannot drift from the
code that runs the tool.

Examples:
    >>> tool = ToolDefinition.builder("read_file").required_string("path", "File path").build()
    >>> tool.parameters.to_json_schema()["required"]
    ['path']
"""

from __future__ import annotations

import copy
import inspect
import re
import types
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import Field, TypeAdapter, ValidationInfo, create_model, field_validator
from pydantic.errors import PydanticUndefinedAnnotation, PydanticUserError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaWarningKind

from ._validation import ValidatedModel
from .errors import InvalidRequestError

__all__ = ["TOOL_NAME_PATTERN", "ToolDefinition", "ToolDefinitionBuilder", "ToolParameters"]

#: What every provider accepts as a tool name (OpenAI's rule, the strictest). Match it with
#: ``fullmatch``: ``$`` alone would also accept a trailing newline.
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

JsonType = Literal["string", "integer", "number", "boolean", "object"]
_JSON_TYPES = frozenset(get_args(JsonType))


class ToolParameters(ValidatedModel):
    """A tool's parameters: one JSON schema per parameter, in declaration order.

    ``defs`` holds the shared sub-schemas that properties ``$ref`` (``from_function`` puts
    nested pydantic models there); `to_json_schema` emits it as ``$defs``.
    """

    properties: dict[str, dict[str, Any]] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    defs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("required")
    @classmethod
    def _required_are_properties(cls, required: list[str], info: ValidationInfo) -> list[str]:
        properties = info.data.get("properties", {})
        unknown = [name for name in required if name not in properties]
        if unknown:
            raise ValueError(f"required names parameters that are not properties: {unknown}")
        if len(set(required)) != len(required):
            raise ValueError("required lists a parameter more than once")
        return required

    def to_json_schema(self) -> dict[str, Any]:
        """The ``{"type": "object", ...}`` schema providers expect, as a fresh copy."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": copy.deepcopy(self.properties),
            "required": list(self.required),
        }
        if self.defs:
            schema["$defs"] = copy.deepcopy(self.defs)
        return schema


class ToolDefinition(ValidatedModel):
    """A tool the model may call: ``name`` (``TOOL_NAME_PATTERN``), what it does, its inputs.

    ``strict`` asks the provider to hold the model's arguments to the schema exactly
    (OpenAI's strict function calling); providers without such a mode treat the schema
    as they always do.
    """

    name: str
    description: str = ""
    parameters: ToolParameters = Field(default_factory=ToolParameters)
    strict: bool = False

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not TOOL_NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"tool name must be 1-64 ASCII letters, digits, '_' or '-', got {name!r}"
            )
        return name

    @classmethod
    def builder(cls, name: str) -> ToolDefinitionBuilder:
        """Start building tool ``name``; see `ToolDefinitionBuilder`."""
        return ToolDefinitionBuilder(name)

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> ToolDefinition:
        """The tool that ``fn`` (sync or async) implements, from its type hints and docstring.

        The name defaults to ``fn.__name__`` and the description to the docstring's summary;
        parameter descriptions come from a Google ``Args:`` section or Sphinx ``:param:``
        fields, unless ``Annotated[X, Field(description=...)]`` already gives one.
        Parameters with a default, or whose type admits ``None``, are not required.

        Examples:
            >>> def greet(who: str, times: int = 1) -> str:
            ...     '''Greet someone.
            ...
            ...     Args:
            ...         who: whom to greet.
            ...     '''
            ...     return "hi " * times + who
            >>> ToolDefinition.from_function(greet).parameters.properties["who"]
            {'type': 'string', 'description': 'whom to greet.'}
        """
        doc = inspect.getdoc(fn) or ""
        parameters = _parameters_from_function(fn, _parameter_docs(doc))
        return cls(
            name=fn.__name__ if name is None else name,
            description=_summary(doc) if description is None else description,
            parameters=parameters,
        )


class ToolDefinitionBuilder:
    """Builds a `ToolDefinition` step by step; every method returns the builder.

    Mistakes (a duplicate or empty parameter name, an empty enum) are reported by
    `build`, so a chain reads top to bottom and fails in one place.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._description = ""
        self._strict = False
        self._parameters: list[tuple[str, dict[str, Any], bool]] = []
        self._problems: list[tuple[str, str]] = []  # (field, message), raised by build()

    def strict(self, strict: bool = True) -> ToolDefinitionBuilder:
        """Ask for arguments that follow the schema exactly; see `ToolDefinition`."""
        self._strict = strict
        return self

    def description(self, text: str) -> ToolDefinitionBuilder:
        self._description = text
        return self

    def parameter(
        self, name: str, schema: dict[str, Any], required: bool = True
    ) -> ToolDefinitionBuilder:
        """Add parameter ``name`` with an arbitrary JSON ``schema`` (copied)."""
        self._parameters.append((name, copy.deepcopy(schema), required))
        return self

    def _typed(
        self, name: str, json_type: str, desc: str, required: bool, **extra: Any
    ) -> ToolDefinitionBuilder:
        schema: dict[str, Any] = {"type": json_type, **extra}
        if desc:
            schema["description"] = desc
        return self.parameter(name, schema, required)

    def required_string(self, name: str, desc: str = "") -> ToolDefinitionBuilder:
        return self._typed(name, "string", desc, True)

    def optional_string(self, name: str, desc: str = "") -> ToolDefinitionBuilder:
        return self._typed(name, "string", desc, False)

    def required_int(self, name: str, desc: str = "") -> ToolDefinitionBuilder:
        return self._typed(name, "integer", desc, True)

    def optional_int(self, name: str, desc: str = "") -> ToolDefinitionBuilder:
        return self._typed(name, "integer", desc, False)

    def required_number(self, name: str, desc: str = "") -> ToolDefinitionBuilder:
        return self._typed(name, "number", desc, True)

    def optional_number(self, name: str, desc: str = "") -> ToolDefinitionBuilder:
        return self._typed(name, "number", desc, False)

    def required_bool(self, name: str, desc: str = "") -> ToolDefinitionBuilder:
        return self._typed(name, "boolean", desc, True)

    def optional_bool(self, name: str, desc: str = "") -> ToolDefinitionBuilder:
        return self._typed(name, "boolean", desc, False)

    def enum(
        self, name: str, values: Sequence[str], desc: str = "", required: bool = True
    ) -> ToolDefinitionBuilder:
        """A string parameter that must be one of ``values``."""
        if isinstance(values, str) or not values:
            self._problems.append((f"parameters.{name}", f"enum {name!r} needs a list of values"))
        return self._typed(name, "string", desc, required, enum=list(values))

    def array(
        self, name: str, item_type: JsonType, desc: str = "", required: bool = True
    ) -> ToolDefinitionBuilder:
        """A list parameter whose items have JSON type ``item_type`` (``"string"``, ...)."""
        if item_type not in _JSON_TYPES:
            problem = f"array {name!r} item type must be one of {sorted(_JSON_TYPES)}"
            self._problems.append((f"parameters.{name}", problem))
        return self._typed(name, "array", desc, required, items={"type": item_type})

    def build(self) -> ToolDefinition:
        """The finished definition; raises ``InvalidRequestError`` naming the culprit."""
        properties: dict[str, dict[str, Any]] = {}
        required: list[str] = []
        for name, schema, is_required in self._parameters:
            if not isinstance(name, str) or not name:
                raise InvalidRequestError(
                    f"tool {self._name!r}: parameter names must be non-empty strings, got {name!r}",
                    field="parameters",
                )
            if name in properties:
                raise InvalidRequestError(
                    f"tool {self._name!r}: duplicate parameter {name!r}",
                    field=f"parameters.{name}",
                )
            properties[name] = copy.deepcopy(schema)
            if is_required:
                required.append(name)
        if self._problems:
            field, message = self._problems[0]
            raise InvalidRequestError(f"tool {self._name!r}: {message}", field=field)
        return ToolDefinition(
            name=self._name,
            description=self._description,
            parameters=ToolParameters(properties=properties, required=required),
            strict=self._strict,
        )


# --- from_function ----------------------------------------------------------------------


class _SchemaGenerator(GenerateJsonSchema):
    # A default JSON cannot show (an object()) is simply left out of the schema. pydantic
    # declares this as an instance variable, hence no ClassVar.
    ignored_warning_kinds: set[JsonSchemaWarningKind] = {  # noqa: RUF012
        "skipped-choice",
        "non-serializable-default",
    }


_SKIPPED_FIRST = ("self", "cls")


def _parameters_from_function(fn: Callable[..., Any], docs: dict[str, str]) -> ToolParameters:
    signature = inspect.signature(fn)
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:  # NameError for an unresolvable forward reference, and kin
        raise InvalidRequestError(
            f"cannot resolve the type hints of {fn!r}: {exc}", field="parameters"
        ) from None
    fields: dict[str, Any] = {}
    required: list[str] = []
    for index, param in enumerate(signature.parameters.values()):
        name, where = param.name, f"parameters.{param.name}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidRequestError(
                f"tool functions cannot take *args/**kwargs: {name}", field=where
            )
        if name not in hints:
            if index == 0 and name in _SKIPPED_FIRST:
                continue
            raise InvalidRequestError(f"parameter {name!r} has no type annotation", field=where)
        annotation = hints[name]
        try:  # one at a time, so an unsupported type is reported with its parameter
            TypeAdapter(annotation).json_schema(schema_generator=_SchemaGenerator)
        except (PydanticUserError, PydanticUndefinedAnnotation) as exc:
            reason = str(exc).splitlines()[0]  # pydantic goes on about its internals
            raise InvalidRequestError(f"parameter {name!r}: {reason}", field=where) from None
        has_default = param.default is not param.empty
        # Internal field names plus an alias: a parameter may be called ``json`` or ``_x``,
        # which pydantic would refuse or warn about as a model field.
        default = Field(param.default, alias=name) if has_default else Field(alias=name)
        fields[f"p{index}"] = (annotation, default)
        if not has_default and not _admits_none(annotation):
            required.append(name)
    try:
        model = create_model("ToolArguments", **fields)
        schema = _strip_titles(model.model_json_schema(schema_generator=_SchemaGenerator))
    except (PydanticUserError, PydanticUndefinedAnnotation) as exc:
        raise InvalidRequestError(f"no JSON schema for {fn!r}: {exc}", field="parameters") from None
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    for name, text in docs.items():
        if name in properties and text:
            properties[name].setdefault("description", text)
    return ToolParameters(properties=properties, required=required, defs=schema.get("$defs", {}))


def _admits_none(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        return _admits_none(get_args(annotation)[0])
    if annotation is None or annotation is type(None):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_admits_none(arg) for arg in get_args(annotation))
    return False


# Keywords whose value is a schema, a list of schemas, or a name -> schema map. "title" is
# dropped only as a keyword; a property *named* "title" or a default containing one stays.
_SUBSCHEMAS = frozenset(
    {"items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else"}
    | {"additionalItems", "unevaluatedItems", "unevaluatedProperties"}
    | {"anyOf", "allOf", "oneOf", "prefixItems"}
)
_SUBSCHEMA_MAPS = frozenset(
    {"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"}
)


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strip_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema  # boolean schemas
    stripped: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key in _SUBSCHEMAS:
            stripped[key] = _strip_titles(value)
        elif key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            stripped[key] = {name: _strip_titles(sub) for name, sub in value.items()}
        else:
            stripped[key] = value
    return stripped


# --- docstrings ---------------------------------------------------------------------------

_GOOGLE_ARGS = re.compile(r"(Args|Arguments|Parameters|Keyword Args|Keyword Arguments):$")
_GOOGLE_ENTRY = re.compile(r"\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(.*)$")
_SPHINX_PARAM = re.compile(
    r":(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?(\w+)\s*:(.*)$"
)
_SECTION = re.compile(
    r"\s*(?:(?:Args|Arguments|Parameters|Keyword Args|Keyword Arguments|Returns?|Yields?"
    r"|Raises|Examples?|Notes?|Attributes|See Also|Todo):\s*$"
    r"|:(?:param|parameter|arg|argument|key|keyword|type|returns?|rtype|raises?)\b)"
)


def _summary(doc: str) -> str:
    """Docstring text before its first section, each paragraph unwrapped onto one line."""
    lines = doc.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        numpy_header = i + 1 < len(lines) and re.fullmatch(r"\s*-{3,}\s*", lines[i + 1])
        if _SECTION.match(line) or (numpy_header and line.strip()):
            break
        kept.append(line)
    paragraphs = re.split(r"\n\s*\n", "\n".join(kept))
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def _parameter_docs(doc: str) -> dict[str, str]:
    """``{parameter: description}`` from Google ``Args:`` and Sphinx ``:param x:`` fields."""
    docs: dict[str, str] = {}
    current: str | None = None  # the entry that indented lines continue
    entry_indent = header_indent = 0
    args_indent: int | None = None  # indentation of entries in the Args section
    in_args = False
    for line in doc.splitlines():
        text = line.strip()
        if not text:
            continue
        indent = len(line) - len(line.lstrip())
        if match := _SPHINX_PARAM.match(text):
            current, entry_indent, in_args = match[1], indent, False
            docs[current] = match[2].strip()
            continue
        if _GOOGLE_ARGS.match(text):
            in_args, header_indent, args_indent, current = True, indent, None, None
            continue
        if in_args and indent <= header_indent:
            in_args = False
        if in_args:
            args_indent = indent if args_indent is None else args_indent
            if indent <= args_indent and (match := _GOOGLE_ENTRY.match(text)):
                current, entry_indent = match[1], indent
                docs[current] = match[2].strip()
                continue
        if current is not None and indent > entry_indent and not text.startswith(":"):
            docs[current] = f"{docs[current]} {text}".strip()
            continue
        current = None
    return docs
