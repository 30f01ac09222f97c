"""The ProxylessNAS space (Cai, Zhu & Han, "ProxylessNAS", ICLR 2019): a chain of 21 MBConv choice blocks.

Facts from the authors' search code (METHODS.md): stem 3×3 conv (stride s0) → BN → ReLU6; a fixed 3×3 MBConv
with expand 1 (no shortcut); six stages of [4, 4, 4, 4, 4, 1] choice blocks, the first block of a stage with
the stage's stride, the others stride 1; 1×1 conv to the last width → BN → ReLU6; global average pool;
Linear. MBConv: 1×1 expand (absent at expand 1) → BN → ReLU6 → k×k depthwise (stride s) → BN → ReLU6 → 1×1
project → BN, every conv bias-free, mid = round(in·expand); BN momentum 0.1, eps 1e-3; convs initialised
normal(0, sqrt(2/(k·k·C_out))), Linear uniform ±1/sqrt(fan_in) with bias 0.

**Ops** (``op_names``, the released architectures' notation kKeE): ``k3e3 k3e6 k5e3 k5e6 k7e3 k7e6`` (kernel K,
expand E, in the authors' candidate order) and ``zero`` (the block skipped). Every block has the six MBConvs;
``zero`` only where the block has stride 1 and its input width equals its output width (15 of 21 at the
default widths: every non-first block of the first five stages). Which blocks those are is computed from the
configuration's ``widths`` (before the multiplier) and ``strides``, so the search and the final network, at
any multipliers, agree on them.

**Candidates are whole blocks**, so that every method's edge combination works unchanged: on a skippable
block an MBConv candidate is the residual block ``x + mbconv(x)`` and ``zero`` is the identity (output x);
on the other blocks a candidate is ``mbconv(x)``. DARTS's Σ_k w_k·o_k(x) is then ProxylessNAS's mixed block
x + Σ_k w_k·conv_k(x) (the weights sum to one), GDAS and a binary gate run one whole block, and AGNAS
concatenates the candidates plus the block's input x (its paper's macro search). The identity is not
``spaces.ops.is_zero``: its output is x, not zeros, so every method computes it. The chain is one "cell": every block's
``EdgeId`` has ``cell=0`` (a method that keeps scores per cell, AGNAS, keeps one matrix for the chain, which the
default ``derive_cells`` takes as it is).

**Sizes** (``size_keys``): ``widths`` = stem, first block, the six stage widths and the last width;
``width_mult`` scales them in the search network (supernet, and random search's candidates) and
``eval_width_mult`` in the final network, rounded as the authors do (multiples of 8, at least 8, +8 when
rounding lost over 10 %; the last width is never scaled below 1.0); ``strides`` = the stride of the stem and
of each stage's first block. The search and the final network have the same strides and the same blocks.
``paper`` size: the class defaults (the ImageNet search code at 224×224).

**Strides and the input size** (ours to design: the authors search 224×224 ImageNet). A choice block's
depthwise k×k convolution (padding k//2) on an H×H input only ever reads its central (2H−1)×(2H−1) taps, so
below ``MIN_BLOCK_INPUT`` = 4 pixels a 7×7 kernel computes what a 5×5 can, and at 2×2 or less the 3×3, 5×5 and
7×7 candidates are one function: a search there compares names, not choices. ``strides=auto`` (the default at
every budget) takes the authors' strides (2,2,2,2,1,2,1) and sets their first stride-2s to 1 — the stem's,
then the earliest stages' — until every choice block sees at least 4×4 pixels of the dataset's images
(``fitted_strides``): 224×224 keeps all (7×7 at the end, the paper's setting), CIFAR's 32×32 becomes
1,1,2,2,1,2,1 (4×4 at the end), ImageNet16's 16×16 1,1,1,2,1,2,1 and digits' 8×8 1,1,1,1,1,2,1. ``auto``
adapts the resolution only: which blocks can be skipped (``skippable``) follows the authors' strides, so the
space's architectures are the same for every dataset. Strides given explicitly are used as they are, and
refused (one line, before anything runs) where they leave a choice block fewer than 4 pixels. The record's
``space_info`` names the strides a trial's networks used and every block's input side.

**Budgets** (dataset-independent): width multipliers 0.25 (``smoke``) and 0.5 (``small``); ``paper`` is the
authors' multiplier 1.0; the strides are ``auto`` at every budget.

**Final network and the shared evaluation protocol**: the chosen chain (a skipped block is absent),
``forward`` returns ``(logits, None)``; there is no auxiliary head (``auxiliary`` is ignored) and nothing to
drop-path (``drop_path_prob`` is kept for the shared trainer, never read): the space's defaults set
``auxiliary_weight`` 0, ``drop_path`` 0 and ``cutout`` 0 (the ProxylessNAS ImageNet pipeline has none); the
other evaluation keys are the shared ones (the shared trainer: SGD, cosine, gradient clip), not ProxylessNAS's
ImageNet schedule. No dropout before the classifier (the search code's 0).

**Genotype**: a tuple of 21 op names; string form one token per block, stages separated by `` | ``:
``k5e3 k3e3 zero zero | k7e3 k3e3 k5e3 k5e3 | k7e6 k5e3 k5e3 k5e3 | k5e6 k5e3 k5e3 k5e3 | k7e6 k7e6 k7e3 k7e3 |
k7e6`` (ProxylessNAS-Mobile). No benchmark table.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from harness.core.config import Key
from harness.core.data import DataInfo
from harness.core.errors import GenotypeError, UserError
from harness.core.registry import register_space
from spaces.base import EdgeFactory, EdgeId, SearchSpace

GROUP = "blocks"
STAGE_BLOCKS = (4, 4, 4, 4, 4, 1)
NUM_BLOCKS = sum(STAGE_BLOCKS)  # 21
MBCONV_OPS = ("k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6")  # (kernel, expand) as kKeE
ZERO = "zero"
OP_NAMES = (*MBCONV_OPS, ZERO)
BN_MOMENTUM, BN_EPS = 0.1, 1e-3
WIDTH_FIELDS = ("stem", "first", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "last")
STRIDE_FIELDS = ("stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6")
DEFAULT_WIDTHS = "32,16,24,40,80,96,192,320,1280"
AUTHORS_STRIDES = (2, 2, 2, 2, 1, 2, 1)  # the authors' ImageNet strides: 224×224 → 7×7
AUTO = "auto"
# The smallest input a choice block's depthwise k×k convolution (padding k//2) may see: on an H×H input it only
# ever reads the central (2H−1)×(2H−1) taps, so below 4 pixels the 7×7 kernel computes what a 5×5 can, and at
# 2 pixels or fewer 3×3, 5×5 and 7×7 are one function.
MIN_BLOCK_INPUT = 4

Genotype = tuple[str, ...]


def _int_list(text: str, count: int, what: str) -> tuple[int, ...]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"not a comma-separated list of integers ({what})") from None
    if len(values) != count:
        raise ValueError(f"{len(values)} values, expected {count} ({what})")
    return values


def _check_widths(text: str) -> str:
    values = _int_list(text, len(WIDTH_FIELDS), ", ".join(WIDTH_FIELDS))
    if min(values) < 1:
        raise ValueError("every width must be at least 1")
    return ",".join(map(str, values))


def _check_strides(text: str) -> str:
    if str(text).strip() == AUTO:
        return AUTO
    values = _int_list(text, len(STRIDE_FIELDS), ", ".join(STRIDE_FIELDS))
    if any(v not in (1, 2) for v in values):
        raise ValueError("every stride must be 1 or 2")
    return ",".join(map(str, values))


def make_divisible(value: float, divisor: int = 8) -> int:
    """The authors' rounding of a scaled width: to the nearest multiple of ``divisor`` (at least ``divisor``),
    one multiple more when rounding down lost over 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def scaled_widths(widths: tuple[int, ...], mult: float) -> tuple[int, ...]:
    """The widths at multiplier ``mult``: every width rounded by ``make_divisible``; the last one is not scaled
    below 1.0 (the authors' rule for the 1280-wide layer)."""
    *body, last = widths
    return (*(make_divisible(w * mult) for w in body), make_divisible(last * max(mult, 1.0)))


