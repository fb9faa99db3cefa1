"""The ``tachikoma`` command: list plugins, stream a completion, check health, manage
models, run the suite, generate a new plugin.

Every failure prints one line (``tachikoma: error: ...``) and exits non-zero; secrets
never reach the terminal because errors are redacted and configs are never printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from . import registry
from .errors import BackendError

if TYPE_CHECKING:
    from .model_management import ModelManager

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parse_options(pairs: Sequence[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BackendError(f"option {pair!r} must look like KEY=VALUE")
        options[key.strip()] = value
    return options


def _capabilities_line(name: str) -> str:
    import anyio

    try:
        backend = registry.create(name)
    except BackendError as error:
        return f"(not configured: {error.message})"
    try:
        caps = backend.info.capabilities
    except Exception as exc:  # a plugin's bug: reported on its line, the others still listed
        return f"(info failed: {type(exc).__name__}: {exc})"
    finally:
        anyio.run(backend.aclose)
    flags = [f for f in ("streaming", "tool_calling", "vision", "json_mode") if getattr(caps, f)]
    return (
        f"{', '.join(flags) or 'no optional features'}; context {caps.max_context_tokens:,}, "
        f"output {caps.max_output_tokens:,} tokens"
    )


def _cmd_backends(args: argparse.Namespace, out: TextIO) -> int:
    infos = registry.available() if args.no_load else registry.default_registry.check()
    if not infos:
        print("no backend plugins installed (pip install tachikoma-backend-<name>)", file=out)
        return EXIT_OK
    for info in infos:
        print(f"{info.name:<12} {info.describe()}", file=out)
        if info.error is not None:
            print(f"{'':<12} load error: {info.error.message}", file=out)
        elif not args.no_load:
            print(f"{'':<12} {_capabilities_line(info.name)}", file=out)
        else:  # metadata only: what the manifest declares
            declared = info.manifest.capabilities
            claims = (
                "capabilities not declared"
                if declared is None
                else ", ".join(sorted(declared)) or "no optional features"
            )
            print(f"{'':<12} contract {info.manifest.contract}; {claims}", file=out)
    return EXIT_FAILURE if any(not info.ok for info in infos) else EXIT_OK


async def _complete(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .completion import CompletionRequest
    from .messages import Message

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    messages = [Message.system(args.system)] if args.system else []
    request = CompletionRequest(
        messages=[*messages, Message.user(prompt)],
        model=args.model,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
    )
    async with registry.create(args.backend, **_parse_options(args.option)) as backend:
        if args.no_stream:
            response = await backend.complete(request)
            print(response.text, file=out)
        else:
            async with await backend.complete_stream(request) as stream:
                async for chunk in stream:
                    out.write(chunk.delta)
                    out.flush()
                response = await stream.collect()
            print(file=out)
    for call in response.tool_calls:
        print(f"[tool call {call.id}] {call.name}({call.arguments})", file=out)
    if args.verbose:
        usage = response.usage
        print(
            f"[{response.model}: finish={response.finish_reason.value}, "
            f"tokens in={usage.input_tokens} out={usage.output_tokens}]",
            file=err,
        )
    return EXIT_OK


async def _health(args: argparse.Namespace, out: TextIO) -> int:
    names = [args.backend] if args.backend else registry.names()
    healthy = True
    for name in names:
        try:
            async with registry.create(name) as backend:
                ok = await backend.health_check()
            status = "ok" if ok else "unhealthy"
        except BackendError as error:
            ok, status = False, f"error: {error.message}"
        healthy = healthy and ok
        print(f"{name:<12} {status}", file=out)
    return EXIT_OK if healthy else EXIT_FAILURE


def _manager(backend: Any, name: str, doing: str) -> ModelManager:
    from .model_management import ModelManager

    inner = getattr(backend, "inner", backend)
    if not isinstance(inner, ModelManager):
        raise BackendError(f"the {name} backend cannot {doing}: its provider manages its models")
    return inner


async def _models(args: argparse.Namespace, out: TextIO) -> int:
    from .model_management import ModelManager

    names = [args.backend] if args.backend else registry.names()
    for name in names:
        async with registry.create(name, **_parse_options(args.option)) as backend:
            inner = getattr(backend, "inner", backend)
            if isinstance(inner, ModelManager):
                for model in await inner.list_models():
                    size = f"{model.size / 1e9:6.1f} GB" if model.size is not None else ""
                    print(f"{name:<12} {model.name:<40} {size}".rstrip(), file=out)
            else:  # what the plugin knows of; its provider decides what it serves
                for model_id in backend.info.available_models:
                    print(f"{name:<12} {model_id}", file=out)
    return EXIT_OK


async def _pull(args: argparse.Namespace, out: TextIO) -> int:
    from ._pull_progress import show_pull

    async with registry.create(args.backend, **_parse_options(args.option)) as backend:
        manager = _manager(backend, args.backend, "pull models")
        last = await show_pull(manager.pull_model(args.model), out)
    if last is None or not last.done:
        raise BackendError(f"the pull of {args.model} ended before it succeeded")
    print(f"pulled {args.model}", file=out)
    return EXIT_OK


def _cmd_conformance(args: argparse.Namespace) -> int:
    """Run the conformance suite: only the traits, wherever it is invoked.

    In a child interpreter, so pytest imports (and rewrites the assertions of) the suite
    itself, rather than finding this package already imported.
    """
    if importlib.util.find_spec("pytest") is None:
        raise BackendError("the conformance suite runs under pytest: pip install pytest")
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    with tempfile.TemporaryDirectory(prefix="tachikoma-conformance-") as empty:
        argv = [f"--plugin={args.plugin}", "--rootdir", empty, "-p", "no:cacheprovider", empty]
        if args.live:
            argv.append("--live")
        return subprocess.call([sys.executable, "-m", "pytest", *argv, *extra])


def _cmd_new_plugin(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Generate a plugin distribution; the work is the scaffold module's."""
    from pathlib import Path

    from .scaffold import ScaffoldError, new_plugin, next_steps

    try:
        target = new_plugin(args.name, style=args.style, directory=Path(args.directory))
    except ScaffoldError as error:
        print(f"tachikoma: error: {error}", file=err)
        return EXIT_FAILURE if error.field == "directory" else EXIT_USAGE
    print(next_steps(args.name, target), file=out)
    return EXIT_OK


