"""The experiment's specification: what was asked, the resolved configuration and where the experiment lies.

``ExperimentSpec`` replaces the untyped dict the driver and every trial passed around. It is written to
``<experiment>/experiment.json`` (``to_json``), handed to each trial as JSON text (``harness.trial.job_text``) and
read back from every format the harness ever wrote (``from_json``):

- the first format (November 2026) has no ``split``, ``callbacks``, ``mlflow_uri``, ``ship_code``, ``cell`` or
  ``study``: they take the values that code behaved as (no split shown, no extra loggers, code shipped);
- every format stores the folder twice, as ``out`` + ``experiment`` and as ``records_dir`` (``<folder>/trials``).
  The spec keeps the folder once (``folder``); ``to_json`` still writes all three keys, so that what a user, a
  report or an older harness reads from ``experiment.json`` stays there. ``records_dir`` is never read back: a
  folder's records are always its ``trials/``, which is what every harness wrote there.

The spec is frozen: a resume makes a new one (``dataclasses.replace``) with the seeds it adds, the scheduling
options of this run and the folder where ``--out`` points now. Freezing is shallow: ``config``, ``overrides`` and
``split`` are the plain dicts JSON gives (a trial stores ``config`` and ``overrides`` in its record unchanged).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import UserError, os_error_line
from harness.core.records import record_filename, write_record
from harness.core.storage import Remote, location, uri

SPEC_FILE = "experiment.json"
RECORDS_DIR = "trials"
CHECKPOINTS_DIR = "checkpoints"
TUNE_DIR = "tune"

# The keys every experiment.json the harness wrote has; a file without one of them is not an experiment's.
REQUIRED = ("method", "space", "dataset", "budget", "seeds", "experiment", "out", "config", "config_hash",
            "overrides", "cpus_per_trial", "gpus_per_trial", "max_concurrent", "max_failures", "address", "data_dir")
# The keys that are written only when they have a value (a study's cell; an experiment's split once measured).
OPTIONAL = ("created_at", "split", "cell", "study")


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment (a ``run``, or one cell of a study): its pair, budget, seeds and resolved configuration
    (what its trials compute), how its trials are scheduled, and its folder (local or on an object store)."""

    method: str
    space: str
    dataset: str
    budget: str
    seeds: tuple[int, ...]
    folder: Path | Remote  # <out>/<experiment>, absolute
    config: dict[str, Any]
    config_hash: str
    overrides: dict[str, Any]
    cpus_per_trial: int
    gpus_per_trial: float  # as given: 0 and 1 stay integers (the plan prints them)
    max_concurrent: int | None
    max_failures: int
    address: str | None
    data_dir: str | None
    config_sources: dict[str, str] = field(default_factory=dict)
    callbacks: tuple[str, ...] = ()  # extra Ray Tune loggers (mlflow, wandb)
    mlflow_uri: str | None = None
    ship_code: bool = True
    created_at: str | None = None
    split: dict[str, Any] | None = None  # the search split (``Dataset.split_info``), once the data was loaded
    cell: str | None = None  # a study's cell: the method's or variant's name
    study: str | None = None  # a study's cell: the study's name

    # --- where things lie ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The experiment's name: its folder's."""
        return self.folder.name

    @property
    def out(self) -> Path | Remote:
        """The folder (``--out``) that holds the experiment."""
        return self.folder.parent

    @property
    def records_dir(self) -> Path | Remote:
        return self.folder / RECORDS_DIR

    @property
    def checkpoints_dir(self) -> Path | Remote:
        return self.folder / CHECKPOINTS_DIR

    @property
    def tune_dir(self) -> Path | Remote:
        """Ray Tune's own folder of a run of this experiment alone (a study's is the study's ``tune/``)."""
        return self.folder / TUNE_DIR

    @property
    def spec_file(self) -> Path | Remote:
        return self.folder / SPEC_FILE

    def record_path(self, seed: int) -> Path | Remote:
        return self.records_dir / record_filename(self.method, self.space, self.dataset, seed)

    def checkpoint_path(self, seed: int) -> Path | Remote:
        """``<experiment>/checkpoints/<trial>.pt``: the record's name with ``.pt``."""
        return self.checkpoints_dir / f"{self.record_path(seed).stem}.pt"

    def ids(self) -> dict[str, Any]:
        """What identifies the experiment's trials in every report to Ray Tune and in MLflow's parameters,
        with the cell in a study."""
        return {"experiment": self.name, "method": self.method, "space": self.space, "dataset": self.dataset,
                "budget": self.budget, "config_hash": self.config_hash, **({"cell": self.cell} if self.cell else {})}

    @property
    def bundles(self) -> int:
        """How many bundles of ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs each trial asks for
        (``SearchMethod.trial_bundles``: one, or a black-box search's ``bb_workers``)."""
        from harness.core.registry import get_method, get_space

        return get_method(self.method).trial_bundles(self.config, get_space(self.space)(self.config))

    @property
    def trains(self) -> bool:
        """Whether the trials train anything: not when the method only queries the space's benchmark
        (``benchmark_queries``: random search and the black-box methods on NAS-Bench-201) and the derived cell is
        looked up there too."""
        from harness.core.registry import get_method, get_space

        space = get_space(self.space)(self.config)
        return not (get_method(self.method).benchmark_queries and space.benchmark() is not None
                    and space.evaluates_by_lookup())

    def at(self, folder: Path | Remote) -> ExperimentSpec:
        """The same experiment where it lies now (a moved folder, a resume with another ``--out``)."""
        return dataclasses.replace(self, folder=folder)

    # --- JSON ------------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The dict of ``experiment.json``: every key a harness wrote there (``out``, ``experiment`` and
        ``records_dir`` say the folder), the optional ones only when they have a value."""
        data: dict[str, Any] = {
            "method": self.method, "space": self.space, "dataset": self.dataset, "budget": self.budget,
            "seeds": list(self.seeds), "experiment": self.name, "out": uri(self.out),
            "records_dir": uri(self.records_dir), "config": self.config, "config_sources": self.config_sources,
            "overrides": self.overrides, "config_hash": self.config_hash, "cpus_per_trial": self.cpus_per_trial,
            "gpus_per_trial": self.gpus_per_trial, "max_concurrent": self.max_concurrent,
            "max_failures": self.max_failures, "address": self.address, "data_dir": self.data_dir,
            "callbacks": list(self.callbacks), "mlflow_uri": self.mlflow_uri, "ship_code": self.ship_code,
        }
        for key in OPTIONAL:
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_json(cls, data: Any) -> ExperimentSpec:
        """The spec of an ``experiment.json`` dict of any format (module docstring), at the folder it names
        (``out``/``experiment``). ``ValueError`` names the keys missing (not an experiment's file)."""
        missing = [k for k in REQUIRED if not isinstance(data, dict) or k not in data]
        if missing:
            raise ValueError(", ".join(missing))
        return cls(
            method=data["method"], space=data["space"], dataset=data["dataset"], budget=data["budget"],
            seeds=tuple(data["seeds"]), folder=location(data["out"]) / data["experiment"], config=data["config"],
            config_hash=data["config_hash"], overrides=data["overrides"], cpus_per_trial=data["cpus_per_trial"],
            gpus_per_trial=data["gpus_per_trial"], max_concurrent=data["max_concurrent"],
            max_failures=data["max_failures"], address=data["address"], data_dir=data["data_dir"],
            config_sources=data.get("config_sources", {}), callbacks=tuple(data.get("callbacks") or ()),
            mlflow_uri=data.get("mlflow_uri"), ship_code=data.get("ship_code", True),
            **{key: data.get(key) for key in OPTIONAL},
        )

    def write(self) -> None:
        """Write ``experiment.json`` (atomically)."""
        write_record(self.spec_file, self.to_json())


def load_spec(out: Path | Remote, name: str | None) -> ExperimentSpec:
    """The spec stored in ``<out>/<name>/experiment.json`` (one line if there is none, or it is corrupt or not an
    experiment's); it names the folder it was made (or last resumed) in."""
    if not name:
        raise UserError("--resume needs the experiment's --name (and the same --out)")
    path = out / name / SPEC_FILE
    if not path.is_file():
        raise UserError(f"no experiment '{name}' in '{out}' to resume (missing {path})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"'{path}' is corrupt; cannot resume this experiment") from None
    except OSError as err:
        raise UserError(os_error_line("read", path, err)) from None
    try:
        return ExperimentSpec.from_json(data)
    except ValueError as err:
        raise UserError(f"'{path}' is not an experiment made by the harness (no {err}); cannot resume it") from None
