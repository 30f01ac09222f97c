"""Search methods; importing this package registers every method."""

from methods import darts, gdas, nos, random_search  # noqa: F401
