"""The standard tools of a coding agent, defined once so every application words them alike.

Only the *definitions* live here (name, description, parameters): running a tool is the
application's business, since only it knows its sandbox. Each call returns fresh objects,
so a caller may keep or hand them on without sharing state.

Examples:
    >>> [tool.name for tool in all_predefined_tools()]
    ['read_file', 'write_file', 'edit_file', 'list_files', 'search_files', 'bash']
    >>> predefined_tool("read_file").parameters.required
    ['path']
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import InvalidRequestError
from .tools import ToolDefinition

__all__ = ["all_predefined_tools", "predefined_tool"]


def _read_file() -> ToolDefinition:
    return (
        ToolDefinition.builder("read_file")
        .description("Read a text file and return its contents.")
        .required_string("path", "Path of the file to read.")
        .build()
    )


def _write_file() -> ToolDefinition:
    return (
        ToolDefinition.builder("write_file")
        .description(
            "Write content to a file, creating the file or replacing everything it contained."
        )
        .required_string("path", "Path of the file to write.")
        .required_string("content", "The complete new contents of the file.")
        .build()
    )


def _edit_file() -> ToolDefinition:
    return (
        ToolDefinition.builder("edit_file")
        .description(
            "Edit a file by replacing an exact piece of its text. `old` must appear in the "
            "file exactly as given (whitespace and indentation included) and exactly once; "
            "include enough surrounding lines to make it unique."
        )
        .required_string("path", "Path of the file to edit.")
        .required_string("old", "The exact text to replace.")
        .required_string("new", "The text to put in its place.")
        .build()
    )


def _list_files() -> ToolDefinition:
    return (
        ToolDefinition.builder("list_files")
        .description("List the files and directories in a directory.")
        .required_string("path", "Path of the directory to list.")
        .optional_bool("recursive", "Also list the contents of subdirectories (default false).")
        .build()
    )


def _search_files() -> ToolDefinition:
    return (
        ToolDefinition.builder("search_files")
        .description(
            "Search the contents of files for a regular expression and return the matching "
            "lines with their file paths and line numbers."
        )
        .required_string("pattern", "The regular expression to search for.")
        .optional_string(
            "path", "File or directory to search (default: the current working directory)."
        )
        .build()
    )


def _bash() -> ToolDefinition:
    return (
        ToolDefinition.builder("bash")
        .description(
            "Run a shell command with bash and return its exit status, standard output and "
            "standard error."
        )
        .required_string("command", "The command line to run.")
        .optional_int("timeout", "Seconds to let the command run before it is stopped.")
        .build()
    )


# In the order tools are offered to a model: reading before writing before running.
_FACTORIES: dict[str, Callable[[], ToolDefinition]] = {
    "read_file": _read_file,
    "write_file": _write_file,
    "edit_file": _edit_file,
    "list_files": _list_files,
    "search_files": _search_files,
    "bash": _bash,
}


def all_predefined_tools() -> list[ToolDefinition]:
    """Every predefined tool, as new objects in a new list: callers share nothing."""
    return [factory() for factory in _FACTORIES.values()]


def predefined_tool(name: str) -> ToolDefinition:
    """The predefined tool called ``name``; ``InvalidRequestError`` lists the known names."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise InvalidRequestError(
            f"no predefined tool {name!r}; known tools: {', '.join(_FACTORIES)}", field="name"
        ) from None
    return factory()
