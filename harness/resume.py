"""Resuming an experiment or a study: its stored spec checked against what this resume asks, where its folder lies
now.

A resume runs every seed of the experiment that has no valid record of its setting (never finished, interrupted, or
its record deleted or corrupt) as a fresh Ray Tune trial that continues from the harness's own checkpoint — not by
restoring Ray Tune's pickled experiment state, which would run code from the results folder and point at the
folder's old absolute path. It runs where ``--out`` points now, so a moved experiment folder resumes in place. A
study resumes each of its cells as an experiment (``resumed_spec``), with the checks of its study file on top.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.checkpoints import load_checkpoint
from harness.core.config import parse_overrides, resolve
from harness.core.errors import UserError
from harness.core.registry import check_pair, get_method, get_space
from harness.core.storage import Remote
from harness.request import RunRequest, StudyRequest, check_run_options, check_seeds
from harness.spec import ExperimentSpec, load_spec
from harness.study import CELLS_DIR, STUDY_FILE, STUDY_SPEC, Study, parse_study
from harness.trial import finished_record

# What this run may change of an experiment, said in a note: how its trials are scheduled and logged.
SCHEDULING = (("--max-concurrent", "max_concurrent"), ("--max-failures", "max_failures"), ("--address", "address"),
              ("--callback", "callbacks"), ("--mlflow-uri", "mlflow_uri"))


def changed_overrides(spec: ExperimentSpec, overrides: list[str]) -> list[str]:
    """The keys on which the ``--set`` of ``overrides`` differ from the experiment's own (a resume keeps them)."""
    resolved = resolve(get_method(spec.method), get_space(spec.space), spec.budget, parse_overrides(overrides))
    return sorted(k for k in {*resolved.overrides, *spec.overrides}
                  if resolved.overrides.get(k) != spec.overrides.get(k))


def print_notes(console: Console, notes: list[str], what: str, made_in: Path | Remote | None,
                folder: Path | Remote) -> None:
    """The resume's notes, and where the experiment (or study: ``what``) was made if it continues elsewhere now."""
    if made_in is not None and made_in != folder:
        notes = [*notes, f"the {what} was made in {made_in}; it continues in {folder}"]
    for note in notes:
        console.print(f"resume: {note}")


def resume_spec(req: RunRequest, console: Console) -> ExperimentSpec:
    """The experiment's spec for this resume, where the folder now lies (``resumed_spec``); its notes printed."""
    spec, notes, made_in = resumed_spec(req)
    print_notes(console, notes, "experiment", made_in, spec.folder)
    return spec


def resumed_spec(req: RunRequest) -> tuple[ExperimentSpec, list[str], Path | Remote]:
    """The experiment's spec for this resume, where the folder now lies; the lines that say what changed; the folder
    the experiment was made in (or last resumed in).

    What a trial computes cannot change on a resume: a differing method, space, dataset, budget,
    ``--set``, data folder or threads/GPUs per trial (torch's results depend on them) is refused, naming
    the option. What is safe changes and is said: more seeds (the new ones join the experiment), and how
    trials are scheduled (``--max-concurrent``, ``--max-failures``, ``--address``) for this run.
    """
    check_run_options(req)
    spec = load_spec(req.out, req.name)
    check_pair(spec.method, spec.space)
    refuse_changes(req, spec)
    notes: list[str] = []
    changes: dict[str, Any] = {"seeds": added_seeds(req, spec, notes)}
    for option, key in SCHEDULING:
        value, had = getattr(req, key), getattr(spec, key)
        if key == "callbacks" and value is not None:
            value = tuple(value)
        if value is not None and value != had:
            notes.append(f"this run uses {option} {shown(value)} (before: {shown(had)})")
            changes[key] = value
    # where the folder lies now; how the code reaches a cluster is this run's choice
    resumed = dataclasses.replace(spec, folder=(req.out / req.name).absolute(), ship_code=req.ship_code, **changes)
    return resumed, notes, spec.folder


def shown(value: Any) -> Any:
    """An option's value as the notes have always shown it (the callbacks as a list)."""
    return list(value) if isinstance(value, tuple) else value


def refuse_changes(req: RunRequest, spec: ExperimentSpec) -> None:
    """One line if ``req`` asks for something that changes what the experiment's trials compute."""
    given = {"--method": (req.method, spec.method), "--space": (req.space, spec.space),
             "--dataset": (req.dataset, spec.dataset), "--budget": (req.budget, spec.budget),
             "--cpus-per-trial": (req.cpus_per_trial, spec.cpus_per_trial),
             "--gpus-per-trial": (req.gpus_per_trial, spec.gpus_per_trial),
             "--data-dir": (req.data_dir, spec.data_dir)}
    for option, (asked, had) in given.items():
        if asked is not None and asked != had:
            raise UserError(f"--resume with {option} {asked}, but experiment '{req.name}' has {had}; a resume "
                            "keeps what its trials compute (start a new --name to change it)")
    if req.overrides:
        changed = changed_overrides(spec, req.overrides)
        if changed:
            raise UserError(f"--resume with --set that differs from experiment '{req.name}' on "
                            f"{', '.join(changed)} (it has {spec.overrides or 'no overrides'}); a resume keeps "
                            "what its trials compute (start a new --name to change it)")