def block_layout(widths: tuple[int, ...], strides: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(in width, out width, stride) of the 21 choice blocks."""
    layout, c_in = [], widths[1]
    for stage, blocks in enumerate(STAGE_BLOCKS):
        c_out = widths[2 + stage]
        for j in range(blocks):
            layout.append((c_in, c_out, strides[1 + stage] if j == 0 else 1))
            c_in = c_out
    return layout


def _halve(size: int, stride: int) -> int:
    """The output side of a k×k convolution with padding k//2 and ``stride`` on a ``size``-pixel side."""
    return -(-size // stride)


def block_inputs(image_size: int, strides: tuple[int, ...]) -> list[int]:
    """The side of each choice block's input (before its own stride) for ``image_size``-pixel images."""
    size = _halve(image_size, strides[0])
    sides = []
    for stage, blocks in enumerate(STAGE_BLOCKS):
        for j in range(blocks):
            sides.append(size)
            size = _halve(size, strides[1 + stage] if j == 0 else 1)
    return sides


def fitted_strides(image_size: int) -> tuple[int, ...]:
    """``strides=auto``: the authors' strides with their first stride-2s set to 1 (the stem's first, then the
    earliest stages'), as few as needed for every choice block to see at least ``MIN_BLOCK_INPUT`` pixels:
    224×224 keeps all five (7×7 at the end), CIFAR's 32×32 drops the stem's and the first stage's
    (1,1,2,2,1,2,1: 4×4 at the end), ImageNet16's 16×16 three, digits' 8×8 four (only the fifth stage halves)."""
    strides = list(AUTHORS_STRIDES)
    for position, stride in enumerate(AUTHORS_STRIDES):
        if min(block_inputs(image_size, tuple(strides))) >= MIN_BLOCK_INPUT:
            break
        if stride == 2:
            strides[position] = 1
    return tuple(strides)


def stage_of(block: int) -> tuple[int, int]:
    """(stage, position in the stage) of choice block ``block``, both 0-based."""
    for stage, blocks in enumerate(STAGE_BLOCKS):
        if block < blocks:
            return stage, block
        block -= blocks
    raise IndexError(block)


# --- networks ------------------------------------------------------------------------------------------

def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM, eps=BN_EPS)


def init_weights(module: nn.Module) -> nn.Module:
    """The authors' initialisation: conv normal(0, sqrt(2/(k·k·C_out))), BN γ=1 β=0, Linear ±1/sqrt(fan_in)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.weight.size(1))
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class MBConv(nn.Module):
    """Inverted bottleneck: [1×1 expand → BN → ReLU6] → k×k depthwise → BN → ReLU6 → 1×1 project → BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = round(c_in * expand)
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, mid, 1, bias=False), _bn(mid), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False), _bn(mid),
                   nn.ReLU6(inplace=True), nn.Conv2d(mid, c_out, 1, bias=False), _bn(c_out)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Residual(nn.Module):
    """x + mbconv(x): an MBConv candidate of a skippable block."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Skip(nn.Module):
    """The ``zero`` candidate of a skippable block: the block is skipped, its output is its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def make_block(op: str, c_in: int, c_out: int, stride: int, skippable: bool) -> nn.Module:
    """Op ``op`` as a whole block: ``Skip``, ``Residual(MBConv)`` on a skippable block, else ``MBConv``."""
    if op == ZERO:
        if not skippable:
            raise ValueError("zero on a block that cannot be skipped")
        return Skip()
    kernel, expand = int(op[1]), int(op[3])
    conv = MBConv(c_in, c_out, kernel, stride, expand)
    return Residual(conv) if skippable else conv


