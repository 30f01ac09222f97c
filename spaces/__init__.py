"""Search spaces; importing this package registers every space."""

from spaces import darts  # noqa: F401
