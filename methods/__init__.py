"""Search methods; importing this package registers every method."""

from methods import darts, random_search  # noqa: F401
