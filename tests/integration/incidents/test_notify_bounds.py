"""Every Apprise call is bounded: a receiver that accepts the connection and never answers (a tarpit on
loopback) costs at most the timeout (Apprise's ``rto``, set by the engine), and the page is reported failed."""

from __future__ import annotations

import socket
import threading
import time

from orchestrator.incidents import notify


def test_a_receiver_that_never_answers_is_given_up_on_within_the_bound() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # read nothing, answer nothing
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        error = notify.send([f"json://127.0.0.1:{port}/page"], "title", "body", timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()
    assert held, "the tarpit was never reached"
    assert error is not None and "did not take the page" in error
    assert elapsed < 4.0, f"an Apprise call took {elapsed:.1f}s past its 1 s bound"
