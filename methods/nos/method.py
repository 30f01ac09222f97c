"""NOS: Neural Operator Search (journal version, Sec. 3.3 "Attention Guided Search", Appendix A).

DARTS's bilevel search (first or second order, ``order``) over the heterogeneous space — or any space with
DARTS's skeleton — plus **attention-guided search (AGS)**: knowledge distillation from a pre-trained
teacher through the attention-transfer loss at three stages, added to both levels:

    weights:       min L_train + λ·L_AT        architecture:  min L_val + λ·L_AT        (Eqs. 12–13)

L_AT compares the student supernet's feature maps at the end of each of its three stages (the last cell
before each reduction and the last cell: ``SearchNetwork.forward_features``) with the teacher's three stage
outputs (``methods.nos.teacher``): attention maps vec(Σ_c |F|²), L2-normalised, the student's resized to the
teacher's size by average pooling where they differ. λ = ``ags_lambda`` (paper 1e3). ``--set ags=false`` is
the paper's "without AGS" ablation (plain DARTS search with NOS's settings).

Teacher: PyramidNet (bottleneck; paper: depth 110, α 84, smaller at the smoke and small budgets), trained
by the harness on the search dataset's training set and cached in a content-addressed folder shared by
all seeds and experiments (``methods.nos.teacher.get_teacher``: trained once, under a file lock); or a user's
checkpoint with ``--set teacher=PATH``. The record names the teacher and its test accuracy.

Our choices:

- **The form of L_AT** (``at_form``): the paper writes ½ Σ_j ‖a_S^j − a_T^j‖₂ with λ = 1e3, the β of
  Zagoruyko & Komodakis' attention transfer, whose code uses ½ Σ_j mean((a_S^j − a_T^j)²) over samples and
  positions. With the norm as written, λ = 1e3 makes the distillation term ~100× the cross-entropy of an
  untrained supernet (measured on digits: ‖d‖ ≈ 0.2 per stage), so the search would ignore the labels; the
  default is therefore ``code``, the form λ = 1e3 was tuned for. ``--set at_form=paper`` gives the norm.
- The teacher is obtained at the first search epoch (it needs the data); the search's random state is
  unaffected by whether it was trained or loaded. It is never a submodule of the supernet, so it is not
  among the searched weights nor in the method's checkpoints (a resumed trial gets it from the cache).
- **The teacher's cost is not search cost.** The wall-clock seconds that epoch spends obtaining the teacher
  (training it on a cold cache, waiting for another trial that trains it, or loading it) are added to the
  method's ``teacher_obtain_seconds``, which it declares as ``excluded_seconds`` and ``harness.trial`` so
  leaves out of ``search_seconds`` (and so out of the record's ``device_hours``, as the paper's 0.35
  GPU-days leave the teacher out). The record
  states the teacher's cost the same way for every seed, whether this trial trained it or loaded it:
  ``teacher_seconds`` (its training time, from the cache entry), ``teacher_device_hours`` and
  ``teacher_cached`` (true: loaded from the cache; false: trained by this trial), plus this trial's own
  ``teacher_obtain_seconds``; all null without a harness-trained teacher (``ags=false``, ``--set teacher=``).
- Settings (Appendix A): 25 epochs; weights SGD 0.025 cosine to 0, momentum 0.9, weight decay 3e-4;
  architecture Adam lr 6e-4 (β as DARTS), weight decay 1e-3; α initialised as DARTS (1e-3·N(0, 1)).
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from harness.core.config import Key
from harness.core.data import DataInfo, SearchData
from harness.core.metric_table import Metric
from harness.core.registry import register_method
from harness.core.train import to_device
from methods.darts import Darts
from methods.nos.teacher import (
    TEACHER_BUDGETS,
    TEACHER_CONFIG,
    attention_transfer_loss,
    build_teacher,
    get_teacher,
)
from spaces.base import SearchSpace


@register_method
class Nos(Darts):
    name = "nos"
    description = "NOS: DARTS-style search with attention-guided distillation from a PyramidNet teacher"
    needs = frozenset({"edges", "stage-features"})  # attention transfer at the supernet's stages
    keys = {
        **Darts.keys,
        "ags": Key(True, "NOS: attention-guided search (false = the paper's 'without AGS' ablation)"),
        "ags_lambda": Key(1e3, "NOS: weight λ of the attention-transfer loss in both levels", "[0, inf)"),
        "at_form": Key("code", "NOS: 'code' = ½ Σ mean((a_S − a_T)²) as in attention-transfer code, 'paper' = "
                               "½ Σ ‖a_S − a_T‖₂", choices=("code", "paper")),
        **TEACHER_CONFIG,
    }
    defaults = {**Darts.defaults, "search_epochs": 25, "w_lr_min": 0.0, "arch_lr": 6e-4}
    budgets = TEACHER_BUDGETS
    # The teacher, trained once per dataset and configuration and cached: its training time (from the cache
    # entry, the same for every seed whether the trial trained or loaded it), not part of search_seconds nor of
    # device_hours (search + correlation + evaluation); teacher_cached: loaded (true) or trained by the trial;
    # teacher_obtain_seconds: the trial's own time getting it (training, waiting or loading; excluded_seconds). The
    # leaderboard averages them in its trailing columns (teacher_device_hours_mean, teacher_seconds_mean, ...).
    metrics = (
        Metric("teacher_seconds", "teacher training time", "s", decimals=1),
        Metric("teacher_device_hours", "teacher device time", "hours"),
        Metric("teacher_cached", "teacher from the cache"),
        Metric("teacher_obtain_seconds", "time obtaining the teacher", "s", decimals=1),
    )

    @classmethod
    def validate_config(cls, cfg: dict[str, Any], space: type[SearchSpace]) -> None:
        super().validate_config(cfg, space)
        if cfg["ags"]:  # the teacher's three stage outputs are matched with the supernet's
            space.check_stage_features(cfg, 3, "attention-guided search")

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        super().__init__(space, cfg, info, device, seed)
        self.teacher: torch.nn.Module | None = None
        self.teacher_info: dict[str, Any] = {}
        self.teacher_obtain_seconds = 0.0  # this trial's wall-clock seconds obtaining the teacher (resumptions too)

    def prepare_teacher(self, data: SearchData) -> float:
        """Obtain the teacher if it is needed and not yet here; the wall-clock seconds it took (0 otherwise)."""
        if not self.cfg["ags"] or self.teacher is not None:
            return 0.0
        start = time.perf_counter()
        self.teacher, self.teacher_info = get_teacher(data, self.cfg, self.device, data.info.name,
                                                      user_path=self.cfg["teacher"] or None)
        seconds = time.perf_counter() - start
        self.teacher_obtain_seconds += seconds
        return seconds

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, features = self.supernet.forward_features(x)
        loss = F.cross_entropy(logits, y)
        if self.cfg["ags"]:
            assert self.teacher is not None, "prepare_teacher(data) first"
            with torch.no_grad():
                _, targets = self.teacher.forward_features(x)
            distil = attention_transfer_loss(features, targets, squared=self.cfg["at_form"] == "code")
            loss = loss + self.cfg["ags_lambda"] * distil
        return loss, logits

    def train_epoch(self, epoch: int, data: SearchData) -> dict[str, Any]:
        """A search epoch (the first obtains the teacher: ``teacher_obtain_seconds`` grows by the time it took,
        which the trial leaves out of ``search_seconds``; the epoch's metrics are those of the search alone, the
        same whether the teacher was trained, loaded or already there)."""
        self.prepare_teacher(data)
        return super().train_epoch(epoch, data)

    def excluded_seconds(self) -> dict[str, float]:
        """The seconds obtaining the teacher are not search cost (module docstring)."""
        return {"teacher_obtain_seconds": self.teacher_obtain_seconds}

    def use_untrained_teacher(self) -> None:
        """For timing only: an untrained teacher of the configured size (its forward pass costs the same)."""
        if self.cfg["ags"] and self.teacher is None:
            self.teacher = to_device(build_teacher(self.cfg, self.info), self.cfg, self.device).eval()

    def step_time(self, data: SearchData, steps: int = 1) -> tuple[float, int]:
        """Timed with an untrained teacher when none is ready, so that the plan's estimate never trains one."""
        self.use_untrained_teacher()
        return super().step_time(data, steps)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "teacher_info": self.teacher_info,  # the teacher itself is in the cache
                "teacher_obtain_seconds": self.teacher_obtain_seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.teacher_info = dict(state.get("teacher_info") or {})
        self.teacher_obtain_seconds = float(state.get("teacher_obtain_seconds") or 0.0)

    def record_info(self) -> dict[str, Any]:
        """The teacher and its cost (module docstring): the cost fields are null without a harness-trained
        teacher. A resumed trial that trained the teacher before its interruption reloads it from the cache,
        so its record says ``teacher_cached`` true: the cache entry is the teacher's own account of its cost."""
        cost = {"teacher_seconds": None, "teacher_device_hours": None, "teacher_cached": None,
                "teacher_obtain_seconds": None}
        if not self.cfg["ags"]:
            return {"teacher": None, **cost}
        info = dict(self.teacher_info)
        if info.get("source") in ("trained", "cache") and info.get("train_seconds") is not None:
            seconds = float(info["train_seconds"])
            cost = {"teacher_seconds": seconds, "teacher_device_hours": seconds / 3600,
                    "teacher_cached": info["source"] == "cache", "teacher_obtain_seconds": self.teacher_obtain_seconds}
        elif info:
            cost["teacher_obtain_seconds"] = self.teacher_obtain_seconds
        return {"teacher": {k: info.get(k) for k in ("source", "path", "key", "test_acc", "train_seconds", "device",
                                                      "params", "config")},
                "teacher_test_acc": info.get("test_acc"), **cost}