def _option_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE",
        help="backend setting (repeatable), e.g. -o base_url=http://127.0.0.1:8080",
    )  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tachikoma", description="Tachikoma Backends: one interface to LLM providers."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    backends = commands.add_parser("backends", help="list installed backend plugins")
    backends.add_argument(
        "--no-load", action="store_true", help="read metadata only: no plugin is imported"
    )

    complete = commands.add_parser("complete", help="stream a completion to the terminal")
    complete.add_argument("prompt", help="the user message ('-' reads standard input)")
    complete.add_argument("-b", "--backend", required=True, help="plugin name, e.g. mock")
    complete.add_argument("-m", "--model", help="model id (default: the backend's)")
    complete.add_argument("--system", help="system prompt")
    complete.add_argument("--max-tokens", type=int, help="maximum output tokens")
    complete.add_argument("--temperature", type=float, help="sampling temperature (0-2)")
    _option_argument(complete)
    complete.add_argument("--no-stream", action="store_true", help="wait for the whole reply")
    complete.add_argument(
        "-v", "--verbose", action="store_true", help="print model, finish reason and usage"
    )

    health = commands.add_parser("health", help="check that backends answer")
    health.add_argument("-b", "--backend", help="plugin name (default: every plugin)")

    models = commands.add_parser("models", help="list the models a backend has")
    models.add_argument("backend", nargs="?", help="plugin name (default: every plugin)")
    _option_argument(models)

    pull = commands.add_parser("pull", help="fetch a model, showing progress (Ollama)")
    pull.add_argument("model", help="the model to pull, e.g. llama3.2")
    pull.add_argument("-b", "--backend", default="ollama", help="plugin name (default: ollama)")
    _option_argument(pull)

    conformance = commands.add_parser(
        "conformance", help="run the conformance suite (needs pytest)"
    )
    conformance.add_argument(
        "--plugin", default="all", help="comma-separated plugin names, or 'all' (default)"
    )
    conformance.add_argument("--live", action="store_true", help="against the real services")
    conformance.add_argument(
        "pytest_args", nargs=argparse.REMAINDER, help="further pytest arguments (after --)"
    )

    from .scaffold import DEFAULT_STYLE, STYLES

    new = commands.add_parser("new-plugin", help="generate a provider plugin distribution")
    new.add_argument("name", help="the plugin's name, e.g. acme (lowercase, digits, - and _)")
    new.add_argument(
        "--style", choices=list(STYLES), default=DEFAULT_STYLE,
        help=f"the shape of the provider's API (default: {DEFAULT_STYLE})",
    )  # fmt: skip
    new.add_argument(
        "--directory", default=".", help="where to create tachikoma-backend-NAME (default: .)"
    )
    return parser


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the CLI; returns the exit status (the console script exits with it)."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    try:
        if args.command == "backends":
            return _cmd_backends(args, out)
        if args.command == "conformance":
            return _cmd_conformance(args)
        if args.command == "new-plugin":
            return _cmd_new_plugin(args, out, err)
        import anyio  # not at the top: `backends --no-load` and `conformance` need none of it

        if args.command == "complete":
            return anyio.run(_complete, args, out, err)
        if args.command == "models":
            return anyio.run(_models, args, out)
        if args.command == "pull":
            return anyio.run(_pull, args, out)
        return anyio.run(_health, args, out)
    except BackendError as error:
        one_line = str(error).replace("\r", " ").replace("\n", " ")  # a provider's may span lines
        print(f"tachikoma: error: {one_line}", file=err)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("tachikoma: interrupted", file=err)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
