"""Trial records: one self-contained JSON file per finished trial, the source of truth for results.

Records are written atomically (temporary file in the same folder, fsync, rename) so a crash or a
killed worker leaves either the complete old record, the complete new one, or nothing — never a
half-written file that would silently drop a seed from a leaderboard.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import sys
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import IO, Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.core.config import MAX_SEED
from harness.core.errors import UserError, one_line
from harness.core.metric_table import NULL, record_metrics, shown_metrics
from harness.core.places import place, write_group
from harness.core.provenance import count_text, queried_figure
from harness.core.stats import duration_text, is_number
from harness.core.storage import Remote, location

IDENTITY_KEYS = ("method", "space", "dataset", "budget", "seed")


# --- file names ---------------------------------------------------------------------------------
def _slug(text: str) -> str:
    """A file-name-safe form of a name; ``folder:/data/my_set/`` becomes ``folder-my_set``.

    For ``kind:path`` dataset names only the last path component is kept: the full path would make
    unreadable names, and the folder name is what a user recognises.
    """
    text = str(text)
    if ":" in text:
        kind, rest = text.split(":", 1)
        rest = rest.rstrip("/\\")
        name = PurePath(rest.replace("\\", "/")).name or rest
        text = f"{kind}-{name}" if name else kind
    text = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")
    return text.lstrip(".") or "_"


MAX_RECORD_STEM = 150  # characters of a record's name before ``-s<seed>.json``: file systems allow 255 bytes


def record_filename(method: str, space: str, dataset: str, seed: int) -> str:
    """``<method>-<space>-<dataset>-s<seed>.json`` with every part made safe for a file name. A name longer than
    ``MAX_RECORD_STEM`` (a dataset folder of a long name) is cut and ends in a hash of the whole, so the record, its
    checkpoint and its Ray Tune folder can be written; shorter names are as they always were."""
    return f"{bounded_stem(f'{_slug(method)}-{_slug(space)}-{_slug(dataset)}', MAX_RECORD_STEM)}-s{int(seed)}.json"


def bounded_stem(stem: str, limit: int) -> str:
    """``stem`` (a file name without its suffix) as it is up to ``limit`` characters; longer, cut and ended by a hash
    of the whole, so that distinct long names stay distinct and a file system takes them (255 bytes)."""
    if len(stem) <= limit:
        return stem
    return f"{stem[:limit - 13]}-{hashlib.sha256(stem.encode()).hexdigest()[:12]}"


# --- the environment a record was computed in -------------------------------------------------------------------
ENVIRONMENT_KEYS = ("python", "os", "cpu", "cpu_count", "cpu_capability", "torch", "torch_commit", "cuda", "cudnn",
                    "blas", "lapack", "mkl", "onednn", "openmp", "numpy", "numpy_blas", "torchvision", "gpu",
                    "gpu_capability", "cuda_driver")


def run_environment(device: Any = "cpu") -> dict[str, str | int | None]:
    """What produced a trial's figures besides its configuration and seed, for the record's ``environment``: the same
    configuration on another torch build, BLAS, SIMD level or GPU may differ in the last digits and then diverge.

    ``python``; ``os`` (``platform.platform()``); ``cpu`` (the model name of /proc/cpuinfo, else ``platform``'s),
    ``cpu_count`` (logical cores); ``cpu_capability``, the SIMD kernels torch dispatches to (AVX2, AVX512, ...);
    ``torch`` (version with its build tag, e.g. ``2.14.1+cu130``), ``torch_commit``; ``cuda`` and ``cudnn``, the
    versions torch was built with (None in a CPU-only build); ``blas`` and ``lapack`` (torch's build settings),
    ``mkl``, ``onednn`` and ``openmp`` (the libraries it was built with, as ``torch.__config__.show()`` names them);
    ``numpy`` and ``numpy_blas``; ``torchvision``; where ``device`` is CUDA, ``gpu`` (its name), ``gpu_capability``
    and ``cuda_driver``, else None. Every value is text, an integer or None."""
    import numpy
    import torch

    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        numpy_blas = f"{blas['name']} {blas['version']}"
    except Exception:  # numpy before 1.26, or a build that does not say
        numpy_blas = None
    try:
        torchvision = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        torchvision = None
    environment: dict[str, str | int | None] = {
        "python": platform.python_version(), "os": platform.platform(), "cpu": cpu_model(),
        "cpu_count": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__, "torch_commit": torch.version.git_version, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        **torch_libraries(torch.__config__.show()), "numpy": numpy.__version__, "numpy_blas": numpy_blas,
        "torchvision": torchvision, "gpu": None, "gpu_capability": None, "cuda_driver": None,
    }
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        environment.update(gpu=torch.cuda.get_device_name(index), gpu_capability=f"{major}.{minor}",
                           cuda_driver=_cuda_driver())
    return environment


def torch_libraries(shown: str) -> dict[str, str | None]:
    """What ``torch.__config__.show()`` (``shown``) says torch was built with: ``blas`` and ``lapack`` (its build
    settings ``BLAS_INFO`` and ``LAPACK_INFO``, e.g. ``mkl``, ``open``), and the lines naming ``mkl`` (Intel's Math
    Kernel Library), ``onednn`` (oneDNN, called MKL-DNN in older builds) and ``openmp``, as torch words them; None
    where it names none."""
    settings = dict(re.findall(r"\b([A-Z_]+)=([^,\s]*)", shown))
    lines = [line.strip()[2:].strip() for line in shown.splitlines() if line.strip().startswith("- ")]

    def line(pattern: str) -> str | None:
        return next((text for text in lines if re.match(pattern, text)), None)

    return {"blas": settings.get("BLAS_INFO") or None, "lapack": settings.get("LAPACK_INFO") or None,
            "mkl": line(r"Intel\(R\) (oneAPI )?Math Kernel Library"), "onednn": line(r"(Intel\(R\) MKL-DNN|oneDNN) "),
            "openmp": line(r"OpenMP ")}


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name: the first ``model name`` of ``cpuinfo`` (Linux x86), else ``platform.processor()``, else
    the machine type (``aarch64``)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cuda_driver() -> str | None:
    """The CUDA version the NVIDIA driver supports, e.g. ``13.0`` (torch's own query; None where it has none)."""
    try:
        import torch

        version = int(torch._C._cuda_getDriverVersion())
    except Exception:  # a private function of torch: another build may lack it
        return None
    return f"{version // 1000}.{version % 1000 // 10}" if version > 0 else None


def environment_differences(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """(key, value before, value after) for each key of two ``environment`` objects whose values differ, in
    ``run_environment``'s order (keys it does not know after them, sorted); a missing object (a record written before
    records carried one) counts as empty, a missing key as None."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    known = list(ENVIRONMENT_KEYS)
    keys = known + sorted((set(before) | set(after)) - set(known))
    return [(key, before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)]


def environment_summary(environment: dict[str, Any]) -> str:
    """One line of a record's ``environment`` for ``show``: torch and its build, BLAS and SIMD level, NumPy, Python,
    CPU and GPU, e.g. ``torch 2.14.1+cu130 (CUDA 13.0, cuDNN 9.24.0) · BLAS mkl · AVX512 · numpy 2.4.6 · Python
    3.11.7 · CPU AMD EPYC``; what the record lacks is left out."""
    env = environment
    parts = []
    if env.get("torch"):
        cuda = env.get("cuda")
        build = ["CUDA " + str(cuda)] if cuda else ["CPU-only build"]
        if cuda and env.get("cudnn"):
            build.append(f"cuDNN {cudnn_text(env['cudnn'])}")
        parts.append(f"torch {env['torch']} ({', '.join(build)})")
    parts += [f"{label}{env[key]}" for key, label in (("blas", "BLAS "), ("cpu_capability", ""), ("numpy", "numpy "),
                                                       ("python", "Python "), ("cpu", "CPU "), ("gpu", "GPU "))
              if env.get(key) not in (None, "")]
    return " · ".join(parts)


def cudnn_text(version: Any) -> str:
    """cuDNN's version number as torch gives it, readable: ``92400`` → ``9.24.0`` (cuDNN 9 counts major·10000 +
    minor·100 + patch), ``8907`` → ``8.9.7`` (cuDNN 8: major·1000 + minor·100 + patch); anything else as it is."""
    if not _is_int(version) or version <= 0:
        return str(version)
    if version >= 10000:
        return f"{version // 10000}.{version // 100 % 100}.{version % 100}"
    return f"{version // 1000}.{version // 100 % 10}.{version % 100}"


# --- JSON ---------------------------------------------------------------------------------------
def json_safe(obj: Any) -> Any:
    """Plain-JSON form of ``obj``: NaN/inf → None, NumPy/tensors → Python, tuples/sets → lists, Path → str.

    Strict JSON has no NaN, and other tools (jq, JavaScript, pandas' strict readers) reject it; an
    undefined metric is stored as null. Anything else unknown becomes its ``str`` so that a record is
    never lost after hours of search because of one odd value.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, dict):
        return {_json_key(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, range)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((json_safe(v) for v in obj), key=repr)
    if isinstance(obj, PurePath):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays, torch tensors
        return json_safe(obj.tolist())
    return str(obj)


def _json_key(key: Any) -> str:
    # JSON keys are strings; converting here also keeps sort_keys from failing on mixed key types.
    key = json_safe(key)
    return key if isinstance(key, str) else json.dumps(key)


# --- atomic writes ------------------------------------------------------------------------------
def check_writable_folder(folder: Path | Remote, what: str) -> None:
    """``folder`` is a folder, or can be created as one, and this process can write in it: one line naming
    ``what`` (the option) otherwise. Checked before any long work whose result would then be lost
    (``Place.check_writable``: a probe folder made and removed locally, a probe object put and deleted on a store)."""
    place(folder).check_writable(what)


def atomic_write_many(files: dict[Path | Remote | str, tuple[Callable[[IO[Any]], None], bool]]) -> None:
    """Write several files as a group: every ``write(f)`` (binary when the flag says so) fills a temporary
    file first, and only when all are complete are they renamed over their targets, back to back — a
    failure while writing leaves every previous file untouched. On an object store (``Remote`` targets)
    every ``write(f)`` fills memory first and the objects are then put back to back, each in one upload
    (``places.write_group`` and its places' ``write_group``). An OS error (a read-only folder, a full disk, a path
    through a file) becomes a one-line ``UserError``.
    """
    write_group(files)


def atomic_write(path: Path | str, write: Callable[[IO[Any]], None], binary: bool = False) -> None:
    """Write one file atomically: ``write(f)`` fills a temporary file (text, or bytes when ``binary``) that
    then replaces ``path`` (see ``atomic_write_many``); any previous file stays untouched on failure."""
    atomic_write_many({path: (write, binary)})


def write_record(path: Path | str, record: dict[str, Any]) -> None:
    """Write one trial record atomically as sorted, indented strict JSON (parent folders created)."""
    safe = json_safe(record)
    atomic_write(path, lambda f: json.dump(safe, f, indent=2, sort_keys=True, allow_nan=False))


# --- reading ------------------------------------------------------------------------------------
# What a view reads, bounded: a record file's size, its nesting, and how many record files one view takes in. A
# record the harness writes is tens of kilobytes, nested a few levels; a study holds hundreds to thousands.
MAX_RECORD_BYTES = 32 * 2**20
MAX_NESTING = 32
MAX_RECORDS = 10_000
MAX_TOTAL_BYTES = 2 * 2**30  # all the records one view reads together
MAX_NAME_CHARS = 4096  # an identity value (method, space, dataset, budget): a dataset's path at most
_FLOAT_MAX = sys.float_info.max


def read_limited(path: Path | Remote, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path`` (local or on an object store), at most ``limit`` of them: anything
    else is one line naming ``what`` — a device (``/dev/zero``), a FIFO (opened without waiting for a writer), a
    folder, or a file larger than ``limit`` (never read past it). ``FileNotFoundError`` is left to the caller."""
    return place(path).read_limited(limit, what)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _name_problem(key: str, value: Any) -> str | None:
    if key == "seed":
        return None if _is_int(value) and 0 <= value <= MAX_SEED else f"its seed is not an integer in 0..{MAX_SEED}"
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
        return f"its {key} is not a name of 1 to {MAX_NAME_CHARS} characters"
    return None


def _value_problem(record: dict[str, Any], raw: bytes | None = None) -> str | None:
    """Why the values of ``record`` cannot be read by every view, or None: nested deeper than ``MAX_NESTING``, a
    string that is not valid Unicode (a lone surrogate), an integer no float can hold. Walked level by level,
    without recursion. ``raw``, the JSON text it was parsed from (``_parse_int`` refuses such integers), spares
    the walk over every string and number where it holds no surrogate escape (the only way to a lone one)."""
    scalars = raw is None or _SURROGATE_ESCAPE.search(raw) is not None
    level: list[Any] = [record]
    depth = 1
    while level:
        if depth > MAX_NESTING:
            return f"it is nested deeper than {MAX_NESTING} levels"
        below = []
        for container in level:
            if type(container) is dict:
                if scalars and not all(_unicode(key) for key in container):
                    return "it holds a key that is not valid Unicode"
                children = container.values()
            else:
                children = container
            for value in children:
                kind = type(value)
                if kind is dict or kind is list:
                    below.append(value)
                elif scalars and kind is str and not _unicode(value):
                    return "it holds a string that is not valid Unicode"
                elif scalars and kind is int and abs(value) > _FLOAT_MAX:
                    return "it holds a number too large for a float"
        level = below
        depth += 1
    return None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _parse_int(digits: str) -> int:
    """JSON's integers, refused past what a float holds (the views average them); past 4,300 digits Python itself
    refuses to convert them (``ValueError`` too)."""
    value = int(digits)
    if abs(value) > _FLOAT_MAX:
        raise ValueError(f"an integer of {len(digits)} digits, beyond a float")
    return value


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_split(value: Any) -> bool:
    def counts(v: Any) -> bool:
        return isinstance(v, list) and all(_is_int(c) for c in v)

    return (isinstance(value, dict) and all(counts(value.get(k)) for k in ("weights", "arch", "test"))
            and _is_int(value.get("test_images")) and isinstance(value.get("classes"), list)
            and isinstance(value.get("order"), str))


def _is_benchmark_info(value: Any) -> bool:
    table = value.get("table") if isinstance(value, dict) else None
    return isinstance(value, dict) and (table is None or (
        isinstance(table, dict) and isinstance(table.get("path"), (str, type(None)))))


def _is_history(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    for row in value:  # a plain loop: a paper budget's history has hundreds of epochs in each of many records
        if type(row) is dict:
            phase, epoch = row.get("phase"), row.get("epoch")
            if not (phase is None or type(phase) is str) or not (epoch is None or type(epoch) is int):
                return False
    return True


def _number_or_none(value: Any) -> bool:
    return value is None or isinstance(value, bool) or is_number(value)  # a flag (teacher_cached) counts


def _text_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _dict_or_none(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def fields(record: dict[str, Any]) -> list[tuple[str, Callable[[Any], bool], str]]:
    """The fields the views read of ``record`` besides the identity and the overrides: (field, its test, what it must
    be). A field that fails its test is left out of the record (one warning line names it); the rest of the record is
    shown. The metrics: the metric table the record needs, methods' own included (``metric_table.record_metrics``)."""
    metrics = record_metrics(record)
    return [
        *((key, _text_or_none, "text") for key in ("experiment", "config_hash", "device", "harness_version",
                                                     "finished_at", "test_acc_source", "genotype")),
        *((m.key, _number_or_none, "a number") for m in metrics),
        *((m.unit_key, _text_or_none, "text") for m in metrics if m.unit_key),
        *((key, _dict_or_none, "an object") for key in ("config", "benchmark", "importance", "environment")),
        ("history", lambda v: v is None or _is_history(v), "a list of epochs with a text phase and an integer epoch"),
        ("split", lambda v: v is None or _is_split(v), "a recorded split"),
        ("benchmark_info", lambda v: v is None or _is_benchmark_info(v), "an object whose table is an object"),
    ]


def check_record(record: Any, where: Path | Remote | str, raw: bytes | None = None) -> list[str]:
    """Make ``record`` (parsed JSON) safe for every view, in place: ``UserError`` (one line) when it cannot be placed
    at all — not an object, an identity value or ``overrides`` (which decide its row) of the wrong type, a value no
    view can hold (``_value_problem``); else each field of ``fields(record)`` that fails its test is removed, and the
    process's own annotations (keys starting with ``_``: ``_path``, ``_label``) are never taken from a file.
    ``raw``: the JSON text it was parsed from (``_value_problem``). Returns what was left out, one ``field (why)``
    each."""
    if not isinstance(record, dict):
        raise UserError(f"record {where} is not a JSON object; delete it and re-run the trial")
    missing = [k for k in IDENTITY_KEYS if k not in record]
    if missing:
        raise UserError(f"record {where} lacks the identity keys {', '.join(missing)}; "
                        "it is not a trial record (delete it or move it out of trials/)")
    problem = _value_problem(record, raw) or next(
        (p for p in (_name_problem(k, record[k]) for k in IDENTITY_KEYS) if p), None)
    if problem is None and not _dict_or_none(record.get("overrides")):
        problem = "its overrides are not an object"
    if problem:
        raise UserError(f"record {where}: {problem}, so it is not a record the harness wrote; delete it or re-run "
                        "the trial")
    for key in [k for k in record if k.startswith("_")]:
        del record[key]
    left_out = []
    for key, valid, what in fields(record):
        if key in record and not valid(record[key]):
            del record[key]
            left_out.append(f"{key} (not {what})")
    return left_out


def read_record(path: Path | str, warn: bool = True) -> dict[str, Any]:
    """Read one record, raising ``UserError`` (one line) if it is missing, not a regular file, larger than
    ``MAX_RECORD_BYTES``, not JSON or not a record (``check_record``); a field no view can read is left out, with
    one warning line on stderr when ``warn``."""
    return _read_record(location(path), warn)[0]


def _read_record(path: Path | Remote, warn: bool) -> tuple[dict[str, Any], int]:
    try:
        data = read_limited(path, MAX_RECORD_BYTES, "record")
    except FileNotFoundError:
        raise UserError(f"record {path} does not exist; check the path or list results/<experiment>/trials/") from None
    try:
        record = json.loads(data.decode("utf-8"), parse_int=_parse_int)
    except UnicodeDecodeError as err:
        raise UserError(f"cannot read record {path}: {one_line(err)}") from None
    except RecursionError:
        raise UserError(f"record {path} is nested too deeply to read; delete it and re-run the trial") from None
    except ValueError as err:  # JSONDecodeError, and an integer beyond a float (``_parse_int``)
        raise UserError(f"record {path} is not valid JSON ({one_line(err, 200)}); delete it and re-run the "
                        "trial") from None
    left_out = check_record(record, path, data)
    if left_out and warn:
        print(f"warning: record {path}: left out {', '.join(left_out)}", file=sys.stderr)
    return record, len(data)


def record_paths(root: Path | Remote, nested: bool = True) -> list[Path | Remote]:
    """The record files of ``root``: every ``trials/*.json`` anywhere below it (``nested``: the records of every
    experiment and study under a results folder), or only ``root/trials/*.json`` (an experiment's own), sorted."""
    if nested:
        paths = [p for p in root.rglob("*.json") if p.parent.name == "trials"]
    else:
        paths = place(root / "trials").glob("*.json")
    return sorted(p for p in paths if not p.name.startswith(".") and p.is_file())


def load_records(root: Path | str, nested: bool = True) -> list[dict[str, Any]]:
    """The records of ``record_paths(root, nested)``, sorted by path, each with ``_path``.

    A file that cannot be read as a record is skipped with a one-line warning on stderr (a field of it that no view
    can read: left out, one line): one bad file must not hide every other result, but the user must hear about it.
    More than ``MAX_RECORDS`` record files, or more than ``MAX_TOTAL_BYTES`` of them, is one line: a view
    never takes in an unbounded folder.
    """
    root = location(root)
    if not root.exists():
        raise UserError(f"results folder {root} does not exist; run an experiment first or pass the "
                        "folder that holds <experiment>/trials/")
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass the results folder that holds <experiment>/trials/")
    paths = record_paths(root, nested)
    if len(paths) > MAX_RECORDS:
        raise UserError(f"{root} holds {len(paths)} record files, more than {MAX_RECORDS} record files a view reads; "
                        "point it at a narrower folder (one study or experiment)")
    records, total = [], 0
    for path in paths:
        try:
            record, size = _read_record(path, warn=True)
        except UserError as err:
            print(f"warning: skipping {one_line(err)}", file=sys.stderr)
            continue
        total += size
        if total > MAX_TOTAL_BYTES:
            raise UserError(f"the records under {root} are more than {MAX_TOTAL_BYTES // 2**30} GiB together, the "
                            "most a view reads; point it at a narrower folder (one study or experiment)")
        record["_path"] = str(path)
        records.append(record)
    return records


# --- showing ------------------------------------------------------------------------------------
_NOT_METRICS = set(IDENTITY_KEYS) | {"config", "overrides", "history", "genotype", "benchmark"}


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NULL
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"
    return str(value)


def _is_seconds(key: str) -> bool:
    """A record or history key that holds seconds: "seconds" is one of its words (``search_seconds``, a method's
    ``search_seconds_without_intensive``, a history entry's ``seconds``)."""
    return "seconds" in key.split("_")


def _value_unit(m: Any, record: dict[str, Any]) -> tuple[str, str]:
    """A metric's value and unit as ``show`` prints them: a time (a metric in seconds or hours) in the unit that reads
    best (``duration_text``: "442 µs", "1.50 min"), with the kind of device where the record names it ("CPU" of
    ``device_hours_kind`` "CPU-hours"); any other figure with its significant digits and its unit."""
    value = record[m.key]
    if m.unit in ("s", "hours"):
        kind = str(record.get(m.unit_key) or "") if m.unit_key else ""
        seconds = value * 3600.0 if m.unit == "hours" and is_number(value) else value
        return duration_text(seconds), kind.removesuffix("-hours")
    unit = str(record.get(m.unit_key) or m.unit) if m.unit_key else m.unit
    return _fmt(value, m.significant), unit


def _cell_lines(title: str, edges: list[tuple[str, int]]) -> list[str]:
    lines = [f"{title}:"]
    for k in range(0, len(edges), 2):
        pair = ", ".join(f"({op}, {src})" for op, src in edges[k:k + 2])
        lines.append(f"  node {k // 2 + 2} ← {pair}")
    return lines


def genotype_lines(genotype: str) -> list[str]:
    """DARTS-style ``Genotype(...)``, ``StagedGenotype(...)`` and ``PerCellGenotype(...)`` strings as one line per
    cell node; other strings, and strings of those forms that cannot be read, unchanged.

    A genotype is a list of (op, source) pairs, two per intermediate node; nodes are numbered from 2
    because sources 0 and 1 are the cell's two inputs, so node numbers and sources read the same way.
    """
    try:
        own_cells = genotype.startswith(("StagedGenotype(", "PerCellGenotype("))
        lines = _own_cell_lines(genotype) if own_cells else _plain_lines(genotype)
    except (ValueError, SyntaxError, AttributeError, TypeError, RecursionError, MemoryError):
        return [genotype]
    return lines or [genotype]


def _own_cell_lines(genotype: str) -> list[str]:
    call = ast.parse(genotype, mode="eval").body
    fields = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}  # type: ignore[attr-defined]
    lines = []
    normal = "normal cells of stage" if genotype.startswith("StagedGenotype(") else "normal cell"
    for k, edges in enumerate(fields.get("normal", [])):
        lines += _cell_lines(f"{normal} {k + 1}", edges)
    for k, edges in enumerate(fields.get("reduce", [])):
        lines += _cell_lines(f"reduction cell {k + 1}", edges)
    return lines


def _plain_lines(genotype: str) -> list[str]:
    if not genotype.startswith("Genotype("):
        return []
    lines = []
    for cell in ("normal", "reduce"):
        match = re.search(rf"\b{cell}=(\[[^\]]*\])", genotype)
        if match is None:
            continue
        lines += _cell_lines(f"{cell} cell", ast.literal_eval(match.group(1)))
        concat = re.search(rf"\b{cell}_concat=(range\([^)]*\)|\[[^\]]*\])", genotype)
        if concat is not None:
            lines.append(f"  output = concat {concat.group(1)}")
    return lines


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _history_rows(history: list[dict[str, Any]], head: int = 5, tail: int = 5) -> list[dict[str, Any] | None]:
    """Per phase, the first and last epochs when a phase is long; ``None`` marks an elision."""
    phases: dict[Any, list[dict[str, Any]]] = {}
    for row in history:
        if isinstance(row, dict):
            phases.setdefault(row.get("phase"), []).append(row)
    rows: list[dict[str, Any] | None] = []
    for phase_rows in phases.values():
        if len(phase_rows) > head + tail + 2:
            rows += phase_rows[:head] + [None] + phase_rows[-tail:]
        else:
            rows += phase_rows
    return rows


def split_summary(split: dict[str, Any]) -> str:
    """One line for a recorded split (the plan, ``show``)."""
    def spread(counts: list[int]) -> str:
        return f"{min(counts)}–{max(counts)}" if counts else "0"

    return (f"{sum(split['weights'])} weight / {sum(split['arch'])} architecture / {split['test_images']} test "
            f"images; per class {spread(split['weights'])} / {spread(split['arch'])} / {spread(split['test'])} of "
            f"{len(split['classes'])} classes; order: {split['order'].split(':')[0]}")


# The label of ``search_val_acc`` for a search that queried its benchmark (``queried_figure``): no supernet was
# validated, the figure is the benchmark's, of the best cell queried (its source: ``show``'s "search:" line).
QUERIED_VAL_LABEL = "best queried benchmark val accuracy"


def _metrics_table(record: dict[str, Any], queried: bool = False) -> Table:
    """The metric table's metrics the record has, in the table's order with their labels and units (times in readable
    units: ``_value_unit``); then every other numeric key (and undefined accuracies and correlations) by name; then
    the benchmark's figures. A null or NaN value is shown as "—". ``queried``: the search queried its benchmark, so
    its search validation accuracy is the benchmark's figure (``QUERIED_VAL_LABEL``)."""
    table = Table(title="metrics", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("unit")
    shown = shown_metrics(record)
    for m in shown:
        if m.key in record:
            label = QUERIED_VAL_LABEL if queried and m.key == "search_val_acc" else m.label
            table.add_row(label, *_value_unit(m, record))
    shown_keys = {m.key for m in shown}
    for key in sorted(record):
        value = record[key]
        if key in shown_keys or key in _NOT_METRICS or key.startswith("_") or isinstance(value, bool):
            continue
        if is_number(value) or (value is None and key.endswith(("_acc", "_tau", "_rho"))):
            table.add_row(key, duration_text(value) if _is_seconds(key) else _fmt(value), "")
    benchmark = record.get("benchmark")
    if isinstance(benchmark, dict):
        for key, value in _flatten(benchmark).items():
            table.add_row(f"benchmark {key}", _fmt(value), "")
    return table


def _history_table(history: list[Any], title: str | None = None) -> Table:
    """Per epoch (long phases elided in the middle): phase and every numeric column that has a value (times in
    readable units, ``duration_text``). ``title``: in place of "history (N epochs)"."""
    columns: list[str] = []
    for row in history:
        if isinstance(row, dict):
            for key, value in row.items():
                if key not in ("epoch", "phase") and key not in columns and (is_number(value) or value is None):
                    columns.append(key)
    columns = [c for c in columns if any(isinstance(r, dict) and is_number(r.get(c)) for r in history)]
    title = title or f"history ({len(history)} epochs)"
    table = Table(title=title, title_justify="left", min_width=len(title))  # the title on one line where it fits
    table.add_column("epoch", justify="right")
    table.add_column("phase")
    for column in columns:
        table.add_column(column, justify="right")
    for row in _history_rows(history):
        if row is None:
            table.add_row("…", "…", *["…" for _ in columns])
        else:
            table.add_row(_fmt(row.get("epoch")), _fmt(row.get("phase")),
                          *[duration_text(row.get(c)) if _is_seconds(c) else _fmt(row.get(c)) for c in columns])
    return table


def _config_table(config: dict[str, Any], overrides: dict[str, Any]) -> Table:
    """Every configuration key (nested keys dotted) and its value; keys set by ``--set`` marked ``*``."""
    overridden = set(_flatten(overrides)) | set(overrides)
    table = Table(title="configuration", title_justify="left",
                  caption="* set by --set" if overridden else None, caption_justify="left")
    table.add_column("key")
    table.add_column("value")
    for key, value in sorted(_flatten(config).items()):
        mark = " *" if key in overridden else ""
        table.add_row(f"{key}{mark}", json.dumps(value) if isinstance(value, (list, dict)) else _fmt(value))
    return table


def blackbox_summary(blackbox: dict[str, Any]) -> str:
    """One line on a black-box search's evaluations (``methods/blackbox.py``'s ``record_info``): how many, how they were
    evaluated, how many were stopped early, by how many trainers, and their simulated cost where it has one."""
    evaluations = blackbox["evaluations"]
    line = (f"black-box search ({blackbox.get('searcher')}): {count_text(len(evaluations))} evaluations, "
            f"{blackbox.get('evaluation')}")
    if blackbox.get("device_seconds") is not None:
        fidelities = sorted({e.get("fidelity") for e in evaluations if isinstance(e, dict)}, key=str)
        line += (f"; budgets {', '.join(map(str, fidelities))} epochs; {blackbox.get('stopped_early', 0)} stopped "
                 f"early; {blackbox.get('workers', 1)} side by side")
    if blackbox.get("simulated_cost"):
        line += f"; simulated cost: {blackbox['simulated_cost']}"
    return line


def show_record(record: dict[str, Any], console: Console) -> None:
    """Print a readable view of one record: identity, genotype, metrics, history and configuration."""
    ident = " · ".join(f"{k} {record.get(k, NULL)}" for k in IDENTITY_KEYS)
    console.print(Text(ident, style="bold"))
    details = [f"{k}: {record[k]}" for k in ("experiment", "config_hash", "device", "harness_version",
                                             "finished_at", "_path") if record.get(k) not in (None, "")]
    if details:
        console.print(Text("  ".join(details), style="dim"))
    if isinstance(record.get("environment"), dict) and environment_summary(record["environment"]):
        console.print(Text(f"environment: {environment_summary(record['environment'])}", style="dim"))

    genotype = record.get("genotype")
    if genotype not in (None, ""):
        console.print(Text("genotype", style="bold"))
        for line in genotype_lines(str(genotype)):
            console.print(Text(f"  {line}"))
    bench = record.get("benchmark_info")
    if isinstance(bench, dict):
        table = bench.get("table") or {}
        console.print(Text(f"benchmark index {bench.get('index')} (table {table.get('path')}, "
                           f"source {table.get('source')})", style="dim"))
    if record.get("test_acc_source"):
        console.print(Text(f"test accuracy: {record['test_acc_source']}", style="dim"))
    queried = queried_figure(record, {})
    if queried is not None:  # no supernet, nothing trained: say whose validation figure the search read
        console.print(Text(f"search: {count_text(queried[0])} queries of {queried[1]}, the best cell kept; no "
                           "supernet, nothing trained", style="dim"))
    if isinstance(record.get("split"), dict):
        console.print(Text(f"search split: {split_summary(record['split'])}", style="dim"))
    blackbox = record.get("blackbox")
    if isinstance(blackbox, dict) and isinstance(blackbox.get("evaluations"), list):
        console.print(Text(blackbox_summary(blackbox), style="dim"))

    console.print(_metrics_table(record, queried=queried is not None))
    history = record.get("history") or []
    if isinstance(history, list) and history:
        title = f"history ({len(history)} epochs; search: benchmark queries)" if queried is not None else None
        console.print(_history_table(history, title))
    config = record.get("config")
    if isinstance(config, dict) and config:
        console.print(_config_table(config, record.get("overrides") or {}))
