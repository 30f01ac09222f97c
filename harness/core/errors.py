"""User-facing errors: the CLI turns these into one line on stderr and exit status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name nearest to ``name`` (``difflib``'s ratio ≥ 0.6, ignoring case), or None: what a typo most
    likely meant."""
    by_lower = {v.lower(): v for v in valid}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def unknown_name(kind: str, name: str, valid: Iterable[str], where: str = "", see: str | None = None) -> str:
    """The one line for a name that is none of ``valid`` (a method, space, dataset, budget or configuration key):
    ``unknown <kind> '<name>'<where>; did you mean '<closest>'?`` when one is close, then ``see`` (where to find the
    valid names) or else the valid names themselves. The one place every name lookup words its refusal."""
    valid = list(valid)
    line = f"unknown {kind} '{name}'{where}"
    guess = closest(name, valid)
    hint = see if see is not None else f"valid {kind}s: {', '.join(valid)}"
    return f"{line}; did you mean '{guess}'? ({hint})" if guess else f"{line}; {hint}"
