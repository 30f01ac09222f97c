"""Signals: SIGTERM ends a command the way Ctrl-C does."""

from __future__ import annotations

import signal
import threading
from typing import Any


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
