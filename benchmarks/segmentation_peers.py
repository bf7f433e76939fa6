"""Segmentation losses and metrics side by side with smp's and MONAI's (docs: Segmentation).

    python benchmarks/segmentation_peers.py           # prints the tables, writes results/
    python benchmarks/segmentation_peers.py --record  # the docs' record, docs/benchmarks/
    python benchmarks/segmentation_peers.py --smoke   # smaller batches; writes nothing

The same seeded (N, C, H, W) float64 logits and (N, H, W) masks go through softmetrics'
losses, segmentation_models_pytorch's (smp: `DiceLoss`, `JaccardLoss`, `TverskyLoss`,
`LovaszLoss`) and MONAI's (`DiceLoss`, `GeneralizedDiceLoss`, `TverskyLoss`; `MeanIoU` and
`DiceMetric` for the exact metrics). Four batches: every class in every image ("plain");
the same with a tenth of the pixels void (`ignore_index=255`); one class absent from the
whole batch; and the foreground-against-background masks with one logit channel (binary).

Each peer is called twice where its defaults differ from the definition softmetrics
computes: with the arguments that compute the same definition ("matched": no smoothing,
statistics pooled over the batch or per image as softmetrics' `multidim_average` says,
the same classes), and with its defaults. For matched calls the record keeps the absolute
difference of the values and the largest absolute difference of the gradients with
respect to the logits; for default calls the value only. The Lovász rows compare against
smp's `LovaszLoss`, which runs in float32 only. A MONAI without `ignore_index` (before
1.6.1, which needs torch 2.8) has no calls on the void batch: "—" there.

Writes `segmentation_peers.json` (the record), `segmentation_peers_table.md` (values) and
`segmentation_peers_api_table.md` (the call in each library) to `results/` or `--out
DIR`; `--record` writes them to `docs/benchmarks/`, where the Segmentation page includes
the tables.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    add_output_arguments,
    command_line,
    finish_record,
    output_dir,
    provenance_line,
    refuse_smoke_record,
    run_record,
    wrote,
)
from _machine import machine, write_atomic
from _peers import smp_losses

from softmetrics import SoftDiceLoss, SoftJaccardLoss, SoftTverskyLoss

Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
VOID = 255
SIZE = (4, 4, 32, 32)  # N, C, H, W
SMOKE_SIZE = (2, 3, 8, 8)
ALPHA, BETA, GAMMA = 0.3, 0.7, 0.75  # Tversky weights (FP, FN) and the focal exponent


# ---------------------------------------------------------------------------------------
# the inputs


def batches(size: tuple[int, int, int, int] = SIZE, seed: int = 0
            ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Seeded float64 logits and int64 masks: "plain" (every class in every image), "void"
    (a tenth of the pixels 255), "absent" (the last class in no image) and "binary" (one
    logit channel, the mask's foreground)."""
    n, c, h, w = size
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    mask = torch.randint(0, c, (n, h, w), generator=g)
    mask[:, 0, :c] = torch.arange(c)  # every class in every image
    void = mask.masked_fill((torch.rand(n, h, w, generator=g) < 0.1)
                            & (torch.arange(w) >= c), VOID)
    absent = mask.masked_fill(mask == c - 1, 0)
    return {"plain": (logits, mask), "void": (logits, void), "absent": (logits, absent),
            "binary": (logits[:, :1].contiguous(), (mask > 0).long())}


def onehot(mask: torch.Tensor, c: int) -> torch.Tensor:
    """(N, C, H, W) float64 one-hot of a mask; void pixels are all zero (MONAI's metrics
    read such pixels as the sentinel `ignore_index`)."""
    valid = mask != VOID
    return (F.one_hot(mask * valid, c).movedim(-1, 1) * valid[:, None]).double()


# ---------------------------------------------------------------------------------------
# the calls


@dataclass(frozen=True)
class Call:
    """One library's call: the text shown in the tables and the function it runs."""

    text: str
    fn: Fn


