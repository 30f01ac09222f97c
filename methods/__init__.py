"""Search methods; importing this package registers every method."""

from methods import adwpnas, agnas, blackbox, darts, eoinas, gdas, nos, proxyless, random_search  # noqa: F401
