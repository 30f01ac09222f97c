"""Command line: ``python -m harness {run,study,report,list,leaderboard,show,ls,config,nb201,published}``.

A user's mistake is one line on stderr and exit status 2; nothing is written before the input is known
to be good.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from harness.console import make_console
from harness.core.config import BASELINE_METHOD, MAX_SEEDS, check_count
from harness.core.errors import UserError
from harness.core.storage import location
from harness.interrupts import handle_sigterm, interrupted

# Ray reads these at import time: set them before anything imports ray. Ray Tune's own loggers stay on: every
# trial folder under <experiment>/tune/ has result.json, progress.csv, params.json and TensorBoard's events.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_CHDIR_TO_TRIAL_DIR": "0",
           "RAY_AIR_NEW_OUTPUT": "0",
           "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100000"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage on two)
        raise UserError(f"{message} (see '{self.prog} --help')")


SEEDS_FIX = "run the seeds as several experiments (--seed-list), or fewer"


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip() != ""]
    except ValueError:
        raise UserError(f"--seed-list '{text[:100]}': expected comma-separated integers, e.g. 3,7") from None
    if not seeds:
        raise UserError("--seed-list is empty; expected comma-separated integers, e.g. 3,7")
    check_count("--seed-list", len(seeds), MAX_SEEDS, SEEDS_FIX)
    return seeds


# --callback NAME: Ray Tune's logger of that service, the package it needs and the extra that installs it.
CALLBACKS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}
CALLBACK_HELP = ("also log trials to mlflow (--mlflow-uri; default: a file store in the experiment folder) or wandb "
                 "(offline without WANDB_API_KEY); repeatable")
NO_SHIP_HELP = ("with --address: do not ship the harness's code to the cluster's workers through Ray's runtime_env "
                "(the cluster's image has it installed)")
DATA_DIR_HELP = ("the data folder: CIFAR's python batches (downloaded there when missing) or its PNG copy in "
                 "class folders (train/<class>/*.png, test/...); ImageNet16 (default: $HARNESS_DATA_DIR or "
                 "~/.cache/nas-harness/data)")
OUT_HELP = ("output folder, or a URI of any storage pyarrow reaches: s3://bucket/prefix, gs://bucket/prefix, ... "
            "(credentials and endpoint from the environment, e.g. AWS_ENDPOINT_URL; default: results/)")
MLFLOW_URI_HELP = "MLflow tracking URI for --callback mlflow (default: file:<experiment folder>/mlruns)"
DRY_RUN_HELP = ("show the plan and the time estimate (a few steps measured here), then stop: no Ray, nothing written "
                "(on --address: whether the head answers, not its nodes)")
YES_HELP = "run the paper budget without a GPU without asking (off a terminal it is refused without --yes)"
COLUMNS_HELP = ("the terminal leaderboard's columns, in order, e.g. method,dataset,test_acc,search,p (any "
                "leaderboard.csv column too; the files keep every column)")


def _callbacks(args: argparse.Namespace) -> tuple[list[str] | None, str | None]:
    """The ``--callback`` names (once each; None: not given) and ``--mlflow-uri``; a logger whose package is
    missing is refused here, before anything runs."""
    import importlib.util

    names = list(dict.fromkeys(args.callback)) if args.callback else None
    for name in names or []:
        package, extra = CALLBACKS[name]
        if importlib.util.find_spec(package) is None:
            raise UserError(f"--callback {name} needs the '{package}' package, which is not installed; install it "
                            f"with: pip install 'nas-harness[{extra}]' (or pip install {package})")
    if args.mlflow_uri is not None and "mlflow" not in (names or []) and not args.resume:
        raise UserError("--mlflow-uri is for --callback mlflow; add --callback mlflow")
    return names, args.mlflow_uri


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness",
                     description="Run NAS methods side by side under one protocol as Ray Tune trials.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run (or resume) an experiment: one trial per seed")
    run.add_argument("--method", help="search method (see 'list'); a,b,c: a one-space study of those methods")
    run.add_argument("--space", help="search space (see 'list')")
    run.add_argument("--dataset", help="digits, cifar10, cifar100, imagenet16-120 or folder:PATH (see 'list'; "
                                       "default: cifar10)")
    run.add_argument("--budget", help="smoke (seconds on a CPU), small (minutes on a CPU), cpu (real 32×32 data "
                                      "on a CPU) or paper (the papers' settings, for GPUs; without one it asks "
                                      "first: --yes; default: paper)")
    seeds = run.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, help="run seeds 0..N-1 (default 1)")
    seeds.add_argument("--seed-list", help="explicit seeds, e.g. 3,7")
    run.add_argument("--out", default="results", type=location, help=OUT_HELP)
    run.add_argument("--name", help="experiment name (default: method-space-dataset-budget-time)")
    run.add_argument("--cpus-per-trial", type=int,
                     help="CPUs (torch threads) per trial (default: 1 on CPU; cores / GPUs with GPUs)")
    run.add_argument("--gpus-per-trial", type=float, help="GPUs per trial (default: 1 with CUDA, else 0)")
    run.add_argument("--max-concurrent", type=int, help="at most this many trials at once")
    run.add_argument("--max-failures", type=int,
                     help="retries of a crashed trial from its last checkpoint (default 2)")
    run.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                     help="Ray cluster address ('auto' on a 'ray up' cluster; default: a local Ray)")
    run.add_argument("--data-dir", help=DATA_DIR_HELP)
    run.add_argument("--resume", action="store_true",
                     help="continue the experiment --name in --out: run every seed without a valid record "
                          "(options that change what trials compute are refused; more seeds are added)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a configuration key (see 'config'); repeatable")
    run.add_argument("--callback", action="append", choices=sorted(CALLBACKS), help=CALLBACK_HELP)
    run.add_argument("--no-ship-code", action="store_true", help=NO_SHIP_HELP)
    run.add_argument("--mlflow-uri", help=MLFLOW_URI_HELP)
    run.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    run.add_argument("--yes", action="store_true", help=YES_HELP)
    run.add_argument("--columns", metavar="A,B,C", help=f"at the end, {COLUMNS_HELP}")

    study = sub.add_parser("study", help="studies: methods and variants × spaces × datasets × seeds in one command")
    study_sub = study.add_subparsers(dest="study_command", required=True, parser_class=_Parser)
    srun = study_sub.add_parser("run", help="run (or --resume) the study of a TOML file (examples: studies/)")
    srun.add_argument("file", type=Path)
    srun.add_argument("--out", default="results", type=location, help=OUT_HELP)
    srun.add_argument("--name", help="the study's folder name (default: the file's 'name', else its stem)")
    srun.add_argument("--resume", action="store_true", help="continue the study: run every trial without a record")
    srun.add_argument("--cpus-per-trial", type=int, help="CPU threads per trial (default: 1 on a CPU)")
    srun.add_argument("--gpus-per-trial", type=float, help="GPUs per trial (default: 1 with CUDA, else 0)")
    srun.add_argument("--max-concurrent", type=int, help="at most this many trials at once")
    srun.add_argument("--max-failures", type=int, help="retries of a failed trial (default 2)")
    srun.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster address")
    srun.add_argument("--data-dir", help=DATA_DIR_HELP)
    srun.add_argument("--callback", action="append", choices=sorted(CALLBACKS), help=CALLBACK_HELP)
    srun.add_argument("--no-ship-code", action="store_true", help=NO_SHIP_HELP)
    srun.add_argument("--mlflow-uri", help=MLFLOW_URI_HELP)
    srun.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    srun.add_argument("--yes", action="store_true", help=YES_HELP)
    srun.add_argument("--columns", metavar="A,B,C", help=f"at the end, {COLUMNS_HELP}")

    report = sub.add_parser("report", help="the comparison report (HTML, Markdown, CSVs, plots) of every record "
                                           "under DIR, written to DIR/report/")
    report.add_argument("dir", type=location)
    report.add_argument("--baseline", default=BASELINE_METHOD, help="the method the others are tested against "
                                                                      f"(default: {BASELINE_METHOD})")
    report.add_argument("--latex", action="store_true",
                        help="also print the LaTeX leaderboard tables (booktabs; always written as "
                             "DIR/report/leaderboard.tex)")

    sub.add_parser("list", help="methods, spaces, datasets, budgets and the method × space matrix")

    board = sub.add_parser("leaderboard", help="aggregate every record under DIR into a leaderboard")
    board.add_argument("dir", nargs="?", default="results", type=location)
    board.add_argument("--optimum", action="store_true",
                       help="add the benchmark optimum as a reference row (spaces with a table: nb201)")
    board.add_argument("--columns", metavar="A,B,C", help=COLUMNS_HELP)

    show = sub.add_parser("show", help="one trial record, readable; or an experiment's or a study's folder: its "
                                       "trials with their key figures")
    show.add_argument("record", type=location, metavar="RECORD|FOLDER")

    ls = sub.add_parser("ls", help="the experiments and studies under DIR: what they run, seeds done, running now, "
                                   "last change")
    ls.add_argument("dir", nargs="?", default="results", type=location,
                    help="a results folder, a study's or an experiment's (default: results)")

    nb201 = sub.add_parser("nb201", help="NAS-Bench-201 tables: import the official file, query, optimum")
    nb201_sub = nb201.add_subparsers(dest="nb201_command", required=True, parser_class=_Parser)
    imp = nb201_sub.add_parser("import", help="convert the official benchmark file (v1.0/v1.1 .pth) or the merged "
                                              "CSV into a compact table for --set nb201_table=PATH")
    imp.add_argument("path", type=Path)
    imp.add_argument("--out", type=Path, help="the table to write (default: ./<file name>.nb201.npz)")
    table_help = "'default' (bundled) or a table made by 'nb201 import'"
    query = nb201_sub.add_parser("query", help="an architecture's index and figures")
    query.add_argument("arch", help="official architecture string (quote it) or index 0..15624")
    query.add_argument("--table", default="default", help=table_help)
    best = nb201_sub.add_parser("best", help="the best architecture for a dataset (the 'Optimal' row)")
    best.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or imagenet16-120")
    best.add_argument("--metric", default="test", help="test or valid (cifar10 valid: the cifar10-valid setting)")
    best.add_argument("--table", default="default", help=table_help)
    info = nb201_sub.add_parser("info", help="a table's columns and provenance")
    info.add_argument("--table", default="default", help=table_help)

    published = sub.add_parser("published", help="the papers' published figures the leaderboard and the report set "
                                                 "beside measured rows, with their sources and budgets")
    published.add_argument("--method", help="only this method's rows (e.g. darts, gdas, agnas; rsps, optimum)")
    published.add_argument("--space", help="only this space's rows: darts, hetero, nb201 or proxyless")
    published.add_argument("--dataset", help="only the rows measured or searched on this dataset: cifar10, cifar100, "
                                             "imagenet16-120 or imagenet")

    config = sub.add_parser("config", help="the resolved configuration: every key --set accepts")
    config.add_argument("--method", required=True)
    config.add_argument("--space", required=True)
    config.add_argument("--budget", default="paper")
    config.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from harness.experiment import RunRequest, run

    if args.seeds is not None and args.seeds < 1:
        raise UserError(f"--seeds must be at least 1 (got {args.seeds})")
    if args.seeds is not None:  # before the list is made
        check_count("--seeds", args.seeds, MAX_SEEDS, SEEDS_FIX)
    seeds = _seed_list(args.seed_list) if args.seed_list is not None else (
        list(range(args.seeds)) if args.seeds is not None else None)
    if args.method and "," in args.method:  # the shorthand of a one-space study (study_request checks --callback)
        return cmd_run_methods(args, seeds, console)
    req = RunRequest(**run_options(args), name=args.name, resume=args.resume, method=args.method, space=args.space,
                     dataset=args.dataset, budget=args.budget, seeds=seeds, overrides=args.overrides)
    return run(req, console)


def cmd_run_methods(args: argparse.Namespace, seeds: list[int] | None, console: Console) -> int:
    """``run --method a,b,c``: the one-space study of those methods (the same dataset, budget, seeds and --set)."""
    from harness.experiment import DEFAULT_BUDGET, DEFAULT_DATASET, default_name, run_study
    from harness.study import one_space_study

    if args.resume:
        raise UserError("--resume takes the study's --name, not --method (python -m harness run --resume --name N)")
    methods = [m.strip() for m in args.method.split(",")]
    if not all(methods) or not args.space:
        raise UserError(f"--method '{args.method}': give comma-separated method names and one --space")
    dataset, budget = args.dataset or DEFAULT_DATASET, args.budget or DEFAULT_BUDGET
    name = args.name or default_name("+".join(methods), args.space, dataset, budget)
    study = one_space_study(methods, args.space, dataset, budget, seeds or [0], args.overrides, name)
    return run_study(study_request(args, file=None, study=study, name=name, resume=False), console)


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options ``run`` and ``study run`` share (``RunOptions``: where the results go, how trials run and the
    end-of-run leaderboard's ``--columns``), but the name and ``--resume``."""
    from harness.leaderboard import parse_columns

    callbacks, mlflow_uri = _callbacks(args)
    columns = parse_columns(args.columns)  # an unknown name: one line, before anything runs or is written
    return {"out": args.out, "cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": args.gpus_per_trial,
            "max_concurrent": args.max_concurrent, "max_failures": args.max_failures, "address": args.address,
            "data_dir": args.data_dir, "callbacks": callbacks, "mlflow_uri": mlflow_uri,
            "ship_code": not args.no_ship_code, "dry_run": args.dry_run, "yes": args.yes, "columns": columns}


