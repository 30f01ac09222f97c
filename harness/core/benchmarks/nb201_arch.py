"""NAS-Bench-201's architecture encoding: the 5 ops, the 6 edges of its cell, the official architecture
strings (``|op~source|+|...|``) and the base-5 enumeration of all 15,625 cells.

The benchmark's format, shared by the benchmark table (``harness.core.benchmarks.nb201``) and the search space
(``spaces.nb201``), which both import it; it imports nothing of either, so the two depend one way
(the space on the benchmark), never in a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from harness.core.errors import GenotypeError

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (node, source)
NUM_NODES = 4
NUM_ARCHS = len(NB201_OPS) ** len(EDGES)  # 15,625

Genotype = tuple[str, ...]  # the 6 op names in edge order

_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
_ENTRY = re.compile(r"([a-z0-9_]+)~([0-9]+)")  # used with fullmatch: no trailing newline, ASCII digits only


# --- genotypes and their strings --------------------------------------------------------------------------

def _bad(problem: str) -> GenotypeError:
    return GenotypeError(f"invalid NAS-Bench-201 architecture string: {problem}; expected the official form, "
                         f"e.g. {_EXAMPLE}")


def parse_arch(text: str) -> Genotype:
    """The 6 ops of an official architecture string (strict: nodes in order, sources 0..i-1 in order)."""
    if not isinstance(text, str):
        raise _bad(f"expected a string, got {type(text).__name__}")
    nodes = text.strip().split("+")
    if len(nodes) != NUM_NODES - 1:
        raise _bad(f"found {len(nodes)} node groups separated by '+', need {NUM_NODES - 1}")
    ops: list[str] = []
    for node, group in enumerate(nodes, start=1):
        if not (group.startswith("|") and group.endswith("|") and len(group) > 1):
            raise _bad(f"node {node} group {group[:40]!r} must start and end with '|'")
        entries = group[1:-1].split("|")
        if len(entries) != node:
            raise _bad(f"node {node} must have {node} inputs, found {len(entries)}")
        for source, entry in enumerate(entries):
            match = _ENTRY.fullmatch(entry)
            if not match:
                raise _bad(f"node {node} input {entry[:40]!r} is not op~source")
            op, found = match.group(1), int(match.group(2))
            if found != source:
                raise _bad(f"node {node}'s inputs must come from sources 0..{node - 1} in order; "
                           f"input {source + 1} reads source {found}")
            if op not in NB201_OPS:
                raise _bad(f"unknown op {op!r} (valid: {', '.join(NB201_OPS)})")
            ops.append(op)
    return tuple(ops)


def check_genotype(genotype: Any) -> Genotype:
    if not (isinstance(genotype, (tuple, list)) and len(genotype) == len(EDGES)
            and all(isinstance(op, str) and op in NB201_OPS for op in genotype)):
        shown = " ".join(repr(genotype).split())[:200]  # one line, whatever the object prints as
        raise _bad(f"a genotype is a tuple of {len(EDGES)} op names from {', '.join(NB201_OPS)}, got {shown}")
    return tuple(genotype)


def format_arch(genotype: Genotype) -> str:
    """The official string of a genotype."""
    ops = check_genotype(genotype)
    groups, e = [], 0
    for node in range(1, NUM_NODES):
        groups.append("|" + "|".join(f"{ops[e + source]}~{source}" for source in range(node)) + "|")
        e += node
    return "+".join(groups)


def arch_codes(genotype: Genotype) -> np.ndarray:
    """Op indices (into ``NB201_OPS``) of the 6 edges."""
    return np.array([NB201_OPS.index(op) for op in check_genotype(genotype)], dtype=np.uint8)


def codes_key(codes: np.ndarray) -> np.ndarray:
    """Base-5 number of op-index rows (edge 0 least significant): 0..15,624, our enumeration order."""
    codes = np.asarray(codes, dtype=np.int64)
    return (codes * (len(NB201_OPS) ** np.arange(len(EDGES)))).sum(axis=-1)


def genotype_of_key(key: int) -> Genotype:
    ops = []
    for _ in EDGES:
        key, code = divmod(int(key), len(NB201_OPS))
        ops.append(NB201_OPS[code])
    return tuple(ops)


def enumerate_space() -> Iterator[Genotype]:
    """All 15,625 genotypes in base-5 order (not the benchmark's index order: the table maps between them)."""
    for key in range(NUM_ARCHS):
        yield genotype_of_key(key)
