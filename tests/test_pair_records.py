"""``tools/pair_records.py --compare`` on crafted baseline folders: the environment's differences come first, each
once with the pairs it concerns, and are never counted among a record's differences."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from test_environment import ENV

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("pair_records", ROOT / "tools" / "pair_records.py")
pair_records = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pair_records)

DARTS, GDAS, RANDOM = ("darts", "nb201"), ("gdas", "nb201"), ("random", "nb201")


def kept(test_acc: float = 90.0, environment: dict | None = None, **extra) -> dict:
    """What ``run_pair`` keeps of a trial."""
    fields = dict.fromkeys(pair_records.KEPT)
    return {**fields, "genotype": "|nor_conv_3x3~0|", "test_acc": test_acc, "train_losses": [2.3, 2.1],
            "config_hash": "abc", "wall_seconds": 1.5, "environment": dict(environment or ENV), **extra}


def baseline(folder: Path, files: dict[tuple[str, str], dict]) -> Path:
    folder.mkdir()
    for pair, data in files.items():
        (folder / f"{pair[0]}-{pair[1]}.json").write_text(json.dumps(data))
    return folder


def test_the_same_environment_and_records_are_identical(tmp_path):
    folder = baseline(tmp_path / "b", {DARTS: kept(), GDAS: kept()})
    lines, status = pair_records.compare({DARTS: kept(), GDAS: kept()}, folder)
    summary = pair_records.environment_summary(ENV)
    assert lines == [f"environment: the baseline's (all 2 pairs): {summary}", "records:",
                     "darts/nb201      identical  (test 90.00 %; same config hash; 1.5 s)",
                     "gdas/nb201       identical  (test 90.00 %; same config hash; 1.5 s)"]
    assert status == 0


def test_environment_differences_come_first_and_are_no_record_difference(tmp_path):
    folder = baseline(tmp_path / "b", {DARTS: kept(), GDAS: kept(), RANDOM: kept()})
    now = {**ENV, "torch": "2.15.0+cu132", "cpu_capability": "AVX512", "cudnn": None}
    results = {DARTS: kept(environment=now), GDAS: kept(91.25, environment=now), RANDOM: kept(environment=now)}
    lines, status = pair_records.compare(results, folder)
    assert lines == ["environment: differs from the baseline's (all 3 pairs):",
                     "  cpu_capability  AVX2 → AVX512",
                     "  torch           2.14.1+cu130 → 2.15.0+cu132",
                     "  cudnn           92400 → (none)",
                     "records:",
                     "darts/nb201      identical  (test 90.00 %; same config hash; 1.5 s)",
                     "gdas/nb201       DIFFERS in test_acc  (test 91.25 %; same config hash; 1.5 s)",
                     "random/nb201     identical  (test 90.00 %; same config hash; 1.5 s)"]
    assert status == 1  # gdas's record differs; the environment alone would not fail


def test_differences_of_some_pairs_name_them(tmp_path):
    folder = baseline(tmp_path / "b", {DARTS: kept(), GDAS: kept(environment={**ENV, "cpu": "Intel Xeon"})})
    lines, status = pair_records.compare({DARTS: kept(), GDAS: kept()}, folder)
    assert lines[:3] == [f"environment: the baseline's (darts/nb201): {pair_records.environment_summary(ENV)}",
                         "environment: differs from the baseline's (gdas/nb201):",
                         "  cpu             Intel Xeon → AMD EPYC 7B13"]
    assert lines[3:] == ["records:", "darts/nb201      identical  (test 90.00 %; same config hash; 1.5 s)",
                         "gdas/nb201       identical  (test 90.00 %; same config hash; 1.5 s)"]
    assert status == 0


def test_a_baseline_without_environment_or_without_a_file(tmp_path):
    old = kept(train_losses=[2.3, 2.2])
    del old["environment"]
    folder = baseline(tmp_path / "b", {DARTS: old})
    lines, status = pair_records.compare({DARTS: kept(), GDAS: kept()}, folder)
    assert lines == ["environment: the baseline does not say its environment (darts/nb201; written before records "
                     f"carried one); this run: {pair_records.environment_summary(ENV)}", "records:",
                     "darts/nb201      DIFFERS in train_losses  (test 90.00 %; same config hash; 1.5 s)",
                     f"gdas/nb201       no baseline ({folder / 'gdas-nb201.json'})"]
    assert status == 1