@dataclass(frozen=True)
class Case:
    """One definition on one batch: softmetrics' call, and each peer's matched and default
    calls (None: the peer has no such loss or option). `exact`: a metric, no gradient.
    `smp_is_default`: smp's matched call is its default (no argument changed)."""

    key: str
    label: str
    batch: str
    ours: Call
    smp: Call | None = None
    smp_default: Call | None = None
    monai: Call | None = None
    monai_default: Call | None = None
    exact: bool = False
    smp_is_default: bool = False


def _in_float32(loss: torch.nn.Module) -> Fn:
    """A loss that runs in float32 only (smp's `LovaszLoss` takes a dot product of the
    float64 errors with a float32 gradient), on the float64 batch; float32's rounding then
    bounds its agreement."""
    return lambda x, t: loss(x.float(), t).double()


def _mean_metric(loss: torch.nn.Module) -> Fn:
    return lambda x, t: loss.metric(x, t).double().mean()


def _takes(cls: Any, options: dict[str, Any]) -> bool:
    """Whether the installed release of a peer's class takes these keyword arguments
    (MONAI's `ignore_index` is newer than the MONAI that older torch releases can have)."""
    return set(options) <= set(inspect.signature(cls).parameters)


def _call(text: str, fn: Fn | None) -> Call | None:
    """The call, or None (no such call) where the installed peer lacks an argument."""
    return None if fn is None else Call(text, fn)


def _monai_metric(metric_cls: Any, c: int, **options: Any) -> Fn | None:
    """A MONAI metric on the one-hot argmax: the mean over images of each image's mean
    over the classes it keeps (`reduction="mean_channel"`, then the mean)."""
    if not _takes(metric_cls, options):
        return None

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        metric = metric_cls(include_background=True, reduction="mean_channel", **options)
        metric(y_pred=onehot(x.argmax(1), c), y=onehot(t, c))
        return metric.aggregate().double().mean()
    return fn


