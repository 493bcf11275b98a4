"""Every Apprise call is bounded: a receiver that accepts the connection and never answers (a tarpit on
loopback) costs at most the timeout (Apprise's ``rto``, set by the engine), and the page is reported failed."""

from __future__ import annotations

import time

from orchestrator.incidents import notify

from ..test_bounded import tarpit  # noqa: F401 - the tarpit fixture


def test_a_receiver_that_never_answers_is_given_up_on_within_the_bound(tarpit: int) -> None:  # noqa: F811
    started = time.monotonic()
    error = notify.send([f"json://127.0.0.1:{tarpit}/page"], "title", "body", timeout=1.0)
    elapsed = time.monotonic() - started
    assert error is not None and "did not take the page" in error
    # It waited for the answer that never came (a refused connection would fail at once), and no longer than the bound.
    assert 0.5 <= elapsed < 4.0, f"an Apprise call to a tarpit took {elapsed:.1f}s (bound 1 s)"
