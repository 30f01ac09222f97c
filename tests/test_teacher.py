"""NOS teacher: PyramidNet's widths, parameter count and shortcut by hand; the attention-transfer loss on
hand-computed maps; the teacher's training recipe; the content-addressed cache (trained once, also by two
processes at the same moment), the user's checkpoint and the refusals."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import multiprocessing
import os
import time
from pathlib import Path

import pytest
import torch
from helpers import one_line

import methods.nos.teacher as teacher
from harness.core.data import SearchData, load_dataset
from harness.core.errors import UserError
from harness.core.train import evaluate
from methods.nos.teacher import (
    TEACHER_BUDGETS,
    TEACHER_DEFAULTS,
    PyramidNet,
    attention_map,
    attention_transfer_loss,
    get_teacher,
    teacher_batches,
    teacher_key,
    train_teacher,
)

CPU = torch.device("cpu")
# A teacher that trains in a fraction of a second: 300 digits, one epoch, the smallest PyramidNet.
TINY = {"train_limit": 300, "eval_batch_size": 256, "cutout": 16, **TEACHER_DEFAULTS, "teacher_depth": 11,
        "teacher_alpha": 4, "teacher_epochs": 1, "teacher_batch_size": 64}


@functools.lru_cache(maxsize=1)
def digits():
    return load_dataset("digits", None, 32)


def tiny_data(cfg: dict | None = None) -> SearchData:
    return SearchData(digits(), cfg or TINY, 0, CPU)


def unit_params(c_in: int, p: int) -> int:
    """A bottleneck unit: BN(c_in) 2c_in, 1×1 c_in·p, BN 2p, 3×3 9p², BN 2p, 1×1 p·4p, BN(4p) 8p."""
    return 2 * c_in + c_in * p + 2 * p + 9 * p * p + 2 * p + 4 * p * p + 8 * p


def digest(net: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# --- PyramidNet ----------------------------------------------------------------------------------------
def test_channel_progression_and_parameter_count_by_hand():
    # depth 11 → n = 1 unit per stage; α 12 adds 12 / 3 = 4 planes per unit: 20, 24, 28; outputs ×4.
    net = PyramidNet(11, 12, 10)
    assert net.units_per_stage == 1 and net.stage_channels == [80, 96, 112]
    shapes = [tuple(u.conv1.weight.shape) + tuple(u.conv3.weight.shape[:2])
              for u in (net.layer1[0], net.layer2[0], net.layer3[0])]
    assert shapes == [(20, 16, 1, 1, 80, 20), (24, 80, 1, 1, 96, 24), (28, 96, 1, 1, 112, 28)]
    assert [unit_params(16, 20), unit_params(80, 24), unit_params(96, 28)] == [5792, 9856, 13408]
    # stem conv 3·16·9 + BN 32, three units, final BN 2·112, linear 112·10 + 10
    assert sum(p.numel() for p in net.parameters()) == 432 + 32 + 5792 + 9856 + 13408 + 224 + 1130 == 30874


def test_widths_round_the_running_float_and_paper_teacher_size():
    # depth 20 → n = 2; α 10 → +10/6 per unit: 17.67, 19.33, 21, 22.67, 24.33, 26 → 18, 19, 21, 23, 24, 26
    net = PyramidNet(20, 10, 10)
    planes = [u.conv1.out_channels for stage in (net.layer1, net.layer2, net.layer3) for u in stage]
    assert planes == [18, 19, 21, 23, 24, 26]
    assert net.layer2[1].conv1.in_channels == 4 * 21  # a unit takes the previous unit's 4× output
    # The NOS teacher: PyramidNet-110, α 84: 12 units per stage, +7/3 planes each, ending at 16 + 84 = 100.
    paper = PyramidNet(110, 84, 10)
    widths = [round(16 + k * 84 / 36) for k in range(1, 37)]  # no ties: the fractions are 0, 1/3, 2/3
    assert [u.conv1.out_channels for s in (paper.layer1, paper.layer2, paper.layer3) for u in s] == widths
    count = 464 + sum(unit_params(c_in, p) for c_in, p in zip([16] + [4 * w for w in widths[:-1]], widths))
    count += 2 * 400 + 400 * 10 + 10
    assert sum(p.numel() for p in paper.parameters()) == count == 2_528_712  # NOS Table: teacher 2.5M


def test_forward_shapes_and_three_stage_features():
    net = PyramidNet(11, 12, 10).eval()
    x = torch.randn(2, 3, 16, 16)
    logits, feats = net.forward_features(x)
    assert logits.shape == (2, 10)
    assert [tuple(f.shape) for f in feats] == [(2, 80, 16, 16), (2, 96, 8, 8), (2, 112, 4, 4)]
    assert torch.equal(net(x), logits)
    # f3 feeds the head: BN → ReLU → global average pool → linear
    head = net.fc(torch.relu(net.bn_final(feats[2])).mean(dim=(2, 3)))
    assert torch.allclose(head, logits, atol=1e-6)


@pytest.mark.parametrize("size, expected", [(7, [7, 4, 2]), (9, [9, 5, 3]), (8, [8, 4, 2]), (3, [3, 2, 1])])
def test_odd_input_sizes_work(size, expected):
    net = PyramidNet(11, 4, 5, in_channels=1).eval()
    logits, feats = net.forward_features(torch.randn(2, 1, size, size))
    assert logits.shape == (2, 5) and [f.shape[-1] for f in feats] == expected


@pytest.mark.parametrize("depth, bottleneck", [(10, True), (12, True), (2, True), (111, True), (9, False),
                                               (15, False)])
def test_depth_that_does_not_fit_raises(depth, bottleneck):
    with pytest.raises(ValueError, match=f"depth {depth} does not fit"):
        PyramidNet(depth, 12, 10, bottleneck=bottleneck)


def test_basic_units_use_six_layers_per_unit():
    net = PyramidNet(8, 12, 10, bottleneck=False)  # (8 − 2) / 6 = 1 unit per stage, no 4× expansion
    assert net.stage_channels == [20, 24, 28] and not hasattr(net.layer1[0], "conv3")
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_shortcut_is_zero_padded_identity_or_average_pool():
    net = PyramidNet(11, 12, 10).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        x = torch.randn(2, 16, 4, 4)  # stage 1's unit: stride 1, 16 → 80 channels
        unit = net.layer1[0]
        diff = unit(x) - unit.residual(x)
        assert torch.allclose(diff[:, :16], x, atol=1e-6) and torch.equal(diff[:, 16:], torch.zeros(2, 64, 4, 4))
        x = torch.randn(2, 80, 4, 4)  # stage 2's first unit: stride 2, 80 → 96 channels
        unit = net.layer2[0]
        diff = unit(x) - unit.residual(x)
        pooled = x.view(2, 80, 2, 2, 2, 2).mean(dim=(3, 5))  # mean of each 2×2 block
        assert torch.allclose(diff[:, :80], pooled, atol=1e-6) and torch.equal(diff[:, 80:], torch.zeros(2, 16, 2, 2))
        x = torch.randn(1, 80, 5, 5)  # odd: the last window holds one column / one pixel
        diff = unit(x) - unit.residual(x)
        assert diff.shape == (1, 96, 3, 3)
        assert torch.allclose(diff[0, :80, 2, 2], x[0, :, 4, 4], atol=1e-6)
        assert torch.allclose(diff[0, :80, 0, 2], x[0, :, 0:2, 4].mean(dim=1), atol=1e-6)
    assert sum(p.numel() for p in unit.downsample.parameters()) == 0  # no projection


# --- attention transfer ----------------------------------------------------------------------------------
def test_attention_map_by_hand_and_invariant_to_positive_scaling():
    f = torch.tensor([[[[1.0, 2.0]], [[2.0, 0.0]]]])  # [1, 2 channels, 1, 2]: Σ_c f² = [5, 4]
    assert torch.allclose(attention_map(f), torch.tensor([[5.0, 4.0]]) / math.sqrt(41))
    g = torch.randn(3, 4, 5, 6)
    assert attention_map(g).shape == (3, 30)
    assert torch.allclose(attention_map(g).norm(dim=1), torch.ones(3))
    assert torch.allclose(attention_map(3.7 * g), attention_map(g), atol=1e-6)
    assert not torch.allclose(attention_map(g + 1.0), attention_map(g), atol=1e-3)


def test_attention_transfer_loss_by_hand():
    s1 = torch.tensor([[[[1.0, 2.0]], [[2.0, 0.0]]]])  # map [5, 4] / √41
    t1 = torch.tensor([[[[0.0, 1.0]]]])  # map [0, 1]; channel counts may differ
    # ‖[5/√41, 4/√41 − 1]‖² = 25/41 + 16/41 − 8/√41 + 1 = 2 − 8/√41
    expected = 0.5 * math.sqrt(2 - 8 / math.sqrt(41))
    assert attention_transfer_loss([s1], [t1]).item() == pytest.approx(expected, rel=1e-6)
    # two stages add; a second, identical sample halves the batch mean
    s = torch.cat([s1, torch.zeros(1, 2, 1, 2) + 1]), torch.tensor([[[[1.0, 0.0]]], [[[1.0, 1.0]]]])
    t = torch.cat([t1 * 2, torch.ones(1, 1, 1, 2)]), torch.tensor([[[[0.0, 1.0]]], [[[2.0, 2.0]]]])
    # stage 1: sample 1 as above, sample 2 identical maps; stage 2: [1, 0] vs [0, 1] → √2, then 0
    expected = 0.5 * ((math.sqrt(2 - 8 / math.sqrt(41)) + 0) / 2 + (math.sqrt(2) + 0) / 2)
    assert attention_transfer_loss(list(s), list(t)).item() == pytest.approx(expected, rel=1e-6)
    # Zagoruyko's form: ½ Σ_j mean over samples and positions of d²; stage 2 has d = [1, −1] for sample 1
    sq = 0.5 * ((2 - 8 / math.sqrt(41)) / 4 + 2 / 4)
    assert attention_transfer_loss(list(s), list(t), squared=True).item() == pytest.approx(sq, rel=1e-6)


def test_attention_transfer_loss_zero_scale_invariant_positive():
    torch.manual_seed(0)
    fs = [torch.randn(4, 8, 8, 8), torch.randn(4, 16, 4, 4), torch.randn(4, 32, 2, 2)]
    ft = [torch.randn(4, 80, 8, 8), torch.randn(4, 96, 4, 4), torch.randn(4, 112, 2, 2)]
    assert attention_transfer_loss(ft, ft).item() == 0.0
    base = attention_transfer_loss(fs, ft)
    assert base.item() > 0.01
    assert torch.allclose(attention_transfer_loss([5 * f for f in fs], ft), base, atol=1e-6)
    assert torch.allclose(attention_transfer_loss(fs, [0.2 * f for f in ft]), base, atol=1e-6)
    student = [f.clone().requires_grad_(True) for f in ft]  # the norm's gradient at 0 must not be NaN
    attention_transfer_loss(student, ft).backward()
    assert all(torch.isfinite(f.grad).all() for f in student)
    with pytest.raises(ValueError, match="2 student feature maps but 3"):
        attention_transfer_loss(fs[:2], ft)


def test_student_map_is_pooled_to_teacher_size():
    student = torch.zeros(1, 1, 4, 4)
    student[0, 0, :2, :2] = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])  # squares average to 1, values to 0
    teacher_same = torch.zeros(1, 3, 2, 2)
    teacher_same[0, :, 0, 0] = 5.0
    teacher_other = torch.zeros(1, 3, 2, 2)
    teacher_other[0, :, 1, 1] = 5.0
    assert torch.allclose(attention_map(student, (2, 2)), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    assert attention_transfer_loss([student], [teacher_same]).item() == pytest.approx(0.0, abs=1e-7)
    assert attention_transfer_loss([student], [teacher_other]).item() == pytest.approx(0.5 * math.sqrt(2))
    # a 3×3 student against a 2×2 teacher (adaptive pooling takes overlapping windows)
    assert attention_transfer_loss([torch.ones(2, 4, 3, 3)], [torch.ones(2, 1, 2, 2)]).item() == pytest.approx(
        0.0, abs=1e-6)


# --- training recipe --------------------------------------------------------------------------------------
def test_training_recipe_cosine_nesterov_own_batches_and_one_test(monkeypatch):
    data = tiny_data()
    cfg = {**TINY, "teacher_epochs": 4, "teacher_lr": 0.1, "teacher_weight_decay": 1e-4, "teacher_batch_size": 50}
    seen, tested = [], []

    def fake_epoch(net, opt, batches, grad_clip):
        group = opt.param_groups[0]
        seen.append((group["lr"], group["momentum"], group["nesterov"], group["weight_decay"], grad_clip,
                     batches.batch_size, batches.cutout, batches.augment, batches.x is data.train_x))
        return 0.0, 0.0

    def fake_evaluate(net, batches):
        tested.append(batches.x is data.test_x)
        return 0.0, 42.0

    monkeypatch.setattr(teacher, "train_epoch", fake_epoch)
    monkeypatch.setattr(teacher, "evaluate", fake_evaluate)
    assert train_teacher(PyramidNet(11, 4, 10, 1), data, cfg, CPU) == 42.0
    lrs = [0.1, 0.05 * (1 + math.cos(math.pi / 4)), 0.05, 0.05 * (1 - math.cos(math.pi / 4))]
    assert [s[0] for s in seen] == pytest.approx(lrs)
    assert all(s[1:] == (0.9, True, 1e-4, 0.0, 50, 0, True, True) for s in seen)  # no cutout despite cutout=16
    assert tested == [True]  # the test set once, after the last epoch


def test_teacher_batches_cover_the_whole_training_set():
    data = tiny_data()
    batches = teacher_batches(data, 64, epoch=0, seed=7)
    labels = torch.cat([y for _, y in batches])
    assert torch.equal(labels.sort().values, data.train_y.sort().values) and len(labels) == 300
    assert batches.crop_padding == data.dataset.crop_padding and batches.flip == data.dataset.flip
    first = next(iter(teacher_batches(data, 64, 1, 7)))[1]
    assert not torch.equal(first, next(iter(batches))[1])  # reshuffled every epoch
    assert len(teacher_batches(tiny_data({**TINY, "train_limit": 129}), 64, 0, 7)) == 2  # no batch of 1 image


def test_smoke_budget_teacher_learns_digits(tmp_path):
    """The smoke preset must give a teacher worth distilling from (measured 96-98 %; chance is 10 %)."""
    cfg = {**TINY, "train_limit": 0, **TEACHER_BUDGETS["smoke"]}
    start = time.perf_counter()
    net, info = get_teacher(tiny_data(cfg), cfg, CPU, "digits", cache_root=tmp_path)
    assert time.perf_counter() - start < 30
    assert info["source"] == "trained" and info["test_acc"] > 85.0


# --- cache -----------------------------------------------------------------------------------------------
def test_key_covers_everything_that_determines_the_teacher():
    data = tiny_data()
    key = teacher_key("digits", data.info, TINY)
    assert len(key) == 16 and int(key, 16) >= 0 and key == teacher_key("digits", data.info, dict(TINY))
    changed = {"teacher_depth": 20, "teacher_alpha": 5, "teacher_epochs": 2, "teacher_lr": 0.2,
               "teacher_weight_decay": 5e-4, "teacher_batch_size": 32, "train_limit": 0}
    keys = {teacher_key("digits", data.info, {**TINY, k: v}) for k, v in changed.items()}
    keys |= {teacher_key("cifar10", data.info, TINY),
             teacher_key("digits", data.info.__class__(1, 10, 16, "digits"), TINY),
             teacher_key("digits", data.info.__class__(1, 12, 8, "digits"), TINY),
             teacher_key("digits", data.info.__class__(3, 10, 8, "digits"), TINY)}
    assert len(keys) == len(changed) + 4 and key not in keys
    # the user's path, evaluation keys and cutout do not determine the teacher
    assert teacher_key("digits", data.info, {**TINY, "teacher": "x.pt", "eval_batch_size": 7, "cutout": 0}) == key


def test_trains_once_then_loads_from_cache(tmp_path, monkeypatch):
    data = tiny_data()
    net, info = get_teacher(data, TINY, CPU, "digits", cache_root=tmp_path)
    key = teacher_key("digits", data.info, TINY)
    assert info["source"] == "trained" and info["key"] == key and info["path"] == str(tmp_path / key)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    meta = json.loads((tmp_path / key / "teacher.json").read_text())
    assert meta["key"] == key and meta["config"] == {k: TINY[k] for k in teacher.TEACHER_KEYS}
    assert meta["test_acc"] == info["test_acc"] and meta["train_seconds"] > 0 and meta["created"]
    assert (tmp_path / f"{key}.lock").exists()
    assert sorted(p.name for p in (tmp_path / key).iterdir()) == ["teacher.json", "teacher.pt"]  # no temp files

    def no_training(*args, **kwargs):
        raise AssertionError("a cached teacher was trained again")

    monkeypatch.setattr(teacher, "train_teacher", no_training)
    again, info2 = get_teacher(data, TINY, CPU, "digits", cache_root=tmp_path)
    assert info2["source"] == "cache" and info2["test_acc"] == info["test_acc"]
    assert info2["created"] == meta["created"] and digest(again) == digest(net)
    assert not again.training and not any(p.requires_grad for p in again.parameters())
    # the stored accuracy is the stored network's, BN running statistics included
    assert evaluate(again, data.test_batches())[1] == pytest.approx(info["test_acc"])
    # another teacher_* value is another key: it would train (and here refuses to)
    with pytest.raises(AssertionError, match="trained again"):
        get_teacher(data, {**TINY, "teacher_lr": 0.05}, CPU, "digits", cache_root=tmp_path)
    # a damaged entry is refused in one line, naming the folder to delete
    (tmp_path / key / "teacher.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError) as err:
        get_teacher(data, TINY, CPU, "digits", cache_root=tmp_path)
    assert f"delete the folder '{tmp_path / key}'" in one_line(err)


def test_cache_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "c"))
    assert teacher.default_cache_root() == tmp_path / "c" / "teachers"
    monkeypatch.delenv("HARNESS_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert teacher.default_cache_root() == tmp_path / "home" / ".cache" / "nas-harness" / "teachers"


def test_training_is_seeded_by_the_key_and_leaves_caller_rng_alone(tmp_path):
    data = tiny_data()
    torch.manual_seed(1)
    a, _ = get_teacher(data, TINY, CPU, "digits", cache_root=tmp_path / "a")
    after_a = torch.rand(3)
    torch.manual_seed(2)
    b, _ = get_teacher(data, TINY, CPU, "digits", cache_root=tmp_path / "b")
    after_b = torch.rand(3)
    assert digest(a) == digest(b)  # same key, different trial seeds: the same teacher
    torch.manual_seed(1)
    assert torch.equal(torch.rand(3), after_a)  # as if get_teacher had not run
    torch.manual_seed(2)
    assert torch.equal(torch.rand(3), after_b)
    c, _ = get_teacher(data, {**TINY, "teacher_lr": 0.05}, CPU, "digits", cache_root=tmp_path / "a")
    assert digest(c) != digest(a)


def _race_child(root: str, log: str, out: str, barrier) -> None:
    """One of two processes asking for the same teacher at once; every training appends a line to ``log``."""
    torch.set_num_threads(1)
    real = teacher.train_teacher

    def counted(*args, **kwargs):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)  # widen the window in which an unlocked second process would start training too
        return real(*args, **kwargs)

    teacher.train_teacher = counted
    data = tiny_data()
    barrier.wait()
    net, info = get_teacher(data, TINY, CPU, "digits", cache_root=root)
    Path(out).write_text(json.dumps({"source": info["source"], "digest": digest(net), "created": info["created"]}))


@pytest.mark.slow
def test_two_processes_at_once_train_one_teacher(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    log = tmp_path / "trainings.log"
    outs = [tmp_path / f"out{i}.json" for i in range(2)]
    procs = [ctx.Process(target=_race_child, args=(str(tmp_path / "cache"), str(log), str(out), barrier))
             for out in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(log.read_text().splitlines()) == 1
    results = [json.loads(out.read_text()) for out in outs]
    assert sorted(r["source"] for r in results) == ["cache", "trained"]
    assert results[0]["digest"] == results[1]["digest"] and results[0]["created"] == results[1]["created"]


# --- user checkpoint and refusals -------------------------------------------------------------------------
def test_user_checkpoint_loads_in_both_forms(tmp_path, monkeypatch):
    data = tiny_data()
    torch.manual_seed(3)
    mine = PyramidNet(11, 4, 10, in_channels=1)
    torch.save(mine.state_dict(), tmp_path / "plain.pt")
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in mine.state_dict().items()}}
    torch.save(wrapped, tmp_path / "wrapped.pt")  # what the reference code saves from DataParallel
    monkeypatch.setattr(teacher, "train_teacher", lambda *a, **k: pytest.fail("a user's teacher was trained"))
    expected = evaluate(mine, data.test_batches())[1]
    for name in ("plain.pt", "wrapped.pt"):
        net, info = get_teacher(data, TINY, CPU, "digits", user_path=tmp_path / name, cache_root=tmp_path / "c")
        assert info["source"] == "user" and info["path"] == str(tmp_path / name) and info["key"] is None
        assert info["test_acc"] == expected and digest(net) == digest(mine)
        assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert not (tmp_path / "c").exists()  # a user's teacher bypasses the cache


def test_bad_user_checkpoints_are_one_line_errors(tmp_path):
    data = tiny_data()
    torch.save(PyramidNet(11, 8, 10, in_channels=1).state_dict(), tmp_path / "alpha8.pt")
    (tmp_path / "garbage.pt").write_bytes(os.urandom(64))
    torch.save([1, 2, 3], tmp_path / "list.pt")
    cases = {"missing.pt": "does not exist", "garbage.pt": "is unreadable", "list.pt": "holds no state_dict",
             "alpha8.pt": "does not fit the configured teacher"}
    for name, says in cases.items():
        with pytest.raises(UserError) as err:
            get_teacher(data, TINY, CPU, "digits", user_path=tmp_path / name)
        msg = one_line(err)
        assert says in msg and str(tmp_path / name) in msg and "teacher_depth/teacher_alpha" in msg


def test_teacher_config_is_validated_in_one_line(tmp_path):
    data = tiny_data()
    for key, value, says in (("teacher_depth", 100, "9n+2"), ("teacher_epochs", 0, ">= 1"),
                             ("teacher_lr", 0.0, "> 0"), ("teacher_alpha", -1, ">= 0")):
        with pytest.raises(UserError) as err:
            get_teacher(data, {**TINY, key: value}, CPU, "digits", cache_root=tmp_path)
        assert says in one_line(err) and key in one_line(err)
    assert not any(tmp_path.iterdir())  # refused before anything is written
