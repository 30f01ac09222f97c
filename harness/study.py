"""Study files: a whole comparison — methods and named variants × spaces × datasets × seeds — in one command.

A study file is TOML::

    name = "nb201-vs-hetero"          # optional: the folder name (default: the file's stem)
    budget = "smoke"                  # smoke, small, cpu or paper (default: paper)
    seeds = 3                         # seeds 0..2, or a list: [0, 5, 7]
    datasets = ["digits"]
    spaces = ["nb201", "hetero"]
    methods = ["darts", "gdas", "nos", "nos-noags"]   # method names and variant names

    [variants]                        # a variant: a method with --set overrides, under its own name
    nos-noags = {method = "nos", set = ["ags=false"]}

    [space_methods]                   # optional: which of them run on each space (default: all, each must fit)
    nb201 = ["darts", "gdas"]
    hetero = ["darts", "nos", "nos-noags"]

Every (dataset, space, method or variant) is a **cell**: one experiment folder
``cells/<name>-<space>-<dataset>-<hash>/`` of the study's folder (``Cell.folder``), with its own ``experiment.json``,
records and checkpoints, exactly as ``run`` makes them, locked by the study's driver as ``run`` locks an experiment;
every (cell, seed) is one trial of a single Ray Tune experiment. Everything is checked before anything is
written — the file's size, nesting, keys and types, every pair, every ``--set`` key of every variant, every dataset,
the resources — and the first problem is one line (exit status 2).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.config import BUDGETS, MAX_CELLS, MAX_NAME, MAX_SEED, MAX_SEEDS, MAX_TRIALS, NAME_PATTERN, check_count
from harness.core.errors import UserError, closest, unknown_name
from harness.core.records import read_limited
from harness.core.registry import all_methods, all_spaces, check_pair, compatible, spaces_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

STUDY_FILE = "study.toml"  # the study file as it was given, kept in the study's folder
STUDY_SPEC = "study.json"  # the resolved study: every cell's spec
CELLS_DIR = "cells"
KEYS = {"name", "budget", "seeds", "datasets", "spaces", "methods", "variants", "space_methods"}
VARIANT_KEYS = {"method", "set"}
MAX_STUDY_BYTES = 2**20  # a study file is a page of TOML; more is a mistake (and tomllib reads it all at once)
FOLDER_TEXT = 60  # the readable part of a cell's folder name, in characters


@dataclass
class Cell:
    """One (dataset, space, method or variant) of a study."""

    name: str  # the method's or the variant's name
    method: str
    space: str
    dataset: str
    overrides: list[str] = field(default_factory=list)

    @property
    def folder(self) -> str:
        """The cell's folder name: ``<name>-<space>-<dataset>`` made a plain folder name (a ``kind:path`` dataset by
        its last path component, other characters than letters, digits and ``._+=-`` as ``_``, at most
        ``FOLDER_TEXT`` characters) and a hash of the three. The readable part alone is not injective
        (``folder:/x/a/b`` and ``folder:/x/a_b``, two folders of one name under different paths) nor bounded (a long
        path); with the hash, distinct cells get distinct folders of at most ``FOLDER_TEXT`` + 11 characters."""
        dataset = self.dataset
        if ":" in dataset:
            kind, path = dataset.split(":", 1)
            dataset = f"{kind}-{path.replace(chr(92), '/').rstrip('/').rsplit('/', 1)[-1]}"
        text = re.sub(r"[^A-Za-z0-9._+=-]+", "_", f"{self.name}-{self.space}-{dataset}")[:FOLDER_TEXT].rstrip("_.-")
        digest = hashlib.sha256(json.dumps([self.name, self.space, self.dataset]).encode()).hexdigest()[:10]
        return f"{text}-{digest}"


@dataclass
class Study:
    name: str
    budget: str
    seeds: list[int]
    cells: list[Cell]
    text: str  # the study file (TOML), kept with the results


def _refuse(where: str, problem: str) -> UserError:
    return UserError(f"{where}: {problem}")


def _strings(where: str, key: str, value: Any, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _refuse(where, f"'{key}' must be a list of names, e.g. {key} = [\"a\", \"b\"], got {value!r}"[:300])
    if not value and not allow_empty:
        raise _refuse(where, f"'{key}' is empty")
    seen = set()
    for v in value:
        if v in seen:
            raise _refuse(where, f"'{key}' lists '{v}' twice")
        seen.add(v)
    return list(value)


def _seeds(where: str, value: Any) -> list[int]:
    """The study's seeds: a number of seeds or a list, at most ``MAX_SEEDS`` of them (as ``run``'s)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise _refuse(where, f"seeds = {value}: give a number of seeds in 1..{MAX_SEEDS:,} or a list of seeds")
        check_count(f"{where}: seeds", value, MAX_SEEDS, "split the seeds over several studies")
        return list(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        check_count(f"{where}: seeds", len(value), MAX_SEEDS, "split the seeds over several studies")
        if len(set(value)) != len(value):
            raise _refuse(where, f"'seeds' repeats a seed: {value}")
        if not all(0 <= s <= MAX_SEED for s in value):
            raise _refuse(where, f"'seeds' must be integers in 0..{MAX_SEED}, got {value}")
        return list(value)
    raise _refuse(where, f"'seeds' must be a number of seeds or a non-empty list of integers, got {value!r}"[:300])


def _too_large(where: str) -> UserError:
    return _refuse(where, f"larger than {MAX_STUDY_BYTES / 2**20:g} MiB; a study file is a short TOML file")


def _text(where: str, what: str, value: Any) -> str:
    """``value`` where the file must give one string (a list or table there is one line, not a TypeError)."""
    if not isinstance(value, str):
        raise _refuse(where, f"{what} must be a string, got {value!r}"[:300])
    return value


def parse_study(text: str, where: str, default_name: str) -> Study:
    """The study of TOML ``text`` (``where`` names it in messages); every problem is one ``UserError`` line.
    Checks the file itself (its size, nesting and the type of every value) and every pair; the configuration keys
    and datasets are checked when the cells' specs are built (``harness.experiment``)."""
    doc = _toml(text, where)
    unknown = sorted(set(doc) - KEYS)
    if unknown:
        raise _refuse(where, unknown_name("key", unknown[0], sorted(KEYS), see=f"a study file has: "
                                                                               f"{', '.join(sorted(KEYS))}"))
    for key in ("datasets", "spaces", "methods"):
        if key not in doc:
            raise _refuse(where, f"missing '{key}'")
    name = doc.get("name", default_name)
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME:
        raise _refuse(where, f"name {name!r} must be a plain folder name (letters, digits and . _ + = -)"[:300])
    budget = _text(where, "'budget'", doc.get("budget", "paper"))
    if budget not in BUDGETS:
        raise _refuse(where, unknown_name("budget", budget, BUDGETS))
    seeds = _seeds(where, doc.get("seeds", 1))
    datasets = _strings(where, "datasets", doc["datasets"])
    spaces = _spaces(where, doc["spaces"])
    defined = _variants(where, doc.get("variants", {}))
    methods = _methods(where, doc["methods"], defined)
    per_space = _space_methods(where, doc.get("space_methods", {}), spaces, methods)
    cells = [_cell(where, mname, defined, space, dataset)
             for dataset in datasets for space in spaces for mname in per_space.get(space, methods)]
    folders = [c.folder for c in cells]
    if len(set(folders)) != len(folders):  # a hash collision of two cells of one study: never seen, but refused
        raise _refuse(where, f"two cells would share the folder '{next(f for f in folders if folders.count(f) > 1)}'")
    check_count(f"{where}: cells", len(cells), MAX_CELLS, "split the comparison over several studies")
    check_count(f"{where}: trials (cells × seeds)", len(cells) * len(seeds), MAX_TRIALS,
                "split the comparison over several studies, or run fewer seeds")
    return Study(name=name, budget=budget, seeds=seeds, cells=cells, text=text)


def _toml(text: str, where: str) -> dict[str, Any]:
    """The TOML document of ``text``, refused in one line when too large, invalid or nested too deeply."""
    if len(text.encode("utf-8")) > MAX_STUDY_BYTES:
        raise _too_large(where)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _refuse(where, f"not valid TOML ({str(err).splitlines()[0]})") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise _refuse(where, "its arrays or tables are nested too deeply to be a study file") from None


def _spaces(where: str, value: Any) -> list[str]:
    """The study's spaces, each a registered space."""
    spaces, known = _strings(where, "spaces", value), all_spaces()
    for space in spaces:
        if space not in known:
            raise _refuse(where, unknown_name("space", space, sorted(known)))
    return spaces


def _variants(where: str, variants: Any) -> dict[str, tuple[str, list[str]]]:
    """The ``[variants]`` table: variant name → (method, overrides)."""
    if not isinstance(variants, dict):
        raise _refuse(where, "'variants' must be a table: [variants] name = {method = \"...\", set = [\"k=v\"]}")
    known = all_methods()
    defined: dict[str, tuple[str, list[str]]] = {}
    for vname, spec in variants.items():
        if vname in known:
            raise _refuse(where, f"variant '{vname}' has the name of a method; give it its own name")
        if not NAME_PATTERN.fullmatch(vname):
            raise _refuse(where, f"variant name {vname!r} must be a plain name (letters, digits and . _ + = -)")
        if not isinstance(spec, dict) or "method" not in spec:
            raise _refuse(where, f"variant '{vname}' must be {{method = \"...\", set = [\"key=value\", ...]}}")
        extra = sorted(set(spec) - VARIANT_KEYS)
        if extra:
            raise _refuse(where, f"variant '{vname}': " + unknown_name("key", extra[0], sorted(VARIANT_KEYS),
                                                                        see="a variant has: method, set"))
        if _text(where, f"variant '{vname}': 'method'", spec["method"]) not in known:
            raise _refuse(where, f"variant '{vname}': " + unknown_name("method", spec["method"], sorted(known)))
        overrides = _strings(f"{where}, variant '{vname}'", "set", spec.get("set", []), allow_empty=True)
        defined[vname] = (spec["method"], overrides)
    return defined


def _methods(where: str, value: Any, defined: dict[str, tuple[str, list[str]]]) -> list[str]:
    """The study's method rows, each a registered method or a variant of ``[variants]``."""
    methods, known = _strings(where, "methods", value), all_methods()
    for mname in methods:
        if mname not in known and mname not in defined:
            guess = closest(mname, [*known, *defined])
            raise _refuse(where, f"'{mname}' is neither a method ({', '.join(sorted(known))}) nor a variant of "
                                 "[variants]" + (f"; did you mean '{guess}'?" if guess else ""))
    return methods


def _space_methods(where: str, per_space: Any, spaces: list[str], methods: list[str]) -> dict[str, list[str]]:
    """The ``[space_methods]`` table: space → its method rows (a space not named runs every row)."""
    if not isinstance(per_space, dict):
        raise _refuse(where, "'space_methods' must be a table: [space_methods] space = [\"method\", ...]")
    chosen = {}
    for space, names in per_space.items():
        if space not in spaces:
            raise _refuse(where, f"space_methods names space '{space}', which is not in 'spaces'")
        chosen[space] = _strings(where, f"space_methods.{space}", names)
        for mname in chosen[space]:
            if mname not in methods:
                raise _refuse(where, f"space_methods.{space} lists '{mname}', which is not in 'methods'")
    return chosen


def _cell(where: str, mname: str, defined: dict[str, tuple[str, list[str]]], space: str, dataset: str) -> Cell:
    """The cell of method row ``mname`` on ``space`` and ``dataset``, refused when the method cannot run there."""
    method, overrides = defined.get(mname, (mname, []))
    try:
        check_pair(method, space)
    except UserError:
        raise _refuse(where, f"'{mname}' ({method}) does not run on space '{space}' "
                             f"({compatible(method, space)[1]}; it runs on "
                             f"{', '.join(spaces_of(method))}); list the methods of "
                             "each space under [space_methods]") from None
    return Cell(mname, method, space, dataset, overrides)


def load_study(path: Path) -> Study:
    """The study of the file at ``path`` (one line if it cannot be read or is not a valid study)."""
    try:  # a regular file, never read past the limit (a FIFO or /dev/zero is one line, not a hang)
        text = read_limited(path, MAX_STUDY_BYTES, "study file").decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"study file '{path}' does not exist") from None
    except UnicodeDecodeError as err:
        raise UserError(f"cannot read study file '{path}' ({err.__class__.__name__})") from None
    return parse_study(text, str(path), path.stem)


def one_space_study(methods: list[str], space: str, dataset: str, budget: str, seeds: list[int],
                    overrides: list[str], name: str) -> Study:
    """The study of ``run --method a,b,c``: those methods on one space and dataset, the same ``--set`` for
    every one (each must have the keys)."""
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "]"

    lines = [f'name = "{name}"', f'budget = "{budget}"', f"seeds = [{', '.join(map(str, seeds))}]",
             f"datasets = {toml_list([dataset])}", f"spaces = {toml_list([space])}"]
    if overrides:  # every method becomes a variant carrying the overrides, under the method's name + "-set"
        lines.append(f"methods = {toml_list([f'{m}-set' for m in methods])}")
        lines.append("[variants]")
        lines += [f'{m}-set = {{method = "{m}", set = {toml_list(overrides)}}}' for m in methods]
    else:
        lines.append(f"methods = {toml_list(methods)}")
    return parse_study("\n".join(lines) + "\n", "--method", name)
