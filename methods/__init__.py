"""Search methods; importing this package registers every method."""

from methods import agnas, darts, eoinas, gdas, nos, random_search  # noqa: F401
