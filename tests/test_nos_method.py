"""NOS: the attention-transfer term enters both levels of the search, the AGS ablation switches it off,
its configuration is checked, and the record names the teacher."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import one_line

from harness.core.config import resolve
from harness.core.data import SearchData, load_dataset
from harness.core.errors import UserError
from harness.core.registry import get_method, get_space
from methods.darts import _grads
from methods.nos.teacher import attention_transfer_loss

TINY = {"search_layers": "3", "search_channels": "2", "search_batch_size": "16", "train_limit": "64"}


def build(space: str = "hetero", **overrides: str):
    cfg = resolve(get_method("nos"), get_space(space), "smoke", {**TINY, **overrides}).values
    data = SearchData(load_dataset("digits", None, 32), cfg, 0, torch.device("cpu"))
    torch.manual_seed(0)
    method = get_method("nos")(get_space(space)(cfg), cfg, data.info, torch.device("cpu"), 0)
    method.use_untrained_teacher()
    return method, data


def batch(data: SearchData):
    return next(iter(data.weight_batches(0))), next(iter(data.arch_batches(0)))


@pytest.mark.parametrize("form", ["code", "paper"])
def test_loss_is_cross_entropy_plus_lambda_times_attention_transfer(form):
    method, data = build(at_form=form, ags_lambda="7.5")
    (x, y), _ = batch(data)
    loss, logits = method.loss(x, y)
    student_logits, student = method.supernet.forward_features(x)
    with torch.no_grad():
        _, teacher = method.teacher.forward_features(x)
    assert len(student) == len(teacher) == 3
    expected = F.cross_entropy(student_logits, y) + 7.5 * attention_transfer_loss(student, teacher, form == "code")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(logits, student_logits)
    assert loss.item() > F.cross_entropy(logits, y).item()  # the term is there, and positive


def test_without_ags_the_loss_is_cross_entropy_and_no_teacher_is_used():
    method, data = build(ags="false")
    assert method.teacher is None  # use_untrained_teacher does nothing without AGS
    (x, y), _ = batch(data)
    loss, logits = method.loss(x, y)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert method.record_info() == {"teacher": None, "teacher_seconds": None, "teacher_device_hours": None,
                                    "teacher_cached": None, "teacher_obtain_seconds": None}


def test_the_architecture_step_follows_the_distillation_gradient():
    method, data = build()
    weight_batch, (x_a, y_a) = batch(data)
    alphas = method.arch_parameters()
    before = [a.detach().clone() for a in alphas]
    expected = _grads(method.loss(x_a, y_a)[0], alphas)
    ce_only = _grads(F.cross_entropy(method.supernet(x_a), y_a), alphas)
    assert any(not torch.allclose(g, c) for g, c in zip(expected, ce_only))  # distillation changes the step
    method.train_step(weight_batch, (x_a, y_a), 0)
    for alpha, b, g in zip(alphas, before, expected):
        assert torch.allclose(alpha.grad, g, atol=1e-6)  # the step used exactly that gradient
        assert not torch.equal(alpha.detach(), b)


def test_second_order_runs_with_distillation():
    method, data = build(order="2")
    weight_batch, arch_batch = batch(data)
    stats = method.train_step(weight_batch, arch_batch, 0)
    assert stats["loss"] > 0 and all(torch.isfinite(a.grad).all() for a in method.arch_parameters())


def test_nos_on_the_darts_space_uses_its_stage_features():
    method, data = build("darts")
    (x, y), _ = batch(data)
    _, feats = method.supernet.forward_features(x)
    assert [f.shape[-1] for f in feats] == [8, 4, 2]  # digits 8×8: the three stages
    assert method.loss(x, y)[0].item() > 0


@pytest.mark.parametrize("overrides,fragment", [
    ({"at_form": "l1"}, "at_form"),
    ({"search_layers": "2"}, "search_layers >= 3"),
    ({"teacher_depth": "12"}, "teacher"),
])
def test_bad_configuration_is_refused(overrides, fragment):
    with pytest.raises(UserError) as info:
        resolve(get_method("nos"), get_space("hetero"), "smoke", overrides)
    assert fragment in one_line(info)


def test_defaults_follow_the_paper():
    cfg = resolve(get_method("nos"), get_space("hetero"), "paper").values
    assert (cfg["search_epochs"], cfg["arch_lr"], cfg["w_lr_min"], cfg["ags_lambda"]) == (25, 6e-4, 0.0, 1e3)
    sizes = (cfg["teacher_depth"], cfg["teacher_alpha"], cfg["search_layers"], cfg["search_channels"])
    assert sizes == (110, 84, 8, 16)
    smoke = resolve(get_method("nos"), get_space("hetero"), "smoke").values
    assert (smoke["teacher_depth"], smoke["search_layers"]) == (11, 3)


def test_the_teacher_record_survives_a_checkpoint():
    method, _ = build()
    method.teacher_info = {"source": "trained", "key": "abc", "test_acc": 97.5, "path": "/x", "train_seconds": 36.0}
    method.teacher_obtain_seconds = 37.5
    state = method.state_dict()
    again, _ = build()
    again.load_state_dict(state)
    info = again.record_info()
    assert info["teacher"]["key"] == "abc" and info["teacher_test_acc"] == 97.5
    assert (info["teacher_seconds"], info["teacher_device_hours"], info["teacher_cached"],
            info["teacher_obtain_seconds"]) == (36.0, 0.01, False, 37.5)
    # the declared seconds outside the search (harness.trial leaves them out of search_seconds) survive it too
    assert again.excluded_seconds() == {"teacher_obtain_seconds": 37.5}


def test_a_users_teacher_has_no_training_cost_on_record():
    method, _ = build()
    method.teacher_info = {"source": "user", "key": None, "test_acc": 90.0, "path": "/t.pt", "train_seconds": None}
    method.teacher_obtain_seconds = 0.5
    info = method.record_info()
    assert (info["teacher_seconds"], info["teacher_device_hours"], info["teacher_cached"],
            info["teacher_obtain_seconds"]) == (None, None, None, 0.5)


# --- the teacher's cost stays out of the search's -------------------------------------------------------------
TEACHER_TRAINING = 3600.0  # seconds of a crafted teacher training: the clock jumps an hour, far above any search


def test_the_teachers_cost_stays_out_of_search_seconds_cold_and_warm(tmp_path, monkeypatch):
    """Seed 0 finds the cache cold and trains the teacher (crafted: the clock jumps an hour), seed 1 loads it:
    both seeds' search_seconds and device_hours leave it out, and both records state the same teacher cost."""
    import time

    from conftest import tiny_overrides, trial_records

    import methods.nos.teacher as teacher

    real_clock, jump = time.perf_counter, [0.0]

    def slow_training(net, data, cfg, device, seed=0, log=None):
        jump[0] += TEACHER_TRAINING
        return 50.0

    monkeypatch.setattr(time, "perf_counter", lambda: real_clock() + jump[0])
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))  # a cold cache of this test's own
    monkeypatch.setattr(teacher, "train_teacher", slow_training)
    sets = [f"{k}={v}" for k, v in tiny_overrides("nos", "hetero").items()]
    cold, warm = trial_records("nos", "hetero", tmp_path / "out", "x", 2, *sets, "search_epochs=1", "eval_epochs=1",
                               "corr_edges=0")
    assert (cold["teacher"]["source"], warm["teacher"]["source"]) == ("trained", "cache")
    assert (cold["teacher_cached"], warm["teacher_cached"]) == (False, True)
    assert cold["teacher_seconds"] == warm["teacher_seconds"] >= TEACHER_TRAINING  # the same cost for every seed
    assert cold["teacher_device_hours"] == warm["teacher_device_hours"] == cold["teacher_seconds"] / 3600
    assert cold["teacher_obtain_seconds"] >= TEACHER_TRAINING > warm["teacher_obtain_seconds"] > 0
    for rec in (cold, warm):
        search = [h for h in rec["history"] if h["phase"] == "search"]
        assert rec["search_seconds"] == pytest.approx(sum(h["seconds"] for h in search))
        assert 0 < rec["search_seconds"] < TEACHER_TRAINING / 10
        assert search[0]["teacher_obtain_seconds"] == rec["teacher_obtain_seconds"]
        assert rec["device_hours"] * 3600 == pytest.approx(
            rec["search_seconds"] + rec["correlation_seconds"] + rec["eval_seconds"])
        assert rec["device_hours"] < 0.1