def study_request(args: argparse.Namespace, **what: Any) -> Any:
    """The ``StudyRequest`` of ``what`` (file or study, name, resume) with how its trials run (``run_options``)."""
    from harness.experiment import StudyRequest

    return StudyRequest(**what, **run_options(args))


def cmd_study(args: argparse.Namespace, console: Console) -> int:
    from harness.experiment import run_study

    return run_study(study_request(args, file=args.file, study=None, name=args.name, resume=args.resume), console)


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from harness.report import write_report

    written = write_report(args.dir, baseline=args.baseline)
    if args.latex:  # as it is: a wrapped line would break a TeX comment
        console.out(written["latex"].read_text(encoding="utf-8"), highlight=False)
    console.print(f"report: {written['html']}\nmarkdown: {written['markdown']}\nlatex: {written['latex']}\n"
                  f"{len(written['plots'])} plots and {len(written['csvs'])} tables in {written['html'].parent}")
    return 0


def cmd_list(console: Console) -> int:
    from harness.core.config import BUDGET_HELP
    from harness.core.data import DATASETS
    from harness.core.registry import all_methods, all_spaces

    methods, spaces = all_methods(), all_spaces()
    for title, items in (("methods", {k: v.description for k, v in methods.items()}),
                         ("spaces", {k: v.description for k, v in spaces.items()}),
                         ("datasets", DATASETS), ("budgets", BUDGET_HELP)):
        table = Table(title=title, show_header=False)
        for name, text in items.items():
            table.add_row(name, text)
        console.print(table)
    for table in compatibility_tables():
        console.print(table)
    return 0


