"""Tool definitions: the builder, ``from_function``, and the predefined coding-agent tools."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from tachikoma_backends_core.errors import InvalidRequestError
from tachikoma_backends_core.predefined_tools import all_predefined_tools, predefined_tool
from tachikoma_backends_core.tools import (
    TOOL_NAME_PATTERN,
    ToolDefinition,
    ToolDefinitionBuilder,
    ToolParameters,
)

# The seed's own tool scenarios live in tests/test_seed_scenarios.py; these go further.


def test_to_json_schema_is_exactly_an_object_schema() -> None:
    tool = ToolDefinition.builder("read_file").required_string("path", "File path").build()
    assert tool.parameters.to_json_schema() == {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "File path"}},
        "required": ["path"],
    }


# --- builder ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args", "schema", "required"),
    [
        ("required_string", (), {"type": "string"}, True),
        ("optional_string", (), {"type": "string"}, False),
        ("required_int", (), {"type": "integer"}, True),
        ("optional_int", (), {"type": "integer"}, False),
        ("required_number", (), {"type": "number"}, True),
        ("optional_number", (), {"type": "number"}, False),
        ("required_bool", (), {"type": "boolean"}, True),
        ("optional_bool", (), {"type": "boolean"}, False),
        ("enum", (["a", "b"],), {"type": "string", "enum": ["a", "b"]}, True),
        ("array", ("integer",), {"type": "array", "items": {"type": "integer"}}, True),
    ],
)
@pytest.mark.parametrize("desc", ["what it is", ""])
def test_builder_method_schema(
    method: str, args: tuple[Any, ...], schema: dict[str, Any], required: bool, desc: str
) -> None:
    builder = ToolDefinition.builder("t")
    assert getattr(builder, method)("p", *args, desc) is builder
    tool = builder.build()
    expected = {**schema, "description": desc} if desc else schema
    assert tool.parameters.properties == {"p": expected}
    assert tool.parameters.required == (["p"] if required else [])


@pytest.mark.parametrize("method", ["enum", "array"])
def test_enum_and_array_can_be_optional(method: str) -> None:
    values = ["x"] if method == "enum" else "string"
    tool = getattr(ToolDefinition.builder("t"), method)("p", values, "d", required=False).build()
    assert tool.parameters.required == []
    assert tool.parameters.properties["p"]["description"] == "d"


@pytest.mark.parametrize("item_type", ["string", "integer", "number", "boolean", "object"])
def test_array_item_types(item_type: Any) -> None:
    tool = ToolDefinition.builder("t").array("xs", item_type).build()
    assert tool.parameters.properties["xs"] == {"type": "array", "items": {"type": item_type}}


@pytest.mark.parametrize("required", [True, False])
def test_parameter_takes_any_schema_and_copies_it(required: bool) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"x": {"type": "integer"}}}
    builder = ToolDefinition.builder("t").parameter("point", schema, required)
    schema["properties"]["x"]["type"] = "string"
    tool = builder.build()
    assert tool.parameters.properties["point"]["properties"]["x"] == {"type": "integer"}
    assert tool.parameters.required == (["point"] if required else [])


def test_builder_keeps_declaration_order_and_description() -> None:
    tool = (
        ToolDefinition.builder("t")
        .optional_bool("c")
        .required_string("a")
        .required_int("b")
        .description("first")
        .description("second")
        .build()
    )
    assert list(tool.parameters.properties) == ["c", "a", "b"]
    assert tool.parameters.required == ["a", "b"]
    assert tool.description == "second"
    assert isinstance(ToolDefinition.builder("t"), ToolDefinitionBuilder)


def test_tool_without_parameters() -> None:
    expected = {"type": "object", "properties": {}, "required": []}
    assert ToolDefinition.builder("noop").build().parameters.to_json_schema() == expected
    assert ToolDefinition(name="noop").parameters.to_json_schema() == expected


def test_duplicate_parameter_is_named() -> None:
    builder = ToolDefinition.builder("t").required_string("path").optional_int("path")
    with pytest.raises(InvalidRequestError, match="duplicate parameter 'path'") as info:
        builder.build()
    assert info.value.field == "parameters.path"


@pytest.mark.parametrize("name", ["", None, 3])
def test_parameter_names_must_be_non_empty_strings(name: Any) -> None:
    with pytest.raises(InvalidRequestError, match="non-empty strings") as info:
        ToolDefinition.builder("t").required_string(name).build()
    assert info.value.field == "parameters"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda b: b.enum("mode", []), "enum 'mode' needs a list of values"),
        (lambda b: b.enum("mode", "ab"), "enum 'mode' needs a list of values"),
        (lambda b: b.array("mode", "str"), "array 'mode' item type must be one of"),
    ],
)
def test_bad_enum_or_array_fails_at_build(
    make: Callable[[ToolDefinitionBuilder], ToolDefinitionBuilder], message: str
) -> None:
    builder = make(ToolDefinition.builder("t"))  # no error yet: the chain goes on
    with pytest.raises(InvalidRequestError, match=re.escape(message)) as info:
        builder.build()
    assert info.value.field == "parameters.mode"


# --- names --------------------------------------------------------------------------------

BAD_NAMES = ["", "a" * 65, "read file", "read.file", "lire_été", "工具", "tool\n", "a/b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_tool_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequestError) as built:
        ToolDefinition.builder(name).build()
    with pytest.raises(InvalidRequestError) as direct:
        ToolDefinition(name=name)
    assert built.value.field == direct.value.field == "name"
    assert isinstance(built.value, ValueError)


@pytest.mark.parametrize("name", ["a", "a" * 64, "Read-File_2", "_", "-"])
def test_valid_tool_names(name: str) -> None:
    assert ToolDefinition.builder(name).build().name == name


@settings(database=None)
@given(st.from_regex(TOOL_NAME_PATTERN, fullmatch=True))
def test_any_name_matching_the_pattern_builds(name: str) -> None:
    assert ToolDefinition.builder(name).build().name == name


_NAME_PART = st.from_regex(r"[a-zA-Z0-9_-]{0,30}", fullmatch=True)
_OUTSIDE_CLASS = st.characters().filter(lambda c: re.fullmatch(r"[a-zA-Z0-9_-]", c) is None)


@settings(database=None)
@given(st.tuples(_NAME_PART, _OUTSIDE_CLASS, _NAME_PART).map("".join))
def test_a_name_with_a_foreign_character_fails(name: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        ToolDefinition.builder(name).build()
    assert info.value.field == "name"


# --- ToolParameters -------------------------------------------------------------------------


def test_to_json_schema_returns_copies() -> None:
    parameters = ToolParameters(
        properties={"p": {"type": "array", "items": {"$ref": "#/$defs/D"}}},
        required=["p"],
        defs={"D": {"type": "object"}},
    )
    schema = parameters.to_json_schema()
    assert schema == {
        "type": "object",
        "properties": {"p": {"type": "array", "items": {"$ref": "#/$defs/D"}}},
        "required": ["p"],
        "$defs": {"D": {"type": "object"}},
    }
    schema["properties"]["p"]["items"]["$ref"] = "changed"
    schema["required"].append("q")
    schema["$defs"]["D"]["type"] = "changed"
    assert parameters.to_json_schema() == parameters.model_copy().to_json_schema()
    assert parameters.properties["p"]["items"] == {"$ref": "#/$defs/D"}
    assert parameters.required == ["p"]
    assert parameters.defs == {"D": {"type": "object"}}


@pytest.mark.parametrize(
    ("required", "message"), [(["nope"], "not properties"), (["p", "p"], "more than once")]
)
def test_required_must_name_properties_once(required: list[str], message: str) -> None:
    properties = {"p": {"type": "string"}}
    with pytest.raises(InvalidRequestError, match=message) as direct:
        ToolParameters(properties=properties, required=required)
    assert direct.value.field == "required"
    raw: Any = {"properties": properties, "required": required}  # as JSON would give it
    with pytest.raises(InvalidRequestError, match=message) as nested:
        ToolDefinition(name="t", parameters=raw)
    assert nested.value.field == "parameters.required"


# --- from_function ------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Point(BaseModel):
    """A point on the plane."""

    x: int
    title: str = "origin"  # a *property* named title survives the title stripping


async def rich(
    query: str,
    ratio: float | None,
    limit: int = 10,
    exact: bool = False,
    tags: list[str] | None = None,
    weights: dict[str, float] | None = None,
    mode: Literal["fast", "slow"] = "fast",
    color: Color = Color.RED,
    where: Optional[Point] = None,  # noqa: UP045 - the Optional spelling is what we test
    points: list[Point] | None = None,
    note: Annotated[str, Field(description="From Field.")] = "",
) -> str:
    """Search the index.

    Matches are ranked
    by relevance.

    Args:
        query: What to
            look for.
        ratio (float): Minimum score.
        limit: At most this many results.
        note: Ignored: Field's description wins.

    Returns:
        The results as text.
    """
    return query


RICH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "What to look for."},
        "ratio": {"anyOf": [{"type": "number"}, {"type": "null"}], "description": "Minimum score."},
        "limit": {"type": "integer", "default": 10, "description": "At most this many results."},
        "exact": {"type": "boolean", "default": False},
        "tags": {
            "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
            "default": None,
        },
        "weights": {
            "anyOf": [
                {"type": "object", "additionalProperties": {"type": "number"}},
                {"type": "null"},
            ],
            "default": None,
        },
        "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
        "color": {"$ref": "#/$defs/Color", "default": "red"},
        "where": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}], "default": None},
        "points": {
            "anyOf": [{"type": "array", "items": {"$ref": "#/$defs/Point"}}, {"type": "null"}],
            "default": None,
        },
        "note": {"type": "string", "default": "", "description": "From Field."},
    },
    "required": ["query"],
    "$defs": {
        "Color": {"type": "string", "enum": ["red", "green"]},
        "Point": {
            "type": "object",
            "description": "A point on the plane.",
            "properties": {
                "x": {"type": "integer"},
                "title": {"type": "string", "default": "origin"},
            },
            "required": ["x"],
        },
    },
}


def test_from_function_rich_async_google_style() -> None:
    tool = ToolDefinition.from_function(rich)
    assert tool.name == "rich"
    assert tool.description == "Search the index.\n\nMatches are ranked by relevance."
    assert tool.parameters.to_json_schema() == RICH_SCHEMA


def sphinx_style(path: str, count: int, *, verbose: bool = False) -> None:
    """Count lines.

    :param path: The file
        to read.
    :param int count: How many.
    :type count: int
    :returns: nothing.
    """


def test_from_function_sphinx_style() -> None:
    tool = ToolDefinition.from_function(sphinx_style)
    assert tool.description == "Count lines."
    assert tool.parameters.to_json_schema() == {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "The file to read."},
            "count": {"type": "integer", "description": "How many."},
            "verbose": {"type": "boolean", "default": False},
        },
        "required": ["path", "count"],
    }


def test_from_function_overrides_and_no_docstring() -> None:
    def undocumented(x: int) -> None: ...

    tool = ToolDefinition.from_function(undocumented)
    assert (tool.name, tool.description) == ("undocumented", "")
    renamed = ToolDefinition.from_function(sphinx_style, name="count_lines", description="")
    assert (renamed.name, renamed.description) == ("count_lines", "")


class Calculator:
    def add(self, a: int, b: int = 0) -> int:
        """Add two numbers."""
        return a + b

    @classmethod
    def make(cls, size: int) -> Calculator:
        return cls()


def unbound_method(self, a: int) -> int:  # type: ignore[no-untyped-def]
    return a


@pytest.mark.parametrize("fn", [Calculator().add, Calculator.make, unbound_method])
def test_from_function_skips_self_and_cls(fn: Callable[..., Any]) -> None:
    properties = ToolDefinition.from_function(fn).parameters.properties
    assert "self" not in properties
    assert "cls" not in properties
    assert len(properties) >= 1


def test_from_function_keeps_parameter_names_pydantic_reserves() -> None:
    def odd(json: str, model_config: int, _private: bool) -> None: ...

    parameters = ToolDefinition.from_function(odd).parameters
    assert list(parameters.properties) == ["json", "model_config", "_private"]
    assert parameters.required == ["json", "model_config", "_private"]


def no_annotation(a: int, b) -> None:  # type: ignore[no-untyped-def]
    """B has no type."""


def star_args(a: int, *rest: int) -> None: ...


def star_kwargs(a: int, **options: int) -> None: ...


def unsupported(a: int, handler: Callable[[int], int]) -> None: ...


def unknown_class(a: int, match: re.Match[str]) -> None: ...


@pytest.mark.parametrize(
    ("fn", "field", "message"),
    [
        (no_annotation, "parameters.b", "'b' has no type annotation"),
        (star_args, "parameters.rest", "*args/**kwargs"),
        (star_kwargs, "parameters.options", "*args/**kwargs"),
        (unsupported, "parameters.handler", "parameter 'handler'"),
        (unknown_class, "parameters.match", "parameter 'match'"),
        (lambda: None, "name", "tool name"),
    ],
)
def test_from_function_errors_name_the_culprit(
    fn: Callable[..., Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=re.escape(message)) as info:
        ToolDefinition.from_function(fn)
    assert info.value.field == field


# --- predefined tools -----------------------------------------------------------------------

PREDEFINED = {
    "read_file": (["path"], []),
    "write_file": (["path", "content"], []),
    "edit_file": (["path", "old", "new"], []),
    "list_files": (["path"], ["recursive"]),
    "search_files": (["pattern"], ["path"]),
    "bash": (["command"], ["timeout"]),
}


def test_predefined_tool_names_in_order() -> None:
    assert [tool.name for tool in all_predefined_tools()] == list(PREDEFINED)


@pytest.mark.parametrize(("name", "params"), PREDEFINED.items())
def test_predefined_tool_parameters(name: str, params: tuple[list[str], list[str]]) -> None:
    required, optional = params
    tool = predefined_tool(name)
    assert tool.name == name
    assert tool.description
    assert tool.parameters.required == required
    assert list(tool.parameters.properties) == required + optional
    assert all(schema.get("description") for schema in tool.parameters.properties.values())


def test_predefined_types() -> None:
    assert predefined_tool("list_files").parameters.properties["recursive"]["type"] == "boolean"
    assert predefined_tool("bash").parameters.properties["timeout"]["type"] == "integer"
    assert predefined_tool("search_files").parameters.properties["path"]["type"] == "string"


def test_all_predefined_tools_is_fresh_each_call() -> None:
    first = all_predefined_tools()
    first.clear()
    again = all_predefined_tools()
    assert len(again) == len(PREDEFINED)
    again[0].parameters.properties["path"]["type"] = "changed"
    assert all_predefined_tools()[0].parameters.properties["path"]["type"] == "string"


def test_unknown_predefined_tool_lists_the_known_names() -> None:
    with pytest.raises(InvalidRequestError, match="no predefined tool 'nope'") as info:
        predefined_tool("nope")
    assert info.value.field == "name"
    for name in PREDEFINED:
        assert name in info.value.message
