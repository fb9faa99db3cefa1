"""pytest entry point (``pytest11: tachikoma``): adds ``--plugin``, ``--live``, ``--sockets``.

Inert unless ``--plugin`` is given: it then defines no fixture, collects nothing and
imports nothing beyond this module, so projects that merely have Tachikoma installed pay
nothing. With ``--plugin``, `_session.activate` registers the suite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

PLUGIN_OPTION = "tachikoma_plugins"
LIVE_OPTION = "tachikoma_live"
REPORT_OPTION = "tachikoma_report"
SOCKETS_OPTION = "tachikoma_sockets"
LIVE_ALLOW_SKIP_OPTION = "tachikoma_live_allow_skip"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tachikoma", "Tachikoma Backends conformance suite")
    group.addoption(
        "--plugin",
        dest=PLUGIN_OPTION,
        metavar="NAMES",
        default=None,
        help="run the conformance suite against these backend plugins "
        "(comma-separated names, or 'all')",
    )
    group.addoption(
        "--live",
        dest=LIVE_OPTION,
        action="store_true",
        default=False,
        help="run the conformance suite against the real services (credentials from the "
        "environment); without it, every provider is scripted offline",
    )
    group.addoption(
        "--live-allow-skip",
        dest=LIVE_ALLOW_SKIP_OPTION,
        action="store_true",
        default=False,
        help="with --live, let a run in which no live trait ran (no credentials, say) pass; "
        "without it, such a run fails, so a live CI job cannot go green having run nothing",
    )
    group.addoption(
        "--sockets",
        dest=SOCKETS_OPTION,
        action="store_true",
        default=False,
        help="also run the socket-mode traits (contract 3): the plugin's harness bytes served "
        "over real TCP on 127.0.0.1 with network faults; HTTP plugins (HttpxHarness) only, "
        "needs psutil",
    )
    group.addoption(
        "--conformance-report",
        dest=REPORT_OPTION,
        metavar="PATH",
        default=None,
        help="write the conformance results as JSON to PATH (schema: "
        "tachikoma_backends_core/conformance/report.schema.json)",
    )


def pytest_configure(config: pytest.Config) -> None:
    selection = config.getoption(PLUGIN_OPTION)
    if selection:
        from ._session import activate

        activate(
            config,
            selection,
            live=bool(config.getoption(LIVE_OPTION)),
            live_allow_skip=bool(config.getoption(LIVE_ALLOW_SKIP_OPTION)),
            report_path=config.getoption(REPORT_OPTION),
            sockets=bool(config.getoption(SOCKETS_OPTION)),
        )
    else:
        for option, flag in (
            (REPORT_OPTION, "--conformance-report"),
            (SOCKETS_OPTION, "--sockets"),
            (LIVE_ALLOW_SKIP_OPTION, "--live-allow-skip"),
        ):
            if config.getoption(option):
                import pytest

                raise pytest.UsageError(f"{flag} needs --plugin (names or 'all')")
