"""NAS-Bench-201 benchmark tables: a compact format, the bundled default table, and imports.

**Format.** One ``.npz`` file (NumPy, no pickles) with one row per architecture in the benchmark's index
order: ``codes`` (15,625 × 6 uint8, the op index of each edge, from which the official string is rebuilt
exactly), ``values`` (15,625 × k float64, NaN where a figure is not available), ``columns`` (the k column
names) and ``meta`` (JSON: format, provenance of the table and of each column). About 1 MB; loading it
takes milliseconds and is cached per process, so a trial pays nothing noticeable for a look-up.

**Columns.** Accuracies in percent, named ``<dataset>_<split>``, the benchmark's figures for 200 training
epochs (``hp='200'``) averaged over its training seeds (``is_random=False``): ``cifar10_valid_valid`` and
``cifar10_valid_test`` (the ``cifar10-valid`` setting: trained on 25k images), ``cifar10_test`` (trained on
all 50k), ``cifar100_valid`` / ``cifar100_test`` and ``imagenet16_120_valid`` / ``imagenet16_120_test``.
Costs: ``<dataset>_params_m`` (millions), ``<dataset>_flops_m`` (MFLOPs) and, from an official file only,
``<prefix>_train_seconds``: the seconds the benchmark spent training the network for its 200 epochs, mean over
seeds (``get_metrics(dataset, 'train')['all_time']``), which a black-box search charges as the simulated cost of
a look-up (``cost_column``). The bundled table has no training times: its look-ups cost one query each. Extra
columns a source may have (``cifar10_test_v10``, ``nwot_score``) keep their meaning in ``meta``.

**Sources.** ``python -m harness nb201 import PATH`` converts the official benchmark file (v1.0 or v1.1
``.pth``, read with the ``nas-bench-201`` package's own ``ArchResults``) or the merged CSV of
``../shared/data/nb201/`` (which is how the bundled default table was built). The official files are
unpickled whole, as the package itself does: the import needs memory for the unpickled file (for v1.1,
4.7 GB on disk, users report more than 24 GB), once; the table it writes is about 1 MB. NATS-Bench's
topology files are not supported.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import json
import os
import pickle
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__
from harness.core.benchmarks.base import Benchmark, sample_indices
from harness.core.benchmarks.nb201_arch import (
    EDGES,
    NB201_OPS,
    NUM_ARCHS,
    Genotype,
    arch_codes,
    codes_key,
    format_arch,
    genotype_of_key,
    parse_arch,
)
from harness.core.data import DataInfo
from harness.core.errors import UserError
from harness.core.records import atomic_write

FORMAT = "nas-harness/nb201-table/1"
DATA_DIR = Path(__file__).parent / "data"
DEFAULT_TABLE = DATA_DIR / "nb201_default.npz"

# The benchmark's datasets as named by the nas-bench-201 package, and our column prefixes.
OFFICIAL_DATASETS = {"cifar10-valid": "cifar10_valid", "cifar10": "cifar10", "cifar100": "cifar100",
                     "ImageNet16-120": "imagenet16_120"}
# The harness's dataset names (``--dataset``) that are benchmark datasets, and their column prefixes.
SEARCH_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet16_120"}
# Evaluation sets per dataset: (our split name, the package's set name).
OFFICIAL_SETS = {"cifar10-valid": (("valid", "x-valid"), ("test", "ori-test")),
                 "cifar10": (("test", "ori-test"),),
                 "cifar100": (("valid", "x-valid"), ("test", "x-test")),
                 "ImageNet16-120": (("valid", "x-valid"), ("test", "x-test"))}

COLUMN_HELP = {
    "cifar10_valid_valid": "cifar10-valid setting (trained on 25k CIFAR-10 images): validation accuracy %",
    "cifar10_valid_test": "cifar10-valid setting: CIFAR-10 test accuracy %",
    "cifar10_test": "CIFAR-10 (trained on all 50k): test accuracy %",
    "cifar100_valid": "CIFAR-100: validation accuracy %",
    "cifar100_test": "CIFAR-100: test accuracy %",
    "imagenet16_120_valid": "ImageNet16-120: validation accuracy %",
    "imagenet16_120_test": "ImageNet16-120: test accuracy %",
    "cifar10_test_v10": "CIFAR-10 test accuracy % from the v1.0 release",
    "nwot_score": "NAS-without-training zero-cost score",
}
# Every accuracy column holds the benchmark's figures for networks trained this many epochs (hp='200'; the v1.0
# columns of the merged CSV are the same setting), and its short name for tables (``NB201Table.figure_label``).
TRAINING_EPOCHS = 200
COLUMN_LABELS = {
    "cifar10_valid_valid": "CIFAR-10 validation (cifar10-valid: trained on 25k)",
    "cifar10_valid_test": "CIFAR-10 test (cifar10-valid: trained on 25k)",
    "cifar10_test": "CIFAR-10 test",
    "cifar100_valid": "CIFAR-100 validation",
    "cifar100_test": "CIFAR-100 test",
    "imagenet16_120_valid": "ImageNet16-120 validation",
    "imagenet16_120_test": "ImageNet16-120 test",
    "cifar10_test_v10": "CIFAR-10 test (v1.0 release)",
}
for _prefix in ("cifar10", "cifar100", "imagenet16_120"):
    COLUMN_HELP[f"{_prefix}_params_m"] = f"parameters of the {_prefix} network (millions)"
    COLUMN_HELP[f"{_prefix}_flops_m"] = f"FLOPs of the {_prefix} network (millions)"
for _prefix in OFFICIAL_DATASETS.values():
    COLUMN_HELP[f"{_prefix}_train_seconds"] = f"seconds the benchmark trained the {_prefix} network (200 epochs)"
ACCURACY_SUFFIXES = ("_valid", "_test", "_test_v10")

# The merged CSV of ../shared/data/nb201/ (see its README): its column → ours, and where each comes from.
CSV_COLUMNS = {
    "cifar10_test_nats": ("cifar10_test", "NATS-Bench topology API, hp=200, is_random=False"),
    "cifar100_test_nats": ("cifar100_test", "NATS-Bench topology API, hp=200, is_random=False"),
    "imagenet16_120_test_nats": ("imagenet16_120_test", "NATS-Bench topology API, hp=200, is_random=False"),
    "cifar10valid_valid_v10": ("cifar10_valid_valid", "NAS-Bench-201 v1.0"),
    "cifar10valid_test_v10": ("cifar10_valid_test", "NAS-Bench-201 v1.0"),
    "cifar10_test_v10": ("cifar10_test_v10", "NAS-Bench-201 v1.0"),
    "params_MB": ("cifar10_params_m", "NAS-Bench-201 v1.0"),
    "nwot_score": ("nwot_score", "NWOT paper's released table (missing for some architectures)"),
}


def metric_column(dataset: str, metric: str) -> str:
    """The column of ``nb201 best --dataset D --metric M`` (CIFAR-10's validation figure is the
    cifar10-valid setting's, as in the benchmark paper's tables)."""
    prefixes = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet16_120",
                "imagenet16_120": "imagenet16_120"}
    prefix = prefixes.get(dataset.lower())
    if prefix is None:
        raise UserError(f"unknown NAS-Bench-201 dataset '{dataset}'; valid: cifar10, cifar100, imagenet16-120")
    if metric not in ("test", "valid"):
        raise UserError(f"unknown metric '{metric}'; valid: test, valid")
    if prefix == "cifar10" and metric == "valid":
        return "cifar10_valid_valid"
    return f"{prefix}_{metric}"


def is_accuracy(column: str) -> bool:
    return column.endswith(ACCURACY_SUFFIXES)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class NB201Table(Benchmark):
    """The figures of all 15,625 NAS-Bench-201 architectures, by official index (the ``Benchmark`` of the
    NAS-Bench-201 space)."""

    def __init__(self, codes: np.ndarray, values: np.ndarray, columns: list[str], meta: dict[str, Any],
                 path: str = ""):
        codes = np.asarray(codes, dtype=np.uint8)
        values = np.asarray(values, dtype=np.float64)
        if codes.shape != (NUM_ARCHS, len(EDGES)) or values.shape != (NUM_ARCHS, len(columns)):
            raise ValueError(f"table shapes {codes.shape}, {values.shape} do not fit {NUM_ARCHS} architectures "
                             f"× {len(columns)} columns")
        keys = codes_key(codes)
        if codes.max(initial=0) >= 5 or len(np.unique(keys)) != NUM_ARCHS:
            raise ValueError("the table's architectures are not the 15,625 distinct NAS-Bench-201 cells")
        self.codes, self.values, self.columns, self.meta, self.path = codes, values, list(columns), meta, path
        self._index_of_key = np.empty(NUM_ARCHS, dtype=np.int64)
        self._index_of_key[keys] = np.arange(NUM_ARCHS)

    def __len__(self) -> int:
        return NUM_ARCHS

    # --- the Benchmark interface: a fixed sample and figures by genotype ------------------------
    def sample(self, n: int, seed: int) -> list[Genotype]:
        """The genotypes of ``sample_indices(n, 15625, seed)``: distinct official indices, in index order."""
        return self.genotypes(sample_indices(n, NUM_ARCHS, seed))

    def query(self, genotypes: Sequence[Genotype], column: str) -> np.ndarray:
        """The figures of ``column`` of ``genotypes`` (NaN where the table has none, or no such column)."""
        if column not in self.columns:
            return np.full(len(genotypes), np.nan)
        return self.column(column)[self.indices_of(genotypes)]

    # --- look-ups -------------------------------------------------------------------------------
    def index_of(self, genotype: Genotype) -> int:
        return int(self._index_of_key[int(codes_key(arch_codes(genotype)))])

    def indices_of(self, genotypes: Sequence[Genotype]) -> np.ndarray:
        """The official indices of ``genotypes``, in order."""
        codes = np.array([arch_codes(g) for g in genotypes], dtype=np.uint8).reshape(len(genotypes), len(EDGES))
        return self._index_of_key[codes_key(codes)]

    def genotype(self, index: int) -> Genotype:
        return genotype_of_key(int(codes_key(self.codes[index])))

    def arch_str(self, index: int) -> str:
        return format_arch(self.genotype(index))

    def genotypes(self, indices: np.ndarray) -> list[Genotype]:
        """The genotypes (tuples of the 6 op names) of the architectures ``indices``, in that order."""
        names = np.array(NB201_OPS)[self.codes[np.asarray(indices, dtype=np.int64)]]
        return [tuple(row) for row in names.tolist()]

    def locate(self, genotype: Genotype) -> dict[str, Any]:
        """The architecture's official index and string."""
        index = self.index_of(genotype)
        return {"index": index, "arch": self.arch_str(index)}

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def has(self, name: str) -> bool:
        return name in self.columns and bool(np.isfinite(self.column(name)).any())

    def row(self, index: int) -> dict[str, float | None]:
        """Every column of one architecture (None where the table has no figure)."""
        return {c: (float(v) if np.isfinite(v) else None) for c, v in zip(self.columns, self.values[index])}

    def figures(self, genotype: Genotype) -> dict[str, float]:
        """The accuracy figures of one architecture (only those the table has)."""
        row = self.row(self.index_of(genotype))
        return {c: v for c, v in row.items() if is_accuracy(c) and v is not None}

    def best(self, column: str) -> int:
        """Index of the architecture with the highest figure in ``column`` (ties: the lowest index)."""
        return int(np.nanargmax(self.column(column)))

    def optimum(self) -> dict[str, float]:
        """The best figure of every accuracy column, each over all architectures (AGNAS's "Optimal" row)."""
        return {c: float(np.nanmax(self.column(c))) for c in self.columns if is_accuracy(c) and self.has(c)}

    def target_column(self, dataset: str) -> tuple[str, str]:
        """The test figure that stands for a search on ``dataset``, and why: the dataset's own test column
        when it is a benchmark dataset (and the table has it), else CIFAR-10's."""
        own = SEARCH_DATASETS.get(dataset)
        if own and self.has(f"{own}_test"):
            return f"{own}_test", f"NAS-Bench-201 {dataset} test accuracy of the derived cell"
        why = (f"the table has no {dataset} test figures" if own
               else f"the search dataset '{dataset}' is not one of the benchmark's datasets")
        return "cifar10_test", f"NAS-Bench-201 cifar10 test accuracy of the derived cell: {why}"

    def figure_label(self, column: str) -> str:
        """"NAS-Bench-201 <dataset> <split>, 200 epochs" for an accuracy column (``COLUMN_LABELS``); the column's name
        after "NAS-Bench-201" for another."""
        if column in COLUMN_LABELS:
            return f"NAS-Bench-201 {COLUMN_LABELS[column]}, {TRAINING_EPOCHS} epochs"
        return f"NAS-Bench-201 {column}"

    def valid_column(self, dataset: str) -> str:
        """The validation figure a selection on ``dataset`` may use (never a test figure): the dataset's own
        when the table has it, else the cifar10-valid setting's."""
        prefix = SEARCH_DATASETS.get(dataset)
        own = "cifar10_valid_valid" if prefix == "cifar10" else f"{prefix}_valid"
        return own if prefix and self.has(own) else "cifar10_valid_valid"

    def cost_column(self, valid_column: str) -> str | None:
        """The column of training seconds of the networks whose figures ``valid_column`` holds (``cifar10_valid_valid``
        → ``cifar10_valid_train_seconds``), where the table has it: an official file's import; None for the bundled
        table, which has no training times."""
        prefix = valid_column.rsplit("_", 1)[0]
        column = f"{prefix}_train_seconds"
        return column if self.has(column) else None

    def network_info(self, column: str) -> DataInfo:
        """Input and classes of the benchmark network a column describes (CIFAR: 32×32, ImageNet16-120:
        16×16)."""
        if column.startswith("imagenet16_120"):
            return DataInfo(in_channels=3, num_classes=120, image_size=16)
        return DataInfo(in_channels=3, num_classes=100 if column.startswith("cifar100") else 10, image_size=32)

    def describe(self) -> dict[str, Any]:
        """Provenance for a trial record."""
        path = "default" if self.path and Path(self.path) == DEFAULT_TABLE.resolve() else self.path
        return {"path": path, "source": self.meta.get("source"), "source_kind": self.meta.get("source_kind"),
                "source_sha256": self.meta.get("source_sha256")}

    # --- storage --------------------------------------------------------------------------------
    def save(self, path: Path | str) -> None:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, codes=self.codes, values=self.values, columns=np.array(self.columns),
                            meta=np.array(json.dumps(self.meta, sort_keys=True)))
        atomic_write(path, lambda f: f.write(buffer.getvalue()), binary=True)


