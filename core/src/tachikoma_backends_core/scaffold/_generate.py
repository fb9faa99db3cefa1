"""Render the templates of a new provider plugin into a directory, refusing to overwrite.

The templates live next to this module (``templates/``, shipped in the wheel) and are
rendered with `string.Template`, the standard library's: ``${name}``-style placeholders,
``$$`` for a dollar sign. What the three styles share is one template
(``templates/*.tmpl``); what differs (how answers and streams are read, how the harness
writes them, the tests' sample bodies) is one section per style
(``templates/STYLE/*.tmpl``), inserted into the shared file at ``${style_section}``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

from tachikoma_backends_core.manifest import CONTRACT_VERSION, PLUGIN_NAME_PATTERN

__all__ = ["DEFAULT_STYLE", "STYLES", "ScaffoldError", "new_plugin", "next_steps"]


@dataclass(frozen=True)
class _Style:
    """What a style's shared templates need to know about it."""

    description: str
    completion_path: str
    parser: str
    stream_content_type: str


STYLES: Mapping[str, _Style] = {
    "openai-sse": _Style(
        description="an OpenAI Chat Completions-compatible API: Server-Sent Events of "
        "`data: {...}` chunks, a usage-only chunk, then `data: [DONE]`",
        completion_path="/v1/chat/completions",
        parser="SSEParser",
        stream_content_type="text/event-stream",
    ),
    "sse": _Style(
        description="an API streaming Server-Sent Events with named `event:` lines "
        "(`message_start`, `text_delta`, `tool_call_start`, `tool_call_delta`, "
        "`message_end`, `error`)",
        completion_path="/v1/messages",
        parser="SSEParser",
        stream_content_type="text/event-stream",
    ),
    "ndjson": _Style(
        description="an API streaming one JSON object per line (NDJSON): text deltas, "
        "whole tool calls, then the finish and usage",
        completion_path="/v1/complete",
        parser="NDJSONParser",
        stream_content_type="application/x-ndjson",
    ),
}

DEFAULT_STYLE = "openai-sse"

# Output path (with {package} and {module} filled in) -> its shared template.
_FILES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    ".github/workflows/conformance.yml": "conformance.yml.tmpl",
    "src/{package}/__init__.py": "__init__.py.tmpl",
    "src/{package}/_plugin.py": "_plugin.py.tmpl",
    "src/{package}/_wire.py": "_wire.py.tmpl",
    "src/{package}/_backend.py": "_backend.py.tmpl",
    "src/{package}/harness.py": "harness.py.tmpl",
    "src/{package}/py.typed": None,
    "tests/test_{module}.py": "test_plugin.py.tmpl",
}
# The shared templates with a style section, and that section's file in templates/STYLE/.
_SECTIONS = {"_wire.py.tmpl": "wire.tmpl", "harness.py.tmpl": "harness.tmpl"}
_SECTIONS["test_plugin.py.tmpl"] = "tests.tmpl"


class ScaffoldError(ValueError):
    """`new_plugin` cannot generate what was asked; nothing was written.

    Attributes:
        field: what was wrong: ``"name"``, ``"style"`` or ``"directory"``.
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def new_plugin(name: str, *, style: str = DEFAULT_STYLE, directory: Path = Path(".")) -> Path:
    """Generate the distribution ``tachikoma-backend-NAME`` in ``directory``; its path.

    Args:
        name: the plugin's name, as users will pass it to ``registry.create``: lowercase
            letters, digits, ``-`` and ``_`` (``-`` becomes ``_`` in the package name).
        style: the shape of the provider's API, one of `STYLES`.
        directory: where the distribution's folder is created.

    Raises:
        ScaffoldError: a name a plugin cannot have, an unknown style, or a target folder
            that exists and is not empty (nothing is ever overwritten).
    """
    if not PLUGIN_NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"{name!r} cannot name a plugin: use 1 to 64 lowercase letters, digits, '-' "
            "and '_', starting with a letter or digit (e.g. acme, my-llm)",
            field="name",
        )
    if style not in STYLES:
        raise ScaffoldError(
            f"unknown style {style!r}: choose one of {', '.join(STYLES)}", field="style"
        )
    target = Path(directory) / f"tachikoma-backend-{name}"
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(
            f"{target} already exists and is not empty: nothing was written (choose another "
            "--directory, or move it away)",
            field="directory",
        )
    files = _render_all(name, style)
    for path, content in files.items():
        written = target / path
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_text(content, encoding="utf-8")
    return target


def next_steps(name: str, target: Path) -> str:
    """What to do after `new_plugin` wrote ``target``: install it, run the suite."""
    where = str(target) if target.is_absolute() else f"./{target}"
    package = f"tachikoma_backend_{name.replace('-', '_')}"
    return "\n".join(
        [
            f"wrote {where}",
            "next steps:",
            "  # core: from a checkout of Tachikoma (once published: pip install "
            "tachikoma-backends-core)",
            "  pip install path/to/checkout/core",
            f'  pip install -e "{where}[conformance]"',
            f"  pytest --plugin={name}  # the conformance suite, from any directory",
            f"  pytest {where}/tests  # the plugin's own tests",
            f"then make the lines marked PROVIDER: in {where}/src/{package} your provider's",
        ]
    )


def _render_all(name: str, style: str) -> dict[str, str]:
    values = _values(name, style)
    templates = importlib.resources.files(__package__ or __name__) / "templates"
    rendered: dict[str, str] = {}
    for path, template in _FILES.items():
        out = path.format(package=values["package"], module=values["module"])
        if template is None:
            rendered[out] = ""
            continue
        extra = {}
        if template in _SECTIONS:
            section = (templates / style / _SECTIONS[template]).read_text(encoding="utf-8")
            extra["style_section"] = Template(section).substitute(values).strip("\n")
        text = (templates / template).read_text(encoding="utf-8")
        rendered[out] = Template(text).substitute(values, **extra)
    return rendered


def _values(name: str, style: str) -> dict[str, str]:
    """The placeholders' values for plugin ``name``: its name in every form needed."""
    module = name.replace("-", "_")
    title = "".join(part.capitalize() for part in re.split(r"[-_]", name) if part)
    env = module.upper()
    if not title[0].isalpha():  # "01ai": a class name and a shell variable need a letter
        title, env = f"Provider{title}", f"PROVIDER_{env}"
    # The plugin accepts this core's minor series: the range the docs' plugins declare.
    try:
        core = importlib.metadata.version("tachikoma-backends-core")
    except importlib.metadata.PackageNotFoundError:  # a source tree: this release's series
        core = "0.1"
    release = re.match(r"(\d+)\.(\d+)", core)
    major, minor = (int(release[1]), int(release[2])) if release else (0, 1)
    details = STYLES[style]
    return {
        "name": name,
        "module": module,
        "package": f"tachikoma_backend_{module}",
        "distribution": f"tachikoma-backend-{name}",
        "Title": title,
        "ENV": env,
        "style": style,
        "style_description": details.description,
        "completion_path": details.completion_path,
        "parser": details.parser,
        "stream_content_type": details.stream_content_type,
        "contract": str(CONTRACT_VERSION),
        "core_requirement": f"tachikoma-backends-core>={major}.{minor},<{major}.{minor + 1}",
    }
