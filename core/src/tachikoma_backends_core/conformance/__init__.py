"""The conformance suite: one set of trait tests every provider plugin must pass.

Run it with ``pytest --plugin=all`` (or ``--plugin=claude,mock``); see
``docs/conformance.md``. Plugin authors implement `harness.ConformanceHarness`.
Kept import-free: pytest imports this package's ``plugin`` module at every start-up.
"""