def _read_table(path: Path) -> NB201Table:
    bad = f"'{path}' is not a NAS-Bench-201 table made by 'python -m harness nb201 import'"
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"NAS-Bench-201 table '{path}' does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise UserError(bad) from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # a plain .npy array
        raise UserError(bad)
    try:
        with data:
            codes, values = data["codes"], data["values"]
            columns, meta = [str(c) for c in data["columns"]], json.loads(str(data["meta"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        raise UserError(bad) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{bad} (format {meta.get('format') if isinstance(meta, dict) else None!r}, "
                        f"expected {FORMAT})")
    try:
        return NB201Table(codes, values, columns, meta, str(path))
    except ValueError as exc:
        raise UserError(f"{bad}: {exc}") from None


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: float, size: int) -> NB201Table:
    return _read_table(Path(path))


def load_table(spec: str = "default") -> NB201Table:
    """The bundled table (``"default"``) or an imported one (a path); cached per process and file version."""
    path = DEFAULT_TABLE if spec == "default" else Path(spec).expanduser()
    try:
        stat = path.stat()
    except OSError:
        raise UserError(f"NAS-Bench-201 table '{spec}' does not exist (make one with "
                        "'python -m harness nb201 import FILE')") from None
    if not path.is_file():
        raise UserError(f"NAS-Bench-201 table '{spec}' is not a file")
    return _cached(str(path.resolve()), stat.st_mtime, stat.st_size)


# --- imports ---------------------------------------------------------------------------------------

def _provenance(path: Path, kind: str, columns: dict[str, str], notes: str) -> dict[str, Any]:
    return {"format": FORMAT, "source": path.name, "source_kind": kind, "source_sha256": file_sha256(path),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "harness_version": __version__, "columns": columns, "notes": notes}


def _codes_of(arch_strings: list[Any], where: str) -> np.ndarray:
    if len(arch_strings) != NUM_ARCHS:
        raise UserError(f"{where} lists {len(arch_strings)} architectures; NAS-Bench-201 has {NUM_ARCHS}")
    codes = np.empty((NUM_ARCHS, len(EDGES)), dtype=np.uint8)
    for i, text in enumerate(arch_strings):
        try:
            codes[i] = arch_codes(parse_arch(text))
        except UserError as exc:
            raise UserError(f"{where}: architecture {i}: {exc}") from None
    if len(np.unique(codes_key(codes))) != NUM_ARCHS:
        raise UserError(f"{where} lists some architecture twice")
    return codes


def table_from_merged_csv(path: Path) -> NB201Table:
    """The table of ``../shared/data/nb201/nb201_merged.csv`` (see its README for every column's origin)."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read '{path}' as CSV ({exc.__class__.__name__})") from None
    missing = [c for c in ("index", "arch_str", *CSV_COLUMNS) if c not in df.columns]
    if missing:
        raise UserError(f"'{path}' is not the merged NAS-Bench-201 CSV: missing column(s) {', '.join(missing)}")
    if len(df) != NUM_ARCHS or not (df["index"].to_numpy() == np.arange(NUM_ARCHS)).all():
        raise UserError(f"'{path}' must have one row per architecture, indices 0..{NUM_ARCHS - 1} in order")
    codes = _codes_of(df["arch_str"].tolist(), str(path))
    columns = [ours for ours, _ in CSV_COLUMNS.values()]
    try:
        values = df[list(CSV_COLUMNS)].to_numpy(dtype=np.float64)
    except ValueError:
        raise UserError(f"'{path}' has a non-numeric figure") from None
    origin = {ours: f"{COLUMN_HELP[ours]} — {source} (CSV column {csv})"
              for csv, (ours, source) in CSV_COLUMNS.items()}
    meta = _provenance(path, "merged-csv", origin,
                       "A join of two public derived tables of the official benchmark (see "
                       "shared/data/nb201/README.md). Not in it: FLOPs, per-seed values, validation accuracy "
                       "for CIFAR-100 and ImageNet16-120; import the official file for those.")
    return NB201Table(codes, values, columns, meta, "")


def _safe_globals() -> list[Any]:
    """NumPy types a NAS-Bench-201 file may hold; everything else is refused by the restricted unpickler.

    Files written under NumPy 1.x name them ``numpy.core.…``; NumPy 2 moved them to ``numpy._core``."""
    multiarray = (getattr(np, "_core", None) or np.core).multiarray
    scalar, reconstruct = multiarray.scalar, multiarray._reconstruct
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return [np.dtype, np.ndarray, scalar, reconstruct, *dtypes,
            (scalar, "numpy.core.multiarray.scalar"), (reconstruct, "numpy.core.multiarray._reconstruct")]


def _load_official(path: Path) -> dict[str, Any]:
    import torch

    try:
        with torch.serialization.safe_globals(_safe_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        raise UserError(f"refusing '{path}': it is not a NAS-Bench-201 benchmark file"
                        + (f" (it holds the Python object {found.group(1)}, which such a file does not)"
                           if found else "")) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError):
        raise UserError(f"'{path}' is corrupt or not a torch file: cannot read it as a NAS-Bench-201 "
                        "benchmark file") from None
    if not (isinstance(data, dict) and all(k in data for k in ("meta_archs", "arch2infos", "evaluated_indexes"))):
        raise UserError(f"'{path}' is not a NAS-Bench-201 v1.0/v1.1 benchmark file (expected a dict with "
                        "meta_archs, arch2infos and evaluated_indexes)")
    return data


def _official_figures(entry: Any) -> dict[str, float]:
    """Our columns for one architecture's ``full`` (hp='200') results, read with the package's classes."""
    from nas_201_api import ArchResults

    results = ArchResults.create_from_state_dict(entry)
    out: dict[str, float] = {}
    for dataset in results.get_dataset_names():
        prefix = OFFICIAL_DATASETS.get(dataset)
        if prefix is None:
            continue
        for split, set_name in OFFICIAL_SETS[dataset]:
            out[f"{prefix}_{split}"] = float(results.get_metrics(dataset, set_name, is_random=False)["accuracy"])
        out[f"{prefix}_train_seconds"] = float(results.get_metrics(dataset, "train", is_random=False)["all_time"])
        if dataset != "cifar10-valid":  # the same network as cifar10's
            costs = results.get_compute_costs(dataset)
            out[f"{prefix}_params_m"], out[f"{prefix}_flops_m"] = float(costs["params"]), float(costs["flops"])
    return out


def import_official(path: Path, progress: Any = None) -> NB201Table:
    """The table of an official NAS-Bench-201 file (v1.0 or v1.1): hp='200' figures, means over seeds."""
    data = _load_official(path)
    if not isinstance(data["meta_archs"], (list, tuple)) or not isinstance(data["arch2infos"], dict):
        raise UserError(f"'{path}' is not a NAS-Bench-201 benchmark file (meta_archs must be a list and "
                        "arch2infos a dict)")
    codes = _codes_of(list(data["meta_archs"]), str(path))
    columns = [f"{prefix}_{split}" for d, prefix in OFFICIAL_DATASETS.items() for split, _ in OFFICIAL_SETS[d]]
    columns += [f"{OFFICIAL_DATASETS[d]}_{k}" for d in ("cifar10", "cifar100", "ImageNet16-120")
                for k in ("params_m", "flops_m")]
    columns += [f"{prefix}_train_seconds" for prefix in OFFICIAL_DATASETS.values()]
    values = np.full((NUM_ARCHS, len(columns)), np.nan)
    infos = data["arch2infos"]
    for index in infos:
        if isinstance(index, bool) or not (isinstance(index, (int, np.integer)) and 0 <= index < NUM_ARCHS):
            raise UserError(f"'{path}': architecture index {str(index)[:40]!r} is not an integer in "
                            f"0..{NUM_ARCHS - 1}")
    for n, index in enumerate(sorted(infos)):
        entry = infos[index]
        # The package would torch.load a string here (a path, outside our restricted unpickler): only dicts.
        if not (isinstance(entry, dict) and isinstance(entry.get("full"), dict)
                and isinstance(entry["full"].get("all_results"), dict)):
            raise UserError(f"'{path}': architecture {index} has no hp='200' results in the benchmark's format")
        try:
            figures = _official_figures(entry["full"])
        except (KeyError, TypeError, AttributeError, ValueError, IndexError, AssertionError) as exc:
            raise UserError(f"'{path}': architecture {index} has no readable hp='200' results "
                            f"({exc.__class__.__name__})") from None
        for column, value in figures.items():
            values[index, columns.index(column)] = value
        infos[index] = None  # let the unpickled results go as we read them
        if progress is not None:
            progress(n + 1, len(infos))
    origin = {c: f"{COLUMN_HELP[c]} — nas-bench-201 package, hp='200', is_random=False" for c in columns}
    version = "v1.1" if "v1_1" in path.name else "v1.0" if "v1_0" in path.name else "v1.x"
    meta = _provenance(path, f"nb201-{version}-pth", origin,
                       f"{len(infos)} of {NUM_ARCHS} architectures have results in the file.")
    return NB201Table(codes, values, columns, meta, "")


def import_file(path: Path, progress: Any = None) -> NB201Table:
    """Convert a benchmark file (official ``.pth`` or the merged CSV) into a table."""
    if not path.is_file():
        raise UserError(f"'{path}' does not exist or is not a file")
    if path.suffix.lower() == ".csv":
        return table_from_merged_csv(path)
    return import_official(path, progress)


def import_memory_note(path: Path) -> str:
    size = os.path.getsize(path) / 1e9
    if path.suffix.lower() == ".csv":
        return f"reading {path.name} ({size * 1000:.1f} MB)"
    return (f"reading {path.name} ({size:.2f} GB) whole, as the nas-bench-201 package does: this needs at least "
            "the memory of the unpickled file (users report more than 24 GB for the 4.7 GB v1.1 file); "
            "the table written is about 1 MB")
