"""Name → class registries for methods and spaces, and the method × space compatibility rule.

A leaf: it imports nothing of ``methods/`` or ``spaces/``. Their modules register themselves when their
packages are imported; the entry points do that (``harness.trial``, which every trial and the driver
import, and the CLI's ``list``), so a name is known wherever one is looked up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from harness.errors import UserError

if TYPE_CHECKING:
    from methods.base import SearchMethod
    from spaces.base import SearchSpace

SPACES: dict[str, type[SearchSpace]] = {}
METHODS: dict[str, type[SearchMethod]] = {}

T = TypeVar("T")


def register_space(cls: T) -> T:
    SPACES[cls.name] = cls  # type: ignore[attr-defined]
    return cls


def register_method(cls: T) -> T:
    METHODS[cls.name] = cls  # type: ignore[attr-defined]
    return cls


def get_space(name: str) -> type[SearchSpace]:
    if name not in SPACES:
        raise UserError(f"unknown space '{name}'; valid spaces: {', '.join(sorted(SPACES))}")
    return SPACES[name]


def get_method(name: str) -> type[SearchMethod]:
    if name not in METHODS:
        raise UserError(f"unknown method '{name}'; valid methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def check_pair(method: str, space: str) -> None:
    """Refuse a method/space pair the method does not support, listing the valid ones."""
    method_cls, _ = get_method(method), get_space(space)
    if space not in method_cls.supported_spaces:
        pairs = ", ".join(f"{m}/{s}" for m, cls in sorted(METHODS.items()) for s in cls.supported_spaces)
        raise UserError(f"method '{method}' does not support space '{space}' "
                        f"(it supports: {', '.join(method_cls.supported_spaces)}); valid pairs: {pairs}")
