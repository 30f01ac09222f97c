"""Search spaces; importing this package registers every space."""

from spaces import darts, hetero, nb201, proxyless  # noqa: F401