def compatibility_tables() -> list[Table]:
    """``list``'s view of the computed method × space matrix: the capabilities and the spaces offering each, the
    matrix with each method's needs, and every pair that does not run with its reason (``compatible``)."""
    from harness.core.registry import all_methods, all_spaces, compatible
    from spaces.base import FEATURES

    methods, spaces = all_methods(), all_spaces()
    features = Table(title="capabilities (a space offers, a method needs)")
    for col in ("capability", "meaning", "spaces"):
        features.add_column(col)
    for feature, meaning in FEATURES.items():
        features.add_row(feature, meaning, ", ".join(s for s, cls in spaces.items() if feature in cls.features))
    verdicts = {(m, s): compatible(m, s) for m in methods for s in spaces}
    return [features, *_matrix_tables(methods, list(spaces), verdicts)]


def _matrix_tables(methods: dict[str, Any], spaces: list[str], verdicts: dict[tuple[str, str], tuple[bool, str]]
                   ) -> list[Table]:
    """The matrix of ``verdicts`` (``compatible`` of every pair) with each method's needs, and the refused pairs."""
    matrix = Table(title="method × space (✓ = runs; · = see below)")
    for col in ("method", *spaces):
        matrix.add_column(col, justify="left" if col == "method" else "center")
    matrix.add_column("needs")
    for name, cls in methods.items():
        matrix.add_row(name, *("✓" if verdicts[name, s][0] else "·" for s in spaces), ", ".join(sorted(cls.needs)))
    excluded = Table(title="pairs that do not run, and why")
    for col in ("method", "space", "reason"):
        excluded.add_column(col)
    for (method, space), (ok, reason) in verdicts.items():
        if not ok:
            excluded.add_row(method, space, reason)
    return [matrix, excluded]


