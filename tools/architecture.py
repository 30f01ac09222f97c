"""The project's layers and its import graph, read from the source with ``ast`` (nothing is imported).

Layers, lowest first: ``harness.core`` (the kernel: configuration, data, training loops, registry, storage,
records, metrics, correlations, benchmark tables) → ``spaces`` → ``methods`` → the driver (every other module of
``harness``: the command line, the launch pipeline, trials, leaderboards, reports, plots). A module may import
from its own layer and the layers below it; imports inside ``if TYPE_CHECKING:`` count too, since a circle of
type-only imports is still a circle of knowledge. ``harness/__init__.py`` holds only the version and belongs to
the kernel. The registry finds the plug-in packages by name at run time (``harness.core.registry``), which is not
an import of this graph.

``tests/test_architecture.py`` holds the rules; ``python tools/architecture.py`` prints the picture and the
measures issue 28 asked for: the imports between layers, the circles, the largest modules, the most complex
functions (radon's cyclomatic complexity, when ``radon`` is installed: ``pip install radon``), the modules that ask
``is_remote`` and the imports of the plug-in packages.

Usage::

    python tools/architecture.py                 # this checkout
    python tools/architecture.py --root DIR      # another checkout, e.g. a `git worktree` of an older commit
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("harness", "methods", "spaces")
LAYERS = ("core", "spaces", "methods", "driver")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. "methods.darts"
    target: str  # the imported first-party module, e.g. "harness.core.train"
    line: int


def modules(root: Path) -> dict[str, Path]:
    """Every first-party module under ``root`` by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def layer(module: str) -> str:
    """The layer of a dotted module name."""
    if module in ("harness", "harness.core") or module.startswith("harness.core."):
        return "core"
    if module.split(".")[0] in ("spaces", "methods"):
        return module.split(".")[0]
    return "driver"


def _imported_names(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: from the module's package, one level up per extra dot
            base = module.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        yield name
        yield from (f"{name}.{alias.name}" for alias in node.names)


def imports(root: Path) -> list[Import]:
    """Every first-party import (each module imported once per source module, at its first line)."""
    known = modules(root)
    found: dict[tuple[str, str], int] = {}
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _imported_names(node, module, path.name == "__init__.py"):
                while name and name not in known:  # "harness.core.data.Batches" → "harness.core.data"
                    name = name.rpartition(".")[0]
                if name and name != module:
                    key = (module, name)
                    found[key] = min(found.get(key, node.lineno), node.lineno)
    return [Import(s, t, line) for (s, t), line in sorted(found.items())]


def upward(found: list[Import]) -> list[Import]:
    """The imports that run up the layers."""
    return [i for i in found if LAYERS.index(layer(i.target)) > LAYERS.index(layer(i.source))]


def circles(found: list[Import]) -> list[list[str]]:
    """The import circles: every strongly connected set of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for i in found:
        graph.setdefault(i.source, set()).add(i.target)
        graph.setdefault(i.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                result.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(result)


def plugin_imports(found: list[Import]) -> list[Import]:
    """Imports of the plug-in packages themselves (``import methods``, ``import spaces``), which only fill the
    registry: the registry loads them on first use instead."""
    return [i for i in found if i.target in ("methods", "spaces") and not i.source.startswith(i.target)]


KIND_QUESTION = re.compile(r"\bis_remote\(|\bisinstance\([^\n)]*\bRemote\b")
STORAGE_MODULES = ("harness/storage.py", "harness/core/storage.py", "harness/core/places.py")


def kind_questions(root: Path) -> dict[str, int]:
    """Per module outside the storage modules (``STORAGE_MODULES``), how often it asks whether a location is local or
    on an object store (``is_remote(...)``, ``isinstance(..., Remote)``): the places' job (``harness.core.places``)."""
    counts = {}
    for path in modules(root).values():
        rel = str(path.relative_to(root))
        n = len(KIND_QUESTION.findall(path.read_text(encoding="utf-8")))
        if n and rel not in STORAGE_MODULES:
            counts[rel] = n
    return counts


def layer_edges(found: list[Import]) -> dict[tuple[str, str], int]:
    """How many module imports run from each layer to each layer."""
    counts: dict[tuple[str, str], int] = {}
    for i in found:
        key = (layer(i.source), layer(i.target))
        counts[key] = counts.get(key, 0) + 1
    return counts


def complexity(root: Path, count: int) -> list[tuple[int, str, str]] | None:
    """The ``count`` most complex functions of the packages, not the tools (radon's cyclomatic complexity, file,
    name); None without radon."""
    try:
        from radon.complexity import cc_visit
    except ImportError:
        return None
    rows = []
    for path in [p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))]:
        for block in cc_visit(path.read_text(encoding="utf-8")):
            if type(block).__name__ == "Function":
                name = f"{block.classname}.{block.name}" if block.classname else block.name
                rows.append((block.complexity, str(path.relative_to(root)), name))
    return sorted(rows, key=lambda r: (-r[0], r[1], r[2]))[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--top", type=int, default=15, help="how many modules and functions to list")
    args = parser.parse_args()
    root = args.root.resolve()
    found, known = imports(root), modules(root)
    print(f"imports between layers ({root}):")
    for (src, dst), n in sorted(layer_edges(found).items(), key=lambda kv: (LAYERS.index(kv[0][0]),
                                                                            LAYERS.index(kv[0][1]))):
        mark = "  UPWARD" if LAYERS.index(dst) > LAYERS.index(src) else ""
        print(f"  {src:>7} -> {dst:<7} {n:4d}{mark}")
    for i in upward(found):
        print(f"  upward: {i.source} -> {i.target} (line {i.line})")
    print("circles:", "; ".join(" <-> ".join(c) for c in circles(found)) or "none")
    plugin = plugin_imports(found)
    print("imports of the plug-in packages outside the registry:",
          ", ".join(f"{i.source} -> {i.target}" for i in plugin) or "none")
    kind = kind_questions(root)
    print("places asking which kind a location is (is_remote(...) or isinstance(..., Remote)) outside the "
          "storage modules:", sum(kind.values()), "(" + ", ".join(f"{k} {v}" for k, v in sorted(kind.items())) + ")")
    sizes = sorted(((len(p.read_text(encoding="utf-8").splitlines()), str(p.relative_to(root)))
                    for p in known.values()), reverse=True)
    print("largest modules (lines): " + ", ".join(f"{f} {n}" for n, f in sizes[:args.top]))
    rows = complexity(root, args.top)
    if rows is None:
        print("complexity: install radon (pip install radon) to list the most complex functions")
    else:
        print(f"{args.top} most complex functions (radon cyclomatic complexity):")
        for cc, path, name in rows:
            print(f"  {cc:3d}  {path}:{name}")


if __name__ == "__main__":
    main()
