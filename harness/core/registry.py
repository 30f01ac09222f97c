"""Name → class registries for methods and spaces, and the method × space compatibility rule.

A leaf at import time: it imports nothing of ``methods/`` or ``spaces/`` (their modules import
``register_method``/``register_space`` from here and register themselves when their packages are imported).
Every lookup and listing (``get_space``, ``get_method``, ``check_pair``, ``all_spaces``, ``all_methods``)
imports both packages on its first call, so a name is known wherever one is looked up, whatever the process
imported before. ``SPACES`` and ``METHODS`` are the storage; read them through those functions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, TypeVar

from harness.core.errors import UserError

if TYPE_CHECKING:
    from methods.base import SearchMethod
    from spaces.base import SearchSpace

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
        raise UserError(f"unknown space '{name}'; valid spaces: {', '.join(sorted(SPACES))}")
    return SPACES[name]


def get_method(name: str) -> type[SearchMethod]:
    _load()
    if name not in METHODS:
        raise UserError(f"unknown method '{name}'; valid methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def check_pair(method: str, space: str) -> None:
    """Refuse a method/space pair the method does not support, listing the valid ones."""
    method_cls, _ = get_method(method), get_space(space)
    if space not in method_cls.supported_spaces:
        pairs = ", ".join(f"{m}/{s}" for m, cls in sorted(all_methods().items()) for s in cls.supported_spaces)
        raise UserError(f"method '{method}' does not support space '{space}' "
                        f"(it supports: {', '.join(method_cls.supported_spaces)}); valid pairs: {pairs}")
