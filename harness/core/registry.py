"""Name → class registries for methods and spaces, and the method × space compatibility rule: computed from
the capabilities a space offers and a method needs, less the method's explicit exclusions (``compatible``).

A leaf at import time: it imports nothing of ``methods/`` or ``spaces/`` (their modules import
``register_method``/``register_space`` from here and register themselves when their packages are imported).
Every lookup and listing (``get_space``, ``get_method``, ``compatible``, ``check_pair``, ``valid_pairs``,
``all_spaces``, ``all_methods``) imports both packages on its first call, so a name is known wherever one is
looked up, whatever the process imported before. ``SPACES`` and ``METHODS`` are the storage; read them through
those functions.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from harness.core.errors import UserError, unknown_name

# The registries hold ``spaces.base.SearchSpace`` and ``methods.base.SearchMethod`` subclasses; the kernel does not
# import those layers, not even for types (tests/test_architecture.py), so they are typed by their role here.
SearchSpace = Any
SearchMethod = Any

SPACES: dict[str, type[SearchSpace]] = {}
METHODS: dict[str, type[SearchMethod]] = {}

T = TypeVar("T")
_PLUGIN_PACKAGES = ("spaces", "methods")
_loaded = False


def register_space(cls: T) -> T:
    SPACES[cls.name] = cls  # type: ignore[attr-defined]
    return cls


def register_method(cls: T) -> T:
    METHODS[cls.name] = cls  # type: ignore[attr-defined]
    return cls


def _load() -> None:
    """Import the space and method packages once, which registers every space and method."""
    global _loaded
    if not _loaded:
        for package in _PLUGIN_PACKAGES:
            importlib.import_module(package)
        _loaded = True


def all_spaces() -> dict[str, type[SearchSpace]]:
    """Every registered space by name (in registration order)."""
    _load()
    return SPACES


def all_methods() -> dict[str, type[SearchMethod]]:
    """Every registered method by name (in registration order)."""
    _load()
    return METHODS


def get_space(name: str) -> type[SearchSpace]:
    _load()
    if name not in SPACES:
        raise UserError(unknown_name("space", name, sorted(SPACES)))
    return SPACES[name]


def get_method(name: str) -> type[SearchMethod]:
    _load()
    if name not in METHODS:
        raise UserError(unknown_name("method", name, sorted(METHODS)))
    return METHODS[name]


def compatible(method: str, space: str) -> tuple[bool, str]:
    """Whether ``method`` runs on ``space``, and if not, why (one line; empty when it runs).

    The pair runs when the space offers every capability the method needs (``SearchSpace.features`` ⊇
    ``SearchMethod.needs``; the names are ``spaces.base.FEATURES``) and the method does not exclude the space
    (``SearchMethod.excludes``, a space that offers its needs but that it deliberately does not run on). A
    missing capability is named first: it is the reason an exclusion could not lift."""
    method_cls, space_cls = get_method(method), get_space(space)
    missing = sorted(method_cls.needs - space_cls.features)
    if missing:
        return False, f"the space lacks {', '.join(missing)}"
    if space in method_cls.excludes:
        return False, f"the method excludes it: {method_cls.excludes[space]}"
    return True, ""


def spaces_of(method: str) -> list[str]:
    """The spaces ``method`` runs on (``compatible``), in registration order."""
    return [space for space in all_spaces() if compatible(method, space)[0]]


def valid_pairs() -> list[tuple[str, str]]:
    """Every (method, space) pair that runs (``compatible``): methods, then spaces, in registration order."""
    return [(method, space) for method in all_methods() for space in spaces_of(method)]


def check_pair(method: str, space: str) -> None:
    """Refuse, with one line naming the reason, a method/space pair that does not run (``compatible``)."""
    ok, reason = compatible(method, space)
    if not ok:
        raise UserError(f"method '{method}' does not run on space '{space}': {reason} (it runs on: "
                        f"{', '.join(spaces_of(method)) or 'no space'}; python -m harness list shows why)")
