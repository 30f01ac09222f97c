"""Small assertions shared by the test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations


def one_line(exc_info) -> str:
    """The message of a raised error, asserted to be one non-empty line."""
    msg = str(exc_info.value)
    assert msg and "\n" not in msg, repr(msg)
    return msg
