"""Signals: SIGTERM ends a command the way Ctrl-C does, from the driver's first line to its last.

``python -m harness`` installs the handler before it imports anything else (``harness/__main__.py``), ``main``
again before it parses its arguments, and ``sigterm_deferred`` keeps it through ``ray.init``, which would
otherwise install Ray's own (``sys.exit`` wherever the driver is: exit status 15, or Ray's native crash dump).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

INTERRUPTED = 130  # the exit status of an interrupted command (128 + SIGINT, as a shell reports Ctrl-C)


def _sigterm_like_ctrl_c(signum: int, frame: Any) -> None:
    """SIGTERM (``kill``, a job scheduler's stop) ends the run like Ctrl-C: whatever SIGINT does now (Ray
    Tune's graceful stop while trials run, else ``KeyboardInterrupt``) — not Ray's ``sys.exit`` from
    inside the driver's event loop, which ends in a native crash dump and no resume hint."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def handle_sigterm() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm_like_ctrl_c)


def interrupted() -> int:
    """The end of a command interrupted before there was anything to resume: one line, ``INTERRUPTED``."""
    print("harness: interrupted", file=sys.stderr)
    return INTERRUPTED


@contextmanager
def sigterm_deferred() -> Iterator[None]:
    """Around ``ray.init`` (about 2 s): a SIGTERM is held back until Ray has started, and Ray's own SIGTERM handler is
    never installed (it calls ``sys.exit`` inside Ray's start-up). On the way out the harness's handler is in place;
    a SIGTERM that came meanwhile then ends the command like Ctrl-C (``KeyboardInterrupt``), where the caller can
    say how to resume."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread has signal handlers
        yield
        return
    import ray._private.utils as ray_utils  # ray.init calls ray._private.utils.set_sigterm_handler

    received: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    ray_sets = getattr(ray_utils, "set_sigterm_handler", None)
    if ray_sets is not None:
        ray_utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        if ray_sets is not None:
            ray_utils.set_sigterm_handler = ray_sets
        handle_sigterm()
    if received:
        raise KeyboardInterrupt