def cmd_config(args: argparse.Namespace, console: Console) -> int:
    from harness.core.config import declarations, parse_overrides, resolve
    from harness.core.registry import check_pair, get_method, get_space

    check_pair(args.method, args.space)
    method, space = get_method(args.method), get_space(args.space)
    resolved = resolve(method, space, args.budget, parse_overrides(args.overrides))
    keys = declarations(method, space)
    table = Table(title=f"configuration of {args.method} on {args.space}, budget {args.budget}")
    for col in ("key", "value", "source", "valid values", "meaning"):
        table.add_column(col)
    for key in sorted(resolved.values):
        table.add_row(key, repr(resolved.values[key]), resolved.sources[key], keys[key].describe(), keys[key].help)
    console.print(table)
    return 0


def cmd_leaderboard(args: argparse.Namespace, console: Console) -> int:
    from harness.core.records import load_records
    from harness.leaderboard import build_leaderboard, leaderboard_table, parse_columns, view_width, write_leaderboard

    records = load_records(args.dir)
    if not records:
        raise UserError(f"no trial records under '{args.dir}' (looked for */trials/*.json)")
    board = build_leaderboard(records, reference=args.optimum)
    columns = parse_columns(args.columns, board)  # an unknown name: one line, before anything is written
    csv_path, md_path = write_leaderboard(board, args.dir)
    console.print(leaderboard_table(board, f"leaderboard of {args.dir} ({len(records)} records)",
                                    view_width(console), columns))
    console.print(f"written: {csv_path}, {md_path}")
    return 0


