"""User-facing errors: the CLI turns these into one line on stderr and exit status 2."""


class UserError(Exception):
    """A mistake in what the user asked for (bad name, bad value, missing file).

    The message must be one line that says what is wrong, what is valid and what to do.
    """


class GenotypeError(UserError):
    """A malformed or invalid genotype string."""
