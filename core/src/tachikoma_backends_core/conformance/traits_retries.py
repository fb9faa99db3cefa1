"""Retry discipline traits, introduced by Backend contract 2 (collected under ``--plugin``).

Collected with the other trait modules; every trait here carries ``tachikoma_since(2)``,
so plugins declaring contract 1 skip them. A plugin must leave retrying to the core's
single loop: with retries disabled one call is one attempt (no hidden retries), the
core's loop recovers from what the plugin marks retryable (honouring ``retry_after``),
and the plugin's ``max_retries`` sizes that one loop rather than a second one of its own.
"""

from __future__ import annotations

import contextlib

import pytest

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.clock import FakeClock
from tachikoma_backends_core.errors import BackendError, RateLimitError
from tachikoma_backends_core.hooks import Hooks
from tachikoma_backends_core.managed import ManagedBackend
from tachikoma_backends_core.retry import RetryPolicy

from .harness import ConformanceHarness, ErrorKind, ScriptedFailure, ScriptedReply
from .traits import area, ask, assert_no_hidden_retry, since, skip_unless_it_streams

pytestmark = pytest.mark.anyio

RETRYABLE_KINDS = [ErrorKind.RATE_LIMIT, ErrorKind.OVERLOADED, ErrorKind.SERVER_ERROR]


@since(2)
@area("retries")
@pytest.mark.parametrize("kind", RETRYABLE_KINDS, ids=[k.value for k in RETRYABLE_KINDS])
@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_no_hidden_retries(
    tachikoma_harness: ConformanceHarness,
    tachikoma_backend: Backend,
    kind: ErrorKind,
    streamed: bool,
) -> None:
    """With retries disabled, one call is one HTTP attempt: retrying is the core's job."""
    skip_unless_it_streams(tachikoma_backend, "stream" if streamed else "complete")
    tachikoma_harness.script_failure(ScriptedFailure(kind, retry_after=1.0))
    tachikoma_harness.script_reply(ScriptedReply(text="only for a hidden retry"))
    before = tachikoma_harness.attempts()
    outcome: BaseException | None = None
    async with tachikoma_backend as backend:
        call = backend.complete_stream if streamed else backend.complete
        try:
            await call(ask())
        except BackendError as error:
            outcome = error
    # Attempts first: a hidden retry that succeeds would otherwise look like a wrong answer.
    assert_no_hidden_retry(tachikoma_harness, before)
    assert tachikoma_harness.attempts() - before == 1, "the call must reach the provider once"
    assert outcome is not None, f"the scripted {kind.value} failure must reach the caller"


@since(2)
@area("retries")
async def test_core_retry_loop_recovers(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    """The core's loop retries what the plugin marks retryable, honouring retry_after."""
    clock = FakeClock(auto_advance=True)
    tachikoma_harness.script_failure(ScriptedFailure(ErrorKind.RATE_LIMIT, retry_after=3.0))
    tachikoma_harness.script_reply(ScriptedReply(text="recovered"))
    before = tachikoma_harness.attempts()
    assert isinstance(tachikoma_backend, ManagedBackend), "the suite always manages it"
    managed = tachikoma_backend.with_options(retry_policy=RetryPolicy(max_attempts=2, clock=clock))
    async with managed as backend:
        response = await backend.complete(ask())
    assert response.content == "recovered", "the core's retry must get the scripted answer"
    assert tachikoma_harness.attempts() - before == 2, "one failed attempt, one retry"
    # No wait by the core, yet two attempts: the plugin retried underneath it.
    assert clock.slept, (
        "the core's retry loop never saw the rate limit, yet the provider got 2 attempts: "
        "the plugin retries on its own underneath the core's retry loop; leave retrying "
        "to the core"
    )
    assert clock.slept == [3.0], "the retry must wait the provider's retry_after"


@since(2)
@area("retries")
async def test_max_retries_sizes_the_only_retry_loop(tachikoma_harness: ConformanceHarness) -> None:
    """``max_retries=1`` means two attempts in all, not two per layer.

    A plugin that hands its ``max_retries`` to a retry loop of its own (an SDK's, say)
    passes with retries off but multiplies attempts once they are on.
    """
    created = tachikoma_harness.create_backend(max_retries=1)
    assert isinstance(created, ManagedBackend), (
        "create_backend must build through plugin.create, which puts the core's loop in front"
    )
    assert created.retry_policy.max_attempts == 2, "max_retries=1 must mean 2 attempts"
    clock = FakeClock(auto_advance=True)
    backend = created.with_options(
        retry_policy=RetryPolicy(max_attempts=2, clock=clock), hooks=Hooks()
    )
    for _ in range(2):
        tachikoma_harness.script_failure(ScriptedFailure(ErrorKind.RATE_LIMIT, retry_after=1.0))
    tachikoma_harness.script_reply(ScriptedReply(text="only for a third attempt"))
    before = tachikoma_harness.attempts()
    async with backend:
        with contextlib.suppress(RateLimitError):  # a clean plugin fails twice, then gives up
            await backend.complete(ask())
    made = tachikoma_harness.attempts() - before
    assert made == 2, (
        f"max_retries=1 made {made} attempts instead of 2: the plugin retries on its own "
        "as well as the core"
    )