def cases(c: int, validate_args: bool = True) -> list[Case]:
    """Every comparison, for C classes; softmetrics' Modules with `validate_args` (the
    speed benchmark times both settings)."""
    from monai import losses as ml, metrics as mm

    smp = smp_losses()
    mc = dict(task="multiclass", num_classes=c, validate_args=validate_args)
    no_smooth = dict(smooth_nr=0.0, smooth_dr=0.0)
    monai_in = dict(softmax=True, to_onehot_y=True)

    def monai(cls: Any, **kw: Any) -> Fn | None:
        if not _takes(cls, kw):
            return None
        loss = cls(**monai_in, **kw)
        return lambda x, t: loss(x, t[:, None])

    def ours(loss: torch.nn.Module) -> Fn:
        return lambda x, t: loss(x, t)

    # (2k + 1) / C: they sum to C, so MONAI's mean over the classes of the weighted losses
    # is the weighted mean; for C = 4 exact in float32, in which a Loss keeps them
    weights = (2 * torch.arange(c, dtype=torch.float64) + 1) / c
    background = torch.ones(c, dtype=torch.float64)
    background[0] = 0
    present = torch.ones(c, dtype=torch.float64)
    present[-1] = 0
    listed = lambda v: "[" + ", ".join(f"{x:g}" for x in v.tolist()) + "]"  # noqa: E731
    out: list[Case] = []
    for batch in ("plain", "void"):
        ign = {"ignore_index": VOID} if batch == "void" else {}
        ign_text = ", ignore_index=255" if batch == "void" else ""
        out += [
            Case("dice", "Dice", batch,
                 Call(f"SoftDiceLoss(task=\"multiclass\", num_classes=C{ign_text})",
                      ours(SoftDiceLoss(**mc, **ign))),
                 smp=Call(f"DiceLoss(\"multiclass\"{ign_text})",
                          ours(smp.DiceLoss("multiclass", **ign))),
                 smp_is_default=True,
                 monai=_call(f"DiceLoss(softmax=True, to_onehot_y=True, batch=True, "
                            f"smooth_nr=0, smooth_dr=0{ign_text})",
                            monai(ml.DiceLoss, batch=True, **no_smooth, **ign)),
                 monai_default=_call(f"DiceLoss(softmax=True, to_onehot_y=True{ign_text})",
                                    monai(ml.DiceLoss, **ign))),
            Case("dice_samplewise", "Dice, per image", batch,
                 Call(f"SoftDiceLoss(task=\"multiclass\", num_classes=C, "
                      f"multidim_average=\"samplewise\"{ign_text})",
                      ours(SoftDiceLoss(**mc, multidim_average="samplewise", **ign))),
                 monai=_call(f"DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=0, "
                            f"smooth_dr=0{ign_text})",
                            monai(ml.DiceLoss, **no_smooth, **ign)),
                 monai_default=_call(f"DiceLoss(softmax=True, to_onehot_y=True{ign_text})",
                                    monai(ml.DiceLoss, **ign))),
            Case("jaccard", "Jaccard (IoU)", batch,
                 Call(f"SoftJaccardLoss(task=\"multiclass\", num_classes=C{ign_text})",
                      ours(SoftJaccardLoss(**mc, **ign))),
                 smp=Call(f"JaccardLoss(\"multiclass\"{ign_text})",
                          ours(smp.JaccardLoss("multiclass", **ign))),
                 smp_is_default=True,
                 monai=_call(f"DiceLoss(softmax=True, to_onehot_y=True, jaccard=True, "
                            f"batch=True, smooth_nr=0, smooth_dr=0{ign_text})",
                            monai(ml.DiceLoss, jaccard=True, batch=True, **no_smooth, **ign)),
                 monai_default=_call(f"DiceLoss(softmax=True, to_onehot_y=True, "
                                    f"jaccard=True{ign_text})",
                                    monai(ml.DiceLoss, jaccard=True, **ign))),
            Case("tversky", f"Tversky ({ALPHA:g}, {BETA:g})", batch,
                 Call(f"SoftTverskyLoss(task=\"multiclass\", num_classes=C, alpha={ALPHA:g}, "
                      f"beta={BETA:g}{ign_text})",
                      ours(SoftTverskyLoss(**mc, alpha=ALPHA, beta=BETA, **ign))),
                 smp=Call(f"TverskyLoss(\"multiclass\", alpha={ALPHA:g}, beta={BETA:g}"
                          f"{ign_text})",
                          ours(smp.TverskyLoss("multiclass", alpha=ALPHA, beta=BETA, **ign))),
                 smp_is_default=True,
                 monai=_call(f"TverskyLoss(softmax=True, to_onehot_y=True, alpha={ALPHA:g}, "
                            f"beta={BETA:g}, batch=True, smooth_nr=0, smooth_dr=0{ign_text})",
                            monai(ml.TverskyLoss, alpha=ALPHA, beta=BETA, batch=True,
                                  **no_smooth, **ign)),
                 monai_default=_call(f"TverskyLoss(softmax=True, to_onehot_y=True, "
                                    f"alpha={ALPHA:g}, beta={BETA:g}{ign_text})",
                                    monai(ml.TverskyLoss, alpha=ALPHA, beta=BETA, **ign))),
        ]
        binary = "binary" if batch == "plain" else None
        if binary:
            out.append(Case(
                "focal_tversky_binary", f"focal Tversky, gamma={GAMMA:g}, binary", "binary",
                Call(f"SoftTverskyLoss(task=\"binary\", alpha={ALPHA:g}, beta={BETA:g}, "
                     f"gamma={GAMMA:g})",
                     ours(SoftTverskyLoss(task="binary", alpha=ALPHA, beta=BETA,
                                          gamma=GAMMA, validate_args=validate_args))),
                smp=Call(f"TverskyLoss(\"binary\", alpha={ALPHA:g}, beta={BETA:g}, "
                         f"gamma={GAMMA:g})",
                         ours(smp.TverskyLoss("binary", alpha=ALPHA, beta=BETA,
                                              gamma=GAMMA))),
                smp_is_default=True))
        out.append(Case(
            "focal_tversky", f"focal Tversky, gamma={GAMMA:g}", batch,
            Call(f"SoftTverskyLoss(task=\"multiclass\", num_classes=C, alpha={ALPHA:g}, "
                 f"beta={BETA:g}, gamma={GAMMA:g}{ign_text})",
                 ours(SoftTverskyLoss(**mc, alpha=ALPHA, beta=BETA, gamma=GAMMA, **ign))),
            smp_default=Call(f"TverskyLoss(\"multiclass\", alpha={ALPHA:g}, beta={BETA:g}, "
                             f"gamma={GAMMA:g}{ign_text})",
                             ours(smp.TverskyLoss("multiclass", alpha=ALPHA, beta=BETA,
                                                  gamma=GAMMA, **ign)))))
    out += [
        Case("generalized_dice", "generalized Dice", "plain",
             Call("SoftDiceLoss(task=\"multiclass\", num_classes=C, "
                  "class_weights=\"generalized\")",
                  ours(SoftDiceLoss(**mc, class_weights="generalized"))),
             monai=_call("GeneralizedDiceLoss(softmax=True, to_onehot_y=True, batch=True, "
                        "smooth_nr=0, smooth_dr=0)",
                        monai(ml.GeneralizedDiceLoss, batch=True, **no_smooth)),
             monai_default=_call("GeneralizedDiceLoss(softmax=True, to_onehot_y=True)",
                                monai(ml.GeneralizedDiceLoss))),
        Case("generalized_dice_samplewise", "generalized Dice, per image", "plain",
             Call("SoftDiceLoss(task=\"multiclass\", num_classes=C, "
                  "class_weights=\"generalized\", multidim_average=\"samplewise\")",
                  ours(SoftDiceLoss(**mc, class_weights="generalized",
                                    multidim_average="samplewise"))),
             monai=_call("GeneralizedDiceLoss(softmax=True, to_onehot_y=True, smooth_nr=0, "
                        "smooth_dr=0)", monai(ml.GeneralizedDiceLoss, **no_smooth)),
             monai_default=_call("GeneralizedDiceLoss(softmax=True, to_onehot_y=True)",
                                monai(ml.GeneralizedDiceLoss))),
        Case("generalized_dice_absent", "generalized Dice", "absent",
             Call("SoftDiceLoss(task=\"multiclass\", num_classes=C, "
                  "class_weights=\"generalized\")",
                  ours(SoftDiceLoss(**mc, class_weights="generalized"))),
             monai=_call("GeneralizedDiceLoss(softmax=True, to_onehot_y=True, batch=True, "
                        "smooth_nr=0, smooth_dr=0)",
                        monai(ml.GeneralizedDiceLoss, batch=True, **no_smooth))),
        Case("class_weights", f"Dice, class weights {listed(weights)}", "plain",
             Call(f"SoftDiceLoss(task=\"multiclass\", num_classes=C, "
                  f"class_weights=torch.tensor({listed(weights)}))",
                  ours(SoftDiceLoss(**mc, class_weights=weights))),
             smp=Call(f"DiceLoss(\"multiclass\", class_weights={listed(weights)})",
                      ours(smp.DiceLoss("multiclass", class_weights=weights.tolist()))),
                 smp_is_default=True,
             monai=_call(f"DiceLoss(softmax=True, to_onehot_y=True, batch=True, smooth_nr=0, "
                        f"smooth_dr=0, weight={listed(weights)})",
                        monai(ml.DiceLoss, batch=True, weight=weights, **no_smooth))),
        Case("no_background", "Dice without class 0", "plain",
             Call(f"SoftDiceLoss(task=\"multiclass\", num_classes=C, "
                  f"class_weights=torch.tensor({listed(background)}))",
                  ours(SoftDiceLoss(**mc, class_weights=background))),
             smp=Call(f"DiceLoss(\"multiclass\", classes={list(range(1, c))})",
                      ours(smp.DiceLoss("multiclass", classes=list(range(1, c))))),
             monai=_call("DiceLoss(softmax=True, to_onehot_y=True, include_background=False, "
                        "batch=True, smooth_nr=0, smooth_dr=0)",
                        monai(ml.DiceLoss, include_background=False, batch=True,
                              **no_smooth))),
        Case("absent_default", "Dice (default rules)", "absent",
             Call("SoftDiceLoss(task=\"multiclass\", num_classes=C)", ours(SoftDiceLoss(**mc))),
             smp_default=Call("DiceLoss(\"multiclass\")", ours(smp.DiceLoss("multiclass"))),
             monai_default=_call("DiceLoss(softmax=True, to_onehot_y=True)",
                                monai(ml.DiceLoss))),
        Case("absent_include", "Dice, absent class counted", "absent",
             Call("SoftDiceLoss(task=\"multiclass\", num_classes=C, "
                  "absent_classes=\"include\")",
                  ours(SoftDiceLoss(**mc, absent_classes="include"))),
             monai=_call("DiceLoss(softmax=True, to_onehot_y=True, batch=True, smooth_nr=0, "
                        "smooth_dr=0)", monai(ml.DiceLoss, batch=True, **no_smooth))),
        Case("absent_present_only", "Dice over the present classes", "absent",
             Call(f"SoftDiceLoss(task=\"multiclass\", num_classes=C, "
                  f"class_weights=torch.tensor({listed(present)}))",
                  ours(SoftDiceLoss(**mc, class_weights=present))),
             smp=Call(f"DiceLoss(\"multiclass\", classes={list(range(c - 1))})",
                      ours(smp.DiceLoss("multiclass", classes=list(range(c - 1)))))),
    ]
    for batch in ("plain", "void"):
        ign = {"ignore_index": VOID} if batch == "void" else {}
        ign_text = ", ignore_index=255" if batch == "void" else ""
        out += [
            Case("lovasz", "Lovász", batch,
                 Call(f"SoftJaccardLoss(task=\"multiclass\", num_classes=C, "
                      f"relaxation=\"lovasz\"{ign_text})",
                      ours(SoftJaccardLoss(**mc, relaxation="lovasz", **ign))),
                 smp=Call(f"LovaszLoss(\"multiclass\"{ign_text})",
                          _in_float32(smp.LovaszLoss("multiclass", **ign)))),
            Case("lovasz_samplewise", "Lovász, per image", batch,
                 Call(f"SoftJaccardLoss(task=\"multiclass\", num_classes=C, "
                      f"relaxation=\"lovasz\", multidim_average=\"samplewise\"{ign_text})",
                      ours(SoftJaccardLoss(**mc, relaxation="lovasz",
                                           multidim_average="samplewise", **ign))),
                 smp=Call(f"LovaszLoss(\"multiclass\", per_image=True{ign_text})",
                          _in_float32(smp.LovaszLoss("multiclass", per_image=True,
                                                      **ign)))),
        ]
    for batch in ("plain", "void", "absent"):
        ign = {"ignore_index": VOID} if batch == "void" else {}
        ign_text = ", ignore_index=255" if batch == "void" else ""
        for key, name, loss_cls, metric_cls in (
                ("miou", "mean IoU", SoftJaccardLoss, mm.MeanIoU),
                ("mdice", "mean Dice", SoftDiceLoss, mm.DiceMetric)):
            counted = loss_cls(**mc, multidim_average="samplewise",
                               absent_classes="include", zero_division=1.0, **ign)
            default = loss_cls(**mc, multidim_average="samplewise", **ign)
            out.append(Case(
                key, f"exact {name}, per image" + (", absent class counted"
                                                   if batch == "absent" else ""), batch,
                Call(f"{loss_cls.__name__}(task=\"multiclass\", num_classes=C, "
                     f"multidim_average=\"samplewise\", absent_classes=\"include\", "
                     f"zero_division=1{ign_text}).metric(x, y).mean()",
                     _mean_metric(counted)),
                monai=_call(f"{metric_cls.__name__}(reduction=\"mean_channel\", "
                           f"ignore_empty=False{ign_text})",
                           _monai_metric(metric_cls, c, ignore_empty=False, **ign)),
                monai_default=_call(f"{metric_cls.__name__}(reduction=\"mean_channel\""
                                   f"{ign_text})", _monai_metric(metric_cls, c, **ign)),
                exact=True))
            if batch == "absent":
                out.append(Case(
                    key + "_skip", f"exact {name}, per image (default rules)", batch,
                    Call(f"{loss_cls.__name__}(task=\"multiclass\", num_classes=C, "
                         f"multidim_average=\"samplewise\").metric(x, y).mean()",
                         _mean_metric(default)),
                    monai_default=_call(f"{metric_cls.__name__}(reduction=\"mean_channel\")",
                                       _monai_metric(metric_cls, c)),
                    exact=True))
    return out


