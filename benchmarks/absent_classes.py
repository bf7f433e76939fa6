"""Plot how Dice losses treat classes absent from the target (docs: Classification).

    python benchmarks/absent_classes.py           # writes results/absent_classes.*
    python benchmarks/absent_classes.py --record  # the docs' figure, docs/benchmarks/

Two situations every segmentation loop meets, on near-perfect predictions:

- left: 4 classes, 2 of them in the batch's target; every pixel gives its true class
  probability 1 - 2q and each absent class q. The exact macro Dice (scikit-learn's default
  labels) is 1 for every q < 1/3, so the loss should fall to 0 as the predicted mass of the
  absent classes does.
- right: an image whose mask is empty, scored per image with `zero_division=1` (the
  convention "Dice is 1 when target and prediction are both empty"): the loss should fall
  to 0 as the predicted foreground mass does.

softmetrics is evaluated through its public losses; the other curves are the published
formulas of two segmentation libraries, evaluated here: segmentation_models_pytorch's
`DiceLoss` (absent classes masked to a loss of 0, then the mean over all classes) and
MONAI's `DiceLoss` (`1 - (2 I + 1e-5) / (|P| + |G| + 1e-5)` per class, its default
smoothing; `batch=True` pools the batch like softmetrics' global counts).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    add_output_arguments,
    command_line,
    finish_record,
    output_dir,
    run_record,
    wrote,
)
from _machine import machine, write_atomic

from softmetrics import SoftDiceLoss

PIXELS = 64  # per class present in the left panel's batch
SMOOTH_MONAI = 1e-5


def _multiclass_batch(q: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities (as log-probabilities, so that softmax recovers them) and targets."""
    target = torch.arange(2).repeat_interleave(PIXELS)
    probs = torch.full((2 * PIXELS, 4), q, dtype=torch.float64)
    probs[:, :2] = 1e-12  # the other present class: (almost) nothing
    probs[torch.arange(2 * PIXELS), target] = 1.0 - 2.0 * q - 1e-12
    return probs.log(), target


def _smp_multiclass(probs: torch.Tensor, target: torch.Tensor) -> float:
    onehot = torch.nn.functional.one_hot(target, probs.shape[1]).double()
    inter = (probs * onehot).sum(0)
    card = (probs + onehot).sum(0)
    loss = 1.0 - 2.0 * inter / card.clamp_min(1e-7)
    return float((loss * (onehot.sum(0) > 0)).mean())


def _monai(probs: torch.Tensor, onehot: torch.Tensor) -> float:
    inter = (probs * onehot).sum(0)
    card = (probs + onehot).sum(0)
    return float((1.0 - (2.0 * inter + SMOOTH_MONAI) / (card + SMOOTH_MONAI)).mean())


def left_panel(qs: np.ndarray) -> dict[str, list[float]]:
    skip = SoftDiceLoss(task="multiclass", num_classes=4)
    include = SoftDiceLoss(task="multiclass", num_classes=4, absent_classes="include")
    curves: dict[str, list[float]] = {"skip": [], "include": [], "smp": [], "monai": [],
                                      "exact": []}
    for q in qs:
        logp, target = _multiclass_batch(float(q))
        probs = logp.exp()
        curves["skip"].append(float(skip(logp, target)))
        curves["include"].append(float(include(logp, target)))
        curves["exact"].append(float(1.0 - skip.metric(logp, target)))
        curves["smp"].append(_smp_multiclass(probs, target))
        onehot = torch.nn.functional.one_hot(target, 4).double()
        curves["monai"].append(_monai(probs, onehot))
    return curves


def right_panel(masses: np.ndarray, pixels: int = 4096) -> dict[str, list[float]]:
    """An empty (pixels,) mask; the foreground probability is spread evenly."""
    target = torch.zeros(1, pixels, dtype=torch.long)
    one = SoftDiceLoss(task="binary", multidim_average="samplewise", zero_division=1.0)
    zero = SoftDiceLoss(task="binary", multidim_average="samplewise", zero_division=0.0)
    curves: dict[str, list[float]] = {"zd1": [], "zd0": [], "smp": [], "monai": []}
    for m in masses:
        p = torch.full((1, pixels), float(m) / pixels, dtype=torch.float64)
        logits = p.log() - torch.log1p(-p)
        curves["zd1"].append(float(one(logits, target)))
        curves["zd0"].append(float(zero(logits, target)))
        curves["smp"].append(0.0)  # an empty mask is masked out: no loss, no gradient
        fg = p.reshape(-1, 1)
        curves["monai"].append(_monai(fg, torch.zeros_like(fg)))
    return curves


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    out = output_dir(args)
    run = run_record(command_line("absent_classes.py", sys.argv[1:] if argv is None else argv))
    qs = np.logspace(-7, np.log10(0.3), 60)
    masses = np.logspace(-7, 2, 60)
    left, right = left_panel(qs), right_panel(masses)

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    x = qs * 2 * PIXELS
    ax0.semilogx(x, left["skip"], lw=2.2, label="softmetrics (default: absent classes skipped)")
    ax0.semilogx(x, left["include"], label='softmetrics, absent_classes="include"')
    ax0.semilogx(x, left["smp"], ls="--", label="smp DiceLoss (absent classes masked)")
    ax0.semilogx(x, left["monai"], ls=":", label="MONAI DiceLoss (batch=True)")
    ax0.semilogx(x, left["exact"], color="k", lw=1, label="exact: 1 - macro Dice")
    ax0.set_xlabel("predicted pixels of each absent class (soft count)")
    ax0.set_ylabel("loss")
    ax0.set_title("4 classes, 2 in the target, true classes predicted")
    ax0.legend(fontsize=7.5)
    ax1.semilogx(masses, right["zd1"], lw=2.2, label="softmetrics, zero_division=1")
    ax1.semilogx(masses, right["zd0"], label="softmetrics, zero_division=0")
    ax1.semilogx(masses, right["smp"], ls="--", label="smp DiceLoss (empty mask masked)")
    ax1.semilogx(masses, right["monai"], ls=":", label="MONAI DiceLoss")
    ax1.set_xlabel("predicted foreground pixels (soft count)")
    ax1.set_title("An empty mask, scored per image")
    ax1.legend(fontsize=7.5, loc="center", bbox_to_anchor=(0.5, 0.5))
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "absent_classes.png", dpi=110)

    def at(curve: list[float], xs: np.ndarray, value: float) -> float:
        return float(np.interp(np.log10(value), np.log10(xs), curve))

    points = {
        "left": {name: {str(v): round(at(c, x, v), 4) for v in (0.01, 1.0, 10.0)}
                 for name, c in left.items()},
        "right": {name: {str(v): round(at(c, masses, v), 4) for v in (0.01, 1.0, 10.0)}
                  for name, c in right.items()},
    }
    record = {"run": finish_record(run), "machine": machine(), "pixels_per_present_class": PIXELS,
              "monai_smooth": SMOOTH_MONAI, "loss_at_soft_count": points}
    write_atomic(out / "absent_classes.json", json.dumps(record, indent=1) + "\n")
    for panel, curves in points.items():
        for name, values in curves.items():
            print(f"{panel:5s} {name:8s} " + "  ".join(f"{k:>5s}: {v:.4f}"
                                                        for k, v in values.items()))
    wrote(out, ["absent_classes.png", "absent_classes.json"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
