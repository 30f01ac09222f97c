"""Search spaces; importing this package registers every space."""

from spaces import darts, nb201  # noqa: F401
