"""User-facing errors: the CLI turns these into one line on stderr and exit status 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for (bad name, bad value, missing file).

    The message must be one line that says what is wrong, what is valid and what to do.
    """


class GenotypeError(UserError):
    """A malformed or invalid genotype string."""


def one_line(err: BaseException, limit: int | None = None) -> str:
    """``err``'s message on one line (its whitespace runs as single spaces), cut at ``limit`` characters if given:
    how a message from elsewhere (the OS, pyarrow, Ray) goes into one of ours."""
    return " ".join(str(err).split())[:limit]


def os_error_line(action: str, path: object, err: OSError) -> str:
    """One line for a failed file operation: what, where and the system's reason."""
    return f"cannot {action} {path}: {err.strerror or one_line(err)}"