class Chain(nn.Module):
    """Stem, the fixed first MBConv, the 21 blocks (``blocks``), the 1×1 mix layer and the classifier.

    ``forward`` returns logits (the supernet, ``final`` False) or ``(logits, None)`` (the final network)."""

    def __init__(self, blocks: list[nn.Module], widths: tuple[int, ...], stem_stride: int, info: DataInfo,
                 final: bool):
        super().__init__()
        self.final = final
        self.drop_path_prob = 0.0  # set by the shared trainer; the chain never drops paths
        stem, first, last = widths[0], widths[1], widths[-1]
        self.stem = init_weights(nn.Sequential(nn.Conv2d(info.in_channels, stem, 3, stem_stride, 1, bias=False),
                                               _bn(stem), nn.ReLU6(inplace=True)))
        self.first = init_weights(MBConv(stem, first, 3, 1, 1))
        self.blocks = nn.ModuleList(blocks)
        self.mix = init_weights(nn.Sequential(nn.Conv2d(widths[-2], last, 1, bias=False), _bn(last),
                                              nn.ReLU6(inplace=True)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = init_weights(nn.Linear(last, info.num_classes))

    def forward(self, x: torch.Tensor) -> Any:
        out = self.first(self.stem(x))
        for block in self.blocks:
            out = block(out)
        logits = self.classifier(self.pool(self.mix(out)).flatten(1))
        return (logits, None) if self.final else logits


# --- the space -----------------------------------------------------------------------------------------

@register_space
class ProxylessSpace(SearchSpace):
    """ProxylessNAS: 21 chained choice blocks × (6 MBConvs, plus skipping where stride 1 and in = out)."""

    name = "proxyless"
    description = "ProxylessNAS: a chain of 21 MBConv blocks x (6 kernel/expand choices + skip where allowed)"
    features = frozenset({"sample", "edges", "tensor-ops", "encoding"})  # a chain of one cell; zero on some blocks only
    op_names = OP_NAMES
    size_keys: ClassVar[dict[str, Key]] = {
        "widths": Key(None, "proxyless: widths of the stem, first block, six stages and last layer (9 integers)",
                      check=_check_widths, kind=str,
                      valid="9 comma-separated integers >= 1: stem, first, stage1..stage6, last"),
        "width_mult": Key(None, "proxyless: width multiplier of the search network (supernet, random search's "
                                "candidates)", "(0, inf)", kind=float),
        "eval_width_mult": Key(None, "proxyless: width multiplier of the final network", "(0, inf)", kind=float),
        "strides": Key(None, "proxyless: strides of the stem and of each stage's first block (7 values, 1 or 2), or "
                             "'auto': the authors' strides with the first stride-2s dropped until every choice block "
                             "sees at least 4x4 pixels of the dataset's images", check=_check_strides, kind=str,
                       valid="'auto' or 7 comma-separated values 1 or 2: stem, stage1..stage6"),
    }
    defaults: ClassVar[dict[str, Any]] = {
        "widths": DEFAULT_WIDTHS, "width_mult": 1.0, "eval_width_mult": 1.0, "strides": AUTO,
        "cutout": 0, "auxiliary_weight": 0.0, "drop_path": 0.0,
    }
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"width_mult": 0.25, "eval_width_mult": 0.25},
        "small": {"width_mult": 0.5, "eval_width_mult": 0.5},
    }

    @classmethod
    def validate_config(cls, cfg: dict[str, Any]) -> None:
        """No rule of the base class: the chain has no auxiliary head."""

    # --- sizes ----------------------------------------------------------------------------------
    def base_widths(self, size: str = "search") -> tuple[int, ...]:
        return _int_list(self.size_values(size)["widths"], len(WIDTH_FIELDS), "widths")

    def strides(self, size: str = "search") -> tuple[int, ...]:
        """The strides that fix the space's choices (which blocks can be skipped): the configured ones, or with
        ``auto`` the authors' (``auto`` adapts the networks' resolution, never the set of architectures)."""
        text = self.size_values(size)["strides"]
        return AUTHORS_STRIDES if text == AUTO else _int_list(text, len(STRIDE_FIELDS), "strides")

    def network_strides(self, size: str, image_size: int) -> tuple[int, ...]:
        """The strides of the network at ``size`` for ``image_size``-pixel images: ``auto`` fitted to them
        (``fitted_strides``); configured ones that leave a choice block fewer than ``MIN_BLOCK_INPUT`` pixels
        are refused (one line), since its kernels would then not be distinct choices."""
        text = self.size_values(size)["strides"]
        if text == AUTO:
            return fitted_strides(image_size)
        strides = self.strides(size)
        sides = block_inputs(image_size, strides)
        small = [i for i, side in enumerate(sides) if side < MIN_BLOCK_INPUT]
        if small:
            blocks = f"block {small[0]}" if len(small) == 1 else f"blocks {small[0]}–{small[-1]}"
            auto = ",".join(map(str, fitted_strides(image_size)))
            raise UserError(f"proxyless: strides={text} on {image_size}x{image_size} images give choice {blocks} "
                            f"inputs smaller than {MIN_BLOCK_INPUT}x{MIN_BLOCK_INPUT} pixels (down to "
                            f"{min(sides)}x{min(sides)}), where their 3x3, 5x5 and 7x7 kernels are not distinct "
                            f"choices; use strides=auto ({auto} here) or fewer stride-2s")
        return strides

    def describe_network(self, info: DataInfo) -> dict[str, Any]:
        """The strides the trial's networks use for its images, and each choice block's input side."""
        strides = self.network_strides("search", info.image_size)
        return {"strides": ",".join(map(str, strides)), "strides_setting": self.size_values("search")["strides"],
                "block_inputs": block_inputs(info.image_size, strides)}

    def widths(self, size: str) -> tuple[int, ...]:
        """The widths of the network at ``size`` (``NETWORK_SIZES``), after its multiplier."""
        values = self.size_values(size)
        mult = values["width_mult"] if size == "search" else values["eval_width_mult"]
        return scaled_widths(self.base_widths(size), float(mult))

    def skippable(self, size: str = "search") -> tuple[bool, ...]:
        """Per block: stride 1 and input width = output width (of ``widths`` before the multiplier)."""
        return tuple(s == 1 and a == b for a, b, s in block_layout(self.base_widths(size), self.strides(size)))

    # --- topology -------------------------------------------------------------------------------
    def arch_shape(self) -> dict[str, tuple[int, int]]:
        return {GROUP: (NUM_BLOCKS, len(OP_NAMES))}

    def edge_ops(self, group: str, index: int) -> tuple[int, ...]:
        """The six MBConvs, plus ``zero`` where the block can be skipped."""
        if group != GROUP or not 0 <= index < NUM_BLOCKS:
            raise KeyError(f"no edge ({group!r}, {index})")
        return tuple(range(len(OP_NAMES) if self.skippable()[index] else len(MBCONV_OPS)))

    # --- networks -------------------------------------------------------------------------------
    def _blocks(self, widths: tuple[int, ...], strides: tuple[int, ...], skippable: tuple[bool, ...],
                make: Any) -> list[nn.Module]:
        return [make(i, c_in, c_out, stride, skip)
                for i, ((c_in, c_out, stride), skip) in enumerate(zip(block_layout(widths, strides), skippable))]

    def build_supernet(self, edge_factory: EdgeFactory, info: DataInfo) -> nn.Module:
        widths, strides = self.widths("search"), self.network_strides("search", info.image_size)

        def make(i: int, c_in: int, c_out: int, stride: int, skip: bool) -> nn.Module:
            ops = self.edge_ops(GROUP, i)
            candidates = nn.ModuleList(init_weights(make_block(OP_NAMES[o], c_in, c_out, stride, skip))
                                       for o in ops)
            return edge_factory(EdgeId(group=GROUP, index=i, cell=0, channels=c_out, ops=ops), candidates)

        return Chain(self._blocks(widths, strides, self.skippable("search"), make), widths, strides[0], info,
                     final=False)

    def build_network(self, genotype: Genotype, info: DataInfo, size: str = "eval",
                      auxiliary: bool = False) -> nn.Module:
        """The chain of ``genotype``'s blocks (a ``zero`` block is absent) at ``size``; ``auxiliary`` is ignored
        (no auxiliary head)."""
        genotype = self.check(genotype, size)
        widths, strides = self.widths(size), self.network_strides(size, info.image_size)

        def make(i: int, c_in: int, c_out: int, stride: int, skip: bool) -> nn.Module:
            return init_weights(make_block(genotype[i], c_in, c_out, stride, skip))

        blocks = [b for b in self._blocks(widths, strides, self.skippable(size), make) if not isinstance(b, Skip)]
        return Chain(blocks, widths, strides[0], info, final=True)

    # --- genotypes ------------------------------------------------------------------------------
    def check(self, genotype: Any, size: str = "search") -> Genotype:
        """``genotype`` as a tuple of 21 known op names, ``zero`` only on blocks that can be skipped at ``size``;
        else ``GenotypeError`` (one line)."""
        genotype = tuple(genotype)
        if len(genotype) != NUM_BLOCKS:
            raise GenotypeError(f"invalid proxyless genotype: {len(genotype)} blocks, expected {NUM_BLOCKS} "
                                f"(stages of {','.join(map(str, STAGE_BLOCKS))})")
        skippable = self.skippable(size)
        layout = block_layout(self.base_widths(size), self.strides(size))
        for i, op in enumerate(genotype):
            stage, position = stage_of(i)
            where = f"block {i} (stage {stage + 1}, position {position + 1})"
            if op not in OP_NAMES:
                raise GenotypeError(f"invalid proxyless genotype: unknown op {op!r} at {where}; valid: "
                                    f"{', '.join(OP_NAMES)}")
            if op == ZERO and not skippable[i]:
                c_in, c_out, stride = layout[i]
                why = f"stride {stride}" if stride != 1 else f"its input width {c_in} differs from its output {c_out}"
                raise GenotypeError(f"invalid proxyless genotype: {where} cannot be skipped ('zero'): {why}")
        return genotype

    def derive(self, scores: dict[str, np.ndarray]) -> Genotype:
        """Argmax per block over its choices (``zero`` only where the block can be skipped); equal scores go to
        the op earlier in ``op_names``."""
        return self.argmax_per_edge(scores, GROUP)

    def sample(self, rng: np.random.Generator) -> Genotype:
        """An independent uniform choice per block among its choices."""
        return self.uniform_per_edge(rng, GROUP)

    def parse(self, text: str) -> Genotype:
        stages = [s.split() for s in str(text).split("|")]
        if len(stages) != len(STAGE_BLOCKS) or any(len(s) != n for s, n in zip(stages, STAGE_BLOCKS)):
            raise GenotypeError(f"invalid proxyless genotype {text!r}: expected {len(STAGE_BLOCKS)} stages of "
                                f"{','.join(map(str, STAGE_BLOCKS))} ops separated by ' | ', got "
                                f"{len(stages)} stage(s) of {','.join(str(len(s)) for s in stages)}")
        return self.check([op for stage in stages for op in stage])

    def cell_graphs(self, genotype: Genotype) -> dict[str, list[tuple[str, str, str]]]:
        """One chain ``"blocks"``: node ``"0"`` is the stem's output and node ``"i"`` block i's (1..21); block i is
        the edge ``("i-1", "i", op)``, ``zero`` where the block is skipped (its input passes unchanged)."""
        genotype = self.check(genotype)
        return {GROUP: [(str(block), str(block + 1), op) for block, op in enumerate(genotype)]}

    def edge_labels(self, group: str) -> list[str]:
        """Block i is the edge ``"i-1→i"`` of ``cell_graphs``: ``0→1`` (block 1) ... ``20→21`` (block 21)."""
        return [f"{block}→{block + 1}" for block in range(NUM_BLOCKS)]

    def to_str(self, genotype: Genotype) -> str:
        genotype = self.check(genotype)
        parts, start = [], 0
        for blocks in STAGE_BLOCKS:
            parts.append(" ".join(genotype[start:start + blocks]))
            start += blocks
        return " | ".join(parts)

    def edge_choices(self, genotypes: list[Genotype]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every block, in order, with the genotype's op on it: rows ``[n, 21]`` = 0..20, ops the op indices."""
        codes = np.array([[OP_NAMES.index(op) for op in self.check(g)] for g in genotypes],
                         dtype=np.int64).reshape(len(genotypes), NUM_BLOCKS)
        rows = np.broadcast_to(np.arange(NUM_BLOCKS), codes.shape)
        return {GROUP: (rows, codes)}
