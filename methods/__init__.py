"""Search methods; importing this package registers every method."""

from methods import darts, eoinas, gdas, nos, random_search  # noqa: F401
