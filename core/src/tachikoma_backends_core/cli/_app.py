"""The commands and their options, as click declares them; the work is in the modules
each command imports when it runs, so that ``tachikoma backends`` loads none of it."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from ._terminal import EXIT_FAILURE, EXIT_OK, Terminal

__all__ = ["tachikoma"]

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
#: `tachikoma_backends_core.scaffold.STYLES`, named here so that listing plugins does not
#: import the scaffold (a test keeps the two the same).
SCAFFOLD_STYLES = ("openai-sse", "sse", "ndjson")


def _run(coroutine: Callable[..., Coroutine[Any, Any, int]], *args: Any, **kwargs: Any) -> int:
    import anyio  # here, not at the top: `tachikoma backends` needs no event loop

    return anyio.run(functools.partial(coroutine, *args, **kwargs))


def _settings(_ctx: click.Context, _param: click.Parameter, pairs: tuple[str, ...]) -> Any:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} must look like KEY=VALUE")
        settings[key.strip()] = value
    return settings


def _option_settings(command: F) -> F:
    return click.option(
        "-o", "--option", "settings", multiple=True, metavar="KEY=VALUE", callback=_settings,
        help="Backend setting (repeatable), e.g. -o base_url=http://127.0.0.1:8080.",
    )(command)  # fmt: skip


def _json_output(command: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON on standard output."
    )(command)


@click.group(context_settings=CONTEXT)
@click.version_option(
    package_name="tachikoma-backends-core", prog_name="tachikoma", message="%(prog)s %(version)s"
)
def tachikoma() -> None:
    """Tachikoma Backends: one interface to LLM providers.

    Every provider is a plugin; `tachikoma backends` lists the installed ones.
    """


@tachikoma.command()
@click.option(
    "--check", is_flag=True,
    help="Also load each plugin and create its backend from the environment, reporting "
    "whether it is configured.",
)  # fmt: skip
@click.option("--no-load", is_flag=True, hidden=True)  # the default now; kept for old scripts
@_json_output
@click.pass_obj
def backends(terminal: Terminal, check: bool, no_load: bool, as_json: bool) -> int:
    """List the installed backend plugins.

    Reads metadata only (no plugin is imported): each plugin's name, distribution and
    version, description, Backend contract and declared capabilities, and any load
    error. Exit status 1 if a plugin cannot be used.
    """
    from ._listing import list_backends

    return list_backends(terminal, check=check and not no_load, as_json=as_json)


@tachikoma.command()
@click.argument("prompt", required=False)
@click.option("-b", "--backend", required=True, help="Plugin name, e.g. mock.")
@click.option("-m", "--model", help="Model id (default: the backend's).")
@click.option("--system", help="System prompt.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Maximum output tokens.")
@click.option("--temperature", type=float, help="Sampling temperature (0 to 2).")
@_option_settings
@click.option("--no-stream", is_flag=True, help="Wait for the whole reply.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Print model, finish reason and usage to stderr."
)
@_json_output
@click.pass_obj
def complete(terminal: Terminal, /, prompt: str | None, **options: Any) -> int:
    """Send one user message and stream the reply to standard output.

    PROMPT is the message; '-', or no PROMPT with standard input piped, reads it from
    standard input. While waiting, a status line (on a terminal) and a line per retry
    go to standard error.
    """
    from ._complete import Ask, complete

    if prompt is None or prompt == "-":
        if prompt is None and sys.stdin.isatty():
            raise click.UsageError("give a PROMPT, or '-' to read it from standard input")
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise click.UsageError("the prompt is empty")
    stream = not options.pop("no_stream")
    return _run(complete, terminal, Ask(prompt=prompt, stream=stream, **options))


@tachikoma.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("-b", "--backend", "named", multiple=True, hidden=True)  # before NAME...
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
    help="Seconds each backend has to answer.",
)  # fmt: skip
@_option_settings
@_json_output
@click.pass_obj
def health(
    terminal: Terminal,
    names: tuple[str, ...],
    named: tuple[str, ...],
    timeout: float,
    settings: dict[str, str],
    as_json: bool,
) -> int:
    """Check that backends answer (default: every plugin), all at once.

    Each line reads 'ok', or 'unhealthy:' and the error the check met: a bad key, an
    overloaded provider, a refused connection, no answer within --timeout. Exit status
    1 unless all are ok.
    """
    from ._health import check_health

    return _run(
        check_health, terminal, [*names, *named], settings, patience=timeout, as_json=as_json
    )


@tachikoma.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@_option_settings
@click.pass_obj
def models(terminal: Terminal, names: tuple[str, ...], settings: dict[str, str]) -> int:
    """List the models a backend has (default: every plugin's).

    For a backend that manages its models (Ollama), what its server holds, with sizes;
    for the others, the models the plugin knows of.
    """
    from ._models import list_models

    return _run(list_models, terminal, list(names), settings)


@tachikoma.command()
@click.argument("model")
@click.option("-b", "--backend", default="ollama", show_default=True, help="Plugin name.")
@_option_settings
@click.pass_obj
def pull(terminal: Terminal, model: str, backend: str, settings: dict[str, str]) -> int:
    """Fetch MODEL for a backend that manages its models, showing progress."""
    from ._models import pull

    return _run(pull, terminal, backend, model, settings)


@tachikoma.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--plugin", default="all", show_default=True, help="Comma-separated plugin names, or 'all'."
)
@click.option("--live", is_flag=True, help="Run against the real services.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- PYTEST_ARGS]...")
def conformance(plugin: str, live: bool, pytest_args: tuple[str, ...]) -> int:
    """Run the conformance suite (needs pytest) against installed plugins.

    Only the traits run, from an empty directory, wherever it is invoked; arguments
    after '--' go to pytest, whose exit status this is.
    """
    from ._conformance import run_suite

    return run_suite(plugin, live=live, pytest_args=list(pytest_args))


@tachikoma.command("new-plugin")
@click.argument("name")
@click.option(
    "--style", type=click.Choice(SCAFFOLD_STYLES), default=SCAFFOLD_STYLES[0],
    show_default=True,
    help="The shape of the provider's API: OpenAI-compatible SSE, SSE with named events, "
    "or one JSON object per line.",
)  # fmt: skip
@click.option(
    "--directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
    help="Where to create tachikoma-backend-NAME (default: the current directory).",
)  # fmt: skip
@click.pass_obj
def new_plugin(terminal: Terminal, name: str, style: str, directory: Path) -> int:
    """Generate a provider plugin distribution that passes the conformance suite.

    NAME is the plugin's name (lowercase letters, digits, '-' and '_'): the
    distribution is tachikoma-backend-NAME, on core's HTTP kit, with a tool-capable
    harness, tests, a README and a CI workflow. Nothing is ever overwritten.
    """
    from tachikoma_backends_core.scaffold import ScaffoldError, new_plugin, next_steps

    try:
        target = new_plugin(name, style=style, directory=directory)
    except ScaffoldError as error:
        if error.field == "name":
            raise click.BadParameter(str(error), param_hint="NAME") from None
        terminal.fail(str(error))  # the target exists: nothing written, nothing lost
        return EXIT_FAILURE
    terminal.print(next_steps(name, target))
    return EXIT_OK
