"""Search methods; importing this package registers every method."""

from methods import agnas, darts, eoinas, gdas, nos, proxyless, random_search  # noqa: F401