def _figures_table(table, index: int, title: str) -> Table:
    from harness.core.benchmarks.nb201 import COLUMN_HELP

    out = Table(title=title)
    for col in ("figure", "value", "meaning"):
        out.add_column(col, justify="right" if col == "value" else "left")
    for column, value in table.row(index).items():
        out.add_row(column, "—" if value is None else f"{value:.2f}", COLUMN_HELP.get(column, ""))
    return out


def cmd_nb201(args: argparse.Namespace, console: Console) -> int:
    from harness.core.benchmarks import nb201
    from harness.core.benchmarks.nb201_arch import parse_arch
    from harness.core.records import check_writable_folder

    if args.nb201_command == "import":
        source = args.path
        out = args.out or Path(f"{source.stem}.nb201.npz")
        if out.is_dir():
            raise UserError(f"--out '{out}' is a folder; give the file to write, e.g. {out / 'nb201.npz'}")
        check_writable_folder(out.parent, "the folder of --out")  # before a conversion of minutes
        if source.is_file():
            console.print(nb201.import_memory_note(source))
        table = nb201.import_file(source)
        table.save(out)
        known = int(np.isfinite(table.values).any(axis=1).sum())
        console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {known} of {len(table)} architectures with "
                      f"figures, columns {', '.join(table.columns)}")
        console.print(f"use it with: --set nb201_table={out.resolve()}")
        return 0
    table = nb201.load_table(args.table)
    if args.nb201_command == "query":
        text = args.arch.strip()
        if text.isdigit():
            index = int(text)
            if index >= len(table):
                raise UserError(f"index {index} is outside 0..{len(table) - 1}")
        else:
            index = table.index_of(parse_arch(text))
        console.print(f"index {index}: {table.arch_str(index)}")
        console.print(_figures_table(table, index, f"NAS-Bench-201 architecture {index}"))
        return 0
    if args.nb201_command == "best":
        column = nb201.metric_column(args.dataset, args.metric)
        if not table.has(column):
            raise UserError(f"the table '{args.table}' has no '{column}' figures; import the official benchmark file "
                            "for them ('python -m harness nb201 import FILE')")
        index = table.best(column)
        console.print(f"best {args.dataset} {args.metric} accuracy: {table.row(index)[column]:.2f} "
                      f"(index {index}: {table.arch_str(index)})")
        console.print(_figures_table(table, index, f"NAS-Bench-201 architecture {index}"))
        optimum = Table(title="optimum of each figure over all architectures (AGNAS Table 3, 'Optimal')")
        optimum.add_column("figure")
        optimum.add_column("best", justify="right")
        for name, value in table.optimum().items():
            optimum.add_row(name, f"{value:.2f}")
        console.print(optimum)
        return 0
    console.print(f"table {table.path}")
    for key in ("format", "source", "source_kind", "source_sha256", "created", "harness_version", "notes"):
        console.print(f"  {key}: {table.meta.get(key)}")
    cols = Table(title="columns")
    cols.add_column("column")
    cols.add_column("architectures with a figure", justify="right")
    cols.add_column("origin")
    for column in table.columns:
        cols.add_row(column, str(int(np.isfinite(table.column(column)).sum())), table.meta["columns"].get(column, ""))
    console.print(cols)
    return 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    from harness.core.records import read_record, show_record
    from harness.listing import show_folder

    if args.record.is_dir():
        return show_folder(args.record, console)
    show_record(read_record(args.record), console)
    return 0


