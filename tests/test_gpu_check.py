"""``tools/gpu_check.py``: its shrunk form on the CPU (``--cpu-quick``) runs every row and writes its figures; a row
that fails or is not reached is said in one line and the check goes on; bad options are one line and exit status 2."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check  # its dataclasses look their module up
_spec.loader.exec_module(gpu_check)
Row, PASS, FAIL, SKIP = gpu_check.Row, gpu_check.PASS, gpu_check.FAIL, gpu_check.SKIP
CPU = torch.device("cpu")


def rows_of(path: Path) -> dict[tuple[str, str], dict]:
    return {(row["section"], row["name"]): row for row in json.loads(path.read_text())["rows"]}


@pytest.mark.slow  # four whole (tiny) trials, a few supernet steps and a short epoch: about 10 s
def test_the_shrunk_check_runs_every_row_but_sharing_and_writes_the_table_and_its_figures(tmp_path, capsys,
                                                                                           monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = tmp_path / "check.json"
    status = gpu_check.main(["--cpu-quick", "--only", "determinism,step,epoch,pairs", "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 0
    rows = rows_of(out)
    assert [name for section, name in rows if section == "pairs"] == ["darts/nb201", "gdas/nb201"]
    for pair in ("darts/nb201", "gdas/nb201"):
        row = rows["pairs", pair]
        assert row["status"] == PASS and row["figures"]["device"].startswith("cpu") and row["seconds"] > 0
        assert 0 <= row["figures"]["test_acc"] <= 100  # NB201's table: the derived cell's CIFAR-10 accuracy
    (determinism,) = [row for (section, _), row in rows.items() if section == "determinism"]
    assert determinism["status"] == PASS and determinism["figures"]["differing"] == []
    assert determinism["figures"]["compared"] == list(gpu_check.pair_records.COMPARED)
    assert determinism["figures"]["overrides"][-1] == "cudnn_benchmark=false"
    steps = [row for (section, _), row in rows.items() if section == "step"]
    assert [row["figures"]["layout"] for row in steps] == ["channels_last", "contiguous"]
    for row in steps:
        assert row["status"] == PASS and row["figures"]["seconds_per_step"] > 0 and row["figures"]["batch_size"] == 8
        assert row["figures"]["images_per_second"] == pytest.approx(8 / row["figures"]["seconds_per_step"])
    assert steps[1]["figures"]["ratio_to_channels_last"] == pytest.approx(
        steps[1]["figures"]["seconds_per_step"] / steps[0]["figures"]["seconds_per_step"])
    (epoch,) = [row for (section, _), row in rows.items() if section == "epoch"]
    assert epoch["status"] == PASS
    assert epoch["figures"]["steps"] == 2 and epoch["figures"]["weight_images"] == 128  # 256 images, batch 64
    assert epoch["figures"]["epoch_seconds"] > 0
    assert epoch["figures"]["paper_search_seconds"] == pytest.approx(50 * epoch["figures"]["epoch_seconds"])
    sharing = [row for (section, _), row in rows.items() if section == "sharing"]
    assert [row["name"] for row in sharing] == ["1 trial, 1 CPU each", "2 trials, 0.5 CPU each",
                                                "4 trials, 0.25 CPU each"]
    assert all(row["status"] == SKIP and row["reason"] == "not selected (--only)" for row in sharing)
    lines = printed.splitlines()
    assert lines[-2:] == ["6 passed, 0 failed, 3 skipped", f"written: {out}"]  # the path on one line, to copy
    assert max(len(line) for line in lines[:-1]) <= 80  # laid out for 80 columns, cells wrapped rather than cut
    for name in ("darts/nb201", "gdas/nb201", "channels_last", "contiguous", "1 trial, 1 CPU each"):
        assert name in printed


def test_every_configuration_of_the_gpu_check_resolves(tmp_path):
    """What the one call on a GPU builds, checked here: a key renamed since would otherwise be a FAIL there."""
    from harness.experiment import RunRequest, build_spec

    plan = gpu_check.GPU
    sets = {"pairs": plan.pair_sets, "determinism": (*plan.pair_sets, "cudnn_benchmark=false")}
    for (method, space), given in [*((pair, sets["pairs"]) for pair in gpu_check.pair_records.pairs()),
                                   (plan.determinism_pair, sets["determinism"])]:
        spec = build_spec(RunRequest(method=method, space=space, dataset="digits", budget="smoke", seeds=[0],
                                     overrides=list(given), out=tmp_path, name="x", resume=False))
        assert spec.config["train_limit"] == 256
    for method, space, order in (*plan.step_configs, plan.sharing_config):
        order_set = {"order": str(order)} if gpu_check.supernet_step.has_order(method, space) else {}
        gpu_check.resolve(gpu_check.get_method(method), gpu_check.get_space(space), "paper", order_set)
    cfg = gpu_check.resolve(gpu_check.get_method("darts"), gpu_check.get_space("nb201"), "paper",
                            {"order": "1", "train_limit": "0"}).values
    assert (cfg["search_batch_size"], cfg["search_channels"], cfg["search_layers"]) == (64, 16, 5)
    assert -(-plan.epoch_images // 2 // cfg["search_batch_size"]) == 391  # 25,000 images in batches of 64


def test_a_sharing_trial_waits_for_the_others_then_times_its_steps(tmp_path):
    """What each Ray task of a sharing row runs, here in-process and alone (one trial: the barrier is itself)."""
    result = gpu_check.sharing_trial(0, 1, str(tmp_path), "cpu", ("darts", "nb201", 1),
                                     list(gpu_check.QUICK.sharing_sets), 2, 0, [str(ROOT), str(ROOT / "tools")])
    assert result["steps"] == 2 and len(result["step_seconds"]) == 2 and result["batch_size"] == 16
    assert result["start"] <= result["end"] and (tmp_path / "ready-0").exists()


def test_a_sharing_row_sums_its_trials_and_times_the_window_they_ran_together():
    def trial(start: float, end: float, seconds_per_step: float, pid: int) -> dict:
        return {"batch_size": 64, "steps": 30, "seconds_per_step": seconds_per_step, "start": start, "end": end,
                "peak_mem_mib": 900.0, "peak_mem_kind": "cuda max_memory_allocated", "pid": pid,
                "cuda_visible_devices": "0"}

    figures = gpu_check.sharing_figures([trial(100.0, 103.2, 0.1, 11), trial(100.1, 104.0, 0.128, 12)],
                                        {"num_gpus": 0.5, "num_cpus": 1}, 21.5)
    assert figures["images_per_second_per_trial"] == pytest.approx([640.0, 500.0])
    assert figures["images_per_second_total"] == pytest.approx(1140.0)
    assert figures["window_seconds"] == pytest.approx(4.0) and figures["images_total"] == 2 * 30 * 64
    assert figures["images_per_second_window"] == pytest.approx(3840 / 4.0)
    assert (figures["trials"], figures["group_wall_seconds"], figures["pids"]) == (2, 21.5, [11, 12])


def test_trials_spread_over_several_gpus_did_not_share_one():
    on = [{"cuda_visible_devices": gpu} for gpu in ("0", "0", "1", "0")]
    assert gpu_check.not_one_gpu(on, torch.device("cuda")) == (
        "Ray gave the 4 trials different GPUs (0, 1), so they did not share one: run the check with "
        "CUDA_VISIBLE_DEVICES set to one GPU")
    assert gpu_check.not_one_gpu(on[:2], torch.device("cuda")) == ""
    assert gpu_check.not_one_gpu([{"cuda_visible_devices": ""}, {"cuda_visible_devices": None}], CPU) == ""


def test_the_barrier_lets_trials_go_together_and_names_the_missing_ones(tmp_path):
    passed = []
    threads = [threading.Thread(target=lambda i=i: (gpu_check.barrier(str(tmp_path), i, 2, 5.0), passed.append(i)))
               for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(passed) == [0, 1]
    alone = tmp_path / "alone"
    alone.mkdir()
    with pytest.raises(TimeoutError, match="only 1 of 3 trials were built within 0.05 s"):
        gpu_check.barrier(str(alone), 0, 3, 0.05)


def test_a_failing_row_is_one_line_and_the_rows_after_it_run():
    def broken():
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be ...")

    def failing():
        raise gpu_check.Failed("the two records differ in train_losses", {"differing": ["train_losses"]})

    rows = [Row("step", "a", broken), Row("determinism", "b", failing),
            Row("epoch", "c", lambda: ({"x": 1}, "fine")), Row("pairs", "d", lambda: ({}, "never"))]
    lines = []
    assert gpu_check.run_rows(rows, {"step", "determinism", "epoch"}, 60.0, CPU, 1, lines.append)
    assert [row.status for row in rows] == [FAIL, FAIL, PASS, SKIP]
    assert rows[0].reason == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert rows[1].reason == "the two records differ in train_losses"
    assert rows[1].figures == {"differing": ["train_losses"]}
    assert (rows[2].figures, rows[2].text, rows[3].reason) == ({"x": 1}, "fine", "not selected (--only)")
    assert all(row.seconds is not None for row in rows[:3]) and rows[3].seconds is None


def test_rows_are_not_started_after_the_timeout():
    clock = iter([0.0, 1.0, 9.0, 11.0])  # the start, then before each row
    rows = [Row("step", name, lambda: ({}, "ran")) for name in "abc"]
    lines = []
    gpu_check.run_rows(rows, {"step"}, 10.0, CPU, 1, lines.append, clock=lambda: next(clock))
    assert [row.status for row in rows] == [PASS, PASS, SKIP]
    assert rows[2].reason == "--timeout 10 s reached before it started"
    assert "step c: SKIPPED (--timeout 10 s reached before it started)" in lines


def test_the_rows_left_by_the_timeout_get_the_command_that_runs_them():
    late = "--timeout 450 s reached before it started"

    def rows(*statuses: str) -> list[Row]:
        names = [("determinism", "darts/darts, twice"), ("sharing", "4 trials"), ("pairs", "darts/nb201"),
                 ("pairs", "gdas/nb201"), ("pairs", "nos/hetero")]
        return [Row(section, name, None, status, None, "", late if status == SKIP else "")
                for (section, name), status in zip(names, statuses)]

    assert gpu_check.rerun_command(rows(PASS, PASS, PASS, SKIP, SKIP), False) == (
        "python tools/gpu_check.py --only pairs --pairs gdas/nb201,nos/hetero")
    assert gpu_check.rerun_command(rows(PASS, SKIP, SKIP, SKIP, SKIP), True) == (
        "python tools/gpu_check.py --cpu-quick --only sharing,pairs")  # every pair: no --pairs
    not_selected = rows(SKIP, PASS, PASS, PASS, SKIP)
    not_selected[0].reason = gpu_check.NOT_SELECTED  # not left by the timeout: not in the command
    assert gpu_check.rerun_command(not_selected, False) == "python tools/gpu_check.py --only pairs --pairs nos/hetero"


def test_an_interrupt_stops_the_check_and_leaves_the_table_of_what_ran():
    def interrupted():
        raise KeyboardInterrupt

    rows = [Row("step", "a", lambda: ({}, "ran")), Row("step", "b", interrupted),
            Row("epoch", "c", lambda: ({}, "never"))]
    assert not gpu_check.run_rows(rows, {"step", "epoch"}, 60.0, CPU, 1, lambda line: None)
    assert [(row.status, row.reason) for row in rows] == [(PASS, ""), (SKIP, "interrupted"), (SKIP, "interrupted")]


def test_one_line_of_an_error():
    assert gpu_check.one_line(ValueError("first\n  second")) == "ValueError: first"
    assert gpu_check.one_line(gpu_check.UserError("a clear line")) == "a clear line"
    assert gpu_check.one_line(MemoryError()) == "MemoryError"

    class TaskError(Exception):  # what ray.exceptions.RayTaskError carries: the task's own exception
        cause = TimeoutError("only 1 of 4 trials were built within 180 s")

    assert gpu_check.one_line(TaskError("Traceback ...\n...")) == ("TimeoutError: only 1 of 4 trials were built "
                                                                   "within 180 s")
    assert gpu_check.one_line(RuntimeError("x" * 400)) == "RuntimeError: " + "x" * 285 + "…"


def test_ratios_compare_a_layout_with_channels_last_and_shared_trials_with_one():
    rows = [Row("step", "darts / darts, channels_last", None, PASS, 1.0, "", "", {"layout": "channels_last",
                                                                                 "seconds_per_step": 0.2}),
            Row("step", "darts / darts, contiguous", None, PASS, 1.0, "", "", {"layout": "contiguous",
                                                                              "seconds_per_step": 0.5}),
            Row("sharing", "1 trial", None, PASS, 1.0, "", "", {"trials": 1, "images_per_second_total": 400.0}),
            Row("sharing", "2 trials", None, PASS, 1.0, "", "", {"trials": 2, "images_per_second_total": 600.0}),
            Row("sharing", "4 trials", None, FAIL, 1.0, "", "Ray did not start", {})]
    gpu_check.add_ratios(rows)
    assert rows[1].figures["ratio_to_channels_last"] == pytest.approx(2.5)
    assert rows[1].text == " · 2.50× channels-last's step"
    assert rows[3].figures["throughput_vs_one_trial"] == pytest.approx(1.5) and rows[3].text == " · 1.50× one trial's"
    assert "ratio_to_channels_last" not in rows[0].figures and rows[4].figures == {}


def test_the_table_wraps_long_reasons_at_80_columns_and_keeps_every_word(monkeypatch):
    from rich.console import Console

    reason = ("RuntimeError: Expected all tensors to be on the same device, but found at least two devices, cuda:0 "
              "and cpu! (when checking argument for argument mat1 in method wrapper_CUDA_addmm)")
    rows = [Row("pairs", "proxyless/proxyless", None, FAIL, 12.5, "", reason),
            Row("pairs", "random/nb201", None, SKIP, None, "", "--timeout 450 s reached before it started"),
            Row("sharing", "4 trials, --gpus-per-trial 0.25", None, PASS, 30.0, "2,345 img/s summed (586, 586, 587, "
                "586) · 30 steps each in 3.27 s · group 21.0 s · 1.83× one trial's")]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))
    console.print(gpu_check.render(rows, "gpu_check (gpu) on cuda (NVIDIA H100 80GB HBM3)"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    words = " ".join(text.split())
    for phrase in (*reason.split(), "proxyless/proxyless", "12.5 s", "SKIPPED", "--timeout", "1.83×", "PASS"):
        assert phrase in text or phrase in words, phrase


@pytest.mark.parametrize("argv, message", [
    (["--cpu-quick", "--only", "steps"], "--only steps: the sections are determinism, step, epoch, sharing, pairs"),
    (["--cpu-quick", "--pairs", "nos/nb201"], "--pairs nos/nb201: not a registered pair"),
    (["--cpu-quick", "--timeout", "0"], "--timeout 0: give a number of seconds above 0"),
    (["--cpu-quick", "--json", "/no/such/folder/x.json"], "--json /no/such/folder/x.json: the folder /no/such/folder"),
    (["--cpu-quick", "--steps", "3"], "unrecognized arguments: --steps 3"),
])
def test_a_bad_option_is_one_line_and_exit_status_2(argv, message, capsys):
    assert gpu_check.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpu_check: error: ") and message in err and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_the_full_check_says_to_use_cpu_quick(capsys):
    assert gpu_check.main([]) == 2
    assert "torch sees no CUDA device" in capsys.readouterr().err