# ---------------------------------------------------------------------------------------
# the comparison


def evaluate(fn: Fn, logits: torch.Tensor, target: torch.Tensor, grad: bool
             ) -> tuple[float, torch.Tensor | None]:
    """The value and (with `grad`) the gradient with respect to the logits."""
    x = logits.detach().clone().requires_grad_(grad)
    value = fn(x, target)
    if not grad:
        return float(value.detach()), None
    (g,) = torch.autograd.grad(value, x)
    return float(value.detach()), g


def compare(size: tuple[int, int, int, int] = SIZE, seed: int = 0) -> list[dict[str, Any]]:
    """One row per case: softmetrics' value and each peer call's value, with the value's
    and the gradient's largest absolute difference for the matched calls."""
    data = batches(size, seed)
    rows = []
    for case in cases(size[1]):
        logits, target = data[case.batch]
        value, grad = evaluate(case.ours.fn, logits, target, not case.exact)
        row: dict[str, Any] = dict(key=case.key, label=case.label, batch=case.batch,
                                   exact=case.exact, softmetrics=value,
                                   calls={"softmetrics": case.ours.text})
        for peer in ("smp", "smp_default", "monai", "monai_default"):
            call = getattr(case, peer)
            if call is None:
                continue
            matched = not peer.endswith("_default")
            v, g = evaluate(call.fn, logits, target, matched and not case.exact)
            row[peer] = v
            row["calls"][peer] = call.text
            if matched:
                if peer == "smp" and case.smp_is_default:
                    row["smp_default"] = v
                    row["calls"]["smp_default"] = call.text
                row[f"{peer}_abs_diff"] = abs(v - value)
                if g is not None and grad is not None:
                    row[f"{peer}_grad_max_abs_diff"] = float((g - grad).abs().max())
        rows.append(row)
    return rows