def cmd_ls(args: argparse.Namespace, console: Console) -> int:
    from harness.listing import print_listing

    return print_listing(args.dir, console)


def cmd_published(args: argparse.Namespace, console: Console) -> int:
    from harness.listing import print_published

    return print_published(console, args.method, args.space, args.dataset)


def main(argv: list[str] | None = None) -> int:
    handle_sigterm()  # first: SIGTERM ends a command like Ctrl-C: one line, exit 130, a resume hint for a run
    try:
        for key, value in RAY_ENV.items():
            os.environ.setdefault(key, value)
        console = make_console()
        args = build_parser().parse_args(argv)
        if args.command == "run":
            return cmd_run(args, console)
        if args.command == "study":
            return cmd_study(args, console)
        if args.command == "report":
            return cmd_report(args, console)
        if args.command == "list":
            return cmd_list(console)
        if args.command == "config":
            return cmd_config(args, console)
        if args.command == "leaderboard":
            return cmd_leaderboard(args, console)
        if args.command == "nb201":
            return cmd_nb201(args, console)
        if args.command == "ls":
            return cmd_ls(args, console)
        if args.command == "published":
            return cmd_published(args, console)
        return cmd_show(args, console)
    except UserError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted()


if __name__ == "__main__":
    sys.exit(main())