def added_seeds(req: RunRequest, spec: ExperimentSpec, notes: list[str]) -> tuple[int, ...]:
    """The experiment's seeds with those ``req`` adds (said in ``notes``); leaving one out is refused."""
    if req.seeds is None:
        return spec.seeds
    check_seeds(req.seeds)
    dropped = sorted(set(spec.seeds) - set(req.seeds))
    if dropped:
        raise UserError(f"--resume would leave out seeds {','.join(map(str, dropped))} of experiment "
                        f"'{req.name}'; a resume runs all its seeds (give more seeds to add some)")
    added = [s for s in req.seeds if s not in spec.seeds]
    if added:
        notes.append(f"adding seeds {','.join(map(str, added))} to the experiment")
    return (*spec.seeds, *added)


def missing_seeds(spec: ExperimentSpec) -> list[int]:
    """The seeds without a valid record of this setting: a resume runs exactly these."""
    return [s for s in spec.seeds if finished_record(spec, s) is None]


def check_checkpoints(spec: ExperimentSpec, seeds: list[int]) -> None:
    """Every checkpoint a resumed trial would continue from loads safely (refused before anything runs)."""
    for seed in seeds:
        path = spec.checkpoint_path(seed)
        if path.exists():
            load_checkpoint(path)


# --- studies ----------------------------------------------------------------------------------------------------
def load_study_specs(study_dir: Path | Remote) -> tuple[str, dict[tuple[str, str, str], str]]:
    """The stored study: the text of its file as it was last run, and the folder of each of its cells by (cell,
    space, dataset) (one line if they cannot be read). A study whose cells share a folder (made before cell folders
    carried a hash) is refused: one cell's records overwrote the other's."""
    path = study_dir / STUDY_SPEC
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        folders = [str(f) for f in stored["cells"]]
        cells = {(stored["specs"][f]["cell"], stored["specs"][f]["space"], stored["specs"][f]["dataset"]): f
                 for f in folders}
        text = (study_dir / STUDY_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"'{path}' (or its {STUDY_FILE}) is missing or corrupt; cannot resume this study") from None
    shared = sorted({f for f in folders if folders.count(f) > 1})
    if shared:
        raise UserError(f"study '{study_dir.name}' cannot be resumed: two of its cells share the folder "
                        f"'{CELLS_DIR}/{shared[0]}' (made by an older harness), so their records cannot be told apart; "
                        "run the study again under a new --name")
    return text, cells


def resume_study(given: Study | None, req: StudyRequest, study_dir: Path | Remote,
                 console: Console) -> tuple[Study, list[ExperimentSpec]]:
    """The study and its cells' specs for this resume, where the study's folder lies now: each cell is resumed as an
    experiment (``resumed_spec``: its checks, the options of this run, its folder where ``--out`` points now).

    The study file (``given``, else the one kept in the folder, which the user may have edited) must still describe
    the study's cells: a cell added or gone, or a cell's method, budget or ``--set`` changed, is refused; seeds it
    adds join every cell (said in one line); seeds it leaves out are refused."""
    text, folders = load_study_specs(study_dir)
    kept = study_dir / STUDY_FILE
    where = f"study file '{req.file}'" if given is not None else f"'{kept}'"
    study = given if given is not None else parse_study(text, str(kept), study_dir.name)
    check_study_file(study, folders, study_dir, where)
    specs, notes, made_in = [], [], None
    for (cell_name, space, dataset), folder in folders.items():
        run_req = RunRequest(**{**req.options(), "out": study_dir / CELLS_DIR, "name": folder, "resume": True},
                             method=None, space=None, dataset=None, budget=None, seeds=study.seeds, overrides=[])
        try:
            spec, cell_notes, cell_made_in = resumed_spec(run_req)
        except UserError as err:
            raise UserError(f"study '{study_dir.name}', {cell_name} on {space}/{dataset}: {err}") from None
        specs.append(dataclasses.replace(spec, cell=cell_name, study=study.name))
        notes += [n for n in cell_notes if n not in notes]
        made_in = cell_made_in.parent.parent  # <study>/cells/<cell>
    print_notes(console, notes, "study", made_in, study_dir)
    return study, specs


def check_study_file(study: Study, folders: dict[tuple[str, str, str], str], study_dir: Path | Remote,
                     where: str) -> None:
    """One line if ``study`` (read from ``where``) no longer describes the stored study's cells, or leaves out some
    of its seeds."""
    def refuse(problem: str) -> UserError:
        return UserError(f"{where} no longer describes study '{study_dir.name}' ({problem}); a resume keeps what its "
                         "trials compute: run the changed study under a new --name")

    asked = {(c.name, c.space, c.dataset): c for c in study.cells}
    for key in [*folders, *asked]:
        if (key in folders) != (key in asked):
            raise refuse(f"cell {key[0]} on {key[1]}/{key[2]} is {'gone' if key in folders else 'new'}")
    seeds: set[int] = set()
    for key, folder in folders.items():
        spec, cell = load_spec(study_dir / CELLS_DIR, folder), asked[key]
        seeds.update(spec.seeds)
        if (cell.method, study.budget) != (spec.method, spec.budget):
            raise refuse(f"cell {cell.name} on {cell.space}/{cell.dataset} was {spec.method} at budget "
                         f"{spec.budget}, the file says {cell.method} at budget {study.budget}")
        changed = changed_overrides(spec, cell.overrides)
        if changed:
            raise refuse(f"cell {cell.name} on {cell.space}/{cell.dataset} changes --set {', '.join(changed)}")
    dropped = sorted(seeds - set(study.seeds))
    if dropped:
        raise UserError(f"{where} leaves out seeds {','.join(map(str, dropped))} of study '{study_dir.name}'; a resume "
                        "runs all its seeds (list them in 'seeds', with more to add some)")