def max_matched_diffs(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The largest value and gradient differences over the matched calls."""
    values = [r[k] for r in rows for k in ("smp_abs_diff", "monai_abs_diff") if k in r]
    grads = [r[k] for r in rows for k in ("smp_grad_max_abs_diff", "monai_grad_max_abs_diff")
             if k in r]
    return {"value": max(values, default=0.0), "gradient": max(grads, default=0.0)}


# ---------------------------------------------------------------------------------------
# the tables

BATCHES = {"plain": "plain", "void": "void 255", "absent": "class absent",
           "binary": "binary"}


def _cell(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.6f}" if key in row else "—"


def _diff(row: dict[str, Any]) -> str:
    diffs = [row[k] for k in ("smp_abs_diff", "monai_abs_diff") if k in row]
    grads = [row[k] for k in ("smp_grad_max_abs_diff", "monai_grad_max_abs_diff") if k in row]
    if not diffs:
        return "—"
    text = f"{max(diffs):.0e}"
    return text + (f" / {max(grads):.0e}" if grads else "")


def table(record: dict[str, Any]) -> str:
    """The values table, with the record's provenance; its notes say what is matched."""
    rows = record["rows"]
    n, c, h, w = record["settings"]["size"]
    out = [provenance_line(record["run"], record["machine"], record["run"]["seconds"]) + ".\n",
           f"Losses (and exact metrics) on the same float64 logits, N = {n} images of C = {c} "
           f"classes, {h} x {w} pixels. *matched*: the peer called with the arguments that "
           "compute softmetrics' definition; *default*: its defaults. The last column is the "
           "largest absolute difference of a matched value from softmetrics' (and of the "
           "gradients with respect to the logits). — : no such loss or option.\n",
           "| loss | batch | softmetrics | smp, matched | smp, default | MONAI, matched | "
           "MONAI, default | max abs. difference (value / gradient) |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['label']} | {BATCHES[r['batch']]} | {r['softmetrics']:.6f} | "
                   f"{_cell(r, 'smp')} | {_cell(r, 'smp_default')} | {_cell(r, 'monai')} | "
                   f"{_cell(r, 'monai_default')} | {_diff(r)} |")
    return "\n".join(out) + "\n"


def api_table(record: dict[str, Any]) -> str:
    """The call in each library for each loss (the matched call, else the default), on the
    plain batch or the first batch a loss is compared on."""
    out = ["| loss | softmetrics | smp | MONAI |", "|---|---|---|---|"]
    seen = set()
    for r in record["rows"]:
        if r["key"] in seen or r["batch"] == "void":
            continue
        seen.add(r["key"])
        calls = r["calls"]
        smp = calls.get("smp", calls.get("smp_default"))
        monai = calls.get("monai", calls.get("monai_default"))
        cells = [f"`{x}`" if x else "—" for x in (calls["softmetrics"], smp, monai)]
        out.append(f"| {r['label']} ({BATCHES[r['batch']]}) | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _machine_and_versions() -> dict[str, Any]:
    """`_machine.machine` with the versions of softmetrics, MONAI and smp (smp's from its
    distribution's metadata: its package does not import without its encoders)."""
    from importlib.metadata import PackageNotFoundError, version

    info = machine({"softmetrics": "softmetrics", "monai": "monai"})
    try:
        info["segmentation_models_pytorch"] = version("segmentation_models_pytorch")
    except PackageNotFoundError:
        info["segmentation_models_pytorch"] = None
    return info


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="smaller batches; writes nothing")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    refuse_smoke_record(parser, args)
    run = run_record(command_line("segmentation_peers.py", argv))
    size = SMOKE_SIZE if args.smoke else SIZE
    rows = compare(size)
    record = {"run": finish_record(run), "machine": _machine_and_versions(),
              "settings": {"size": list(size), "seed": 0, "void": VOID, "alpha": ALPHA,
                           "beta": BETA, "gamma": GAMMA, "dtype": "float64"},
              "max_matched_abs_diff": max_matched_diffs(rows), "rows": rows}
    print(table(record))
    print(api_table(record))
    if args.smoke:
        return 0
    out = output_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "segmentation_peers.json", json.dumps(record, indent=1) + "\n")
    write_atomic(out / "segmentation_peers_table.md", table(record))
    write_atomic(out / "segmentation_peers_api_table.md", api_table(record))
    wrote(out, ["segmentation_peers.json (the record)", "segmentation_peers_table.md",
                "segmentation_peers_api_table.md"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
