"""Does training on a soft metric beat cross-entropy? One command, on real data.

    pip install -e ".[bench]"
    python benchmarks/compare_ce.py          # 9 datasets (10 seeds), 4 smaller tasks: ~5 min
    python benchmarks/compare_ce.py --full   # 20 seeds; the other tasks at full size, 10: ~75 min
    python benchmarks/compare_ce.py --datasets Default,digits --losses ce,f1 --seeds 3
    python benchmarks/compare_ce.py --tasks tabular    # select tasks (see `_tasks`)
    python benchmarks/compare_ce.py --record # rewrite the docs' record (docs/benchmarks/)

Every loss trains the same small MLP (one hidden layer of 64 ReLU units) with the same
optimiser (Adam), number of steps and batch size on stratified train/validation/test
splits that are fixed per seed. Each loss gets the same budget of hyper-parameter
configurations (a fixed Latin-hypercube design over the learning rate and, where the loss
has one, its temperature or mixing weight); for every reported metric, each loss's
configuration is chosen on the validation split by that metric, and the test value of the
chosen configuration is reported. Test metrics are computed by scikit-learn.

"CE + tuned threshold" is the cross-entropy model with its decision threshold (and
configuration) chosen on validation for the reported metric: the strong baseline for F1.

Results: mean and 95% t-interval over seeds; for each surrogate, the per-seed difference
to cross-entropy on the surrogate's own metric, with its paired 95% t interval over seeds
(the corrected resampled t of Nadeau and Bengio, 2003: the seeds re-split one dataset) and
its p-value (win: interval above 0; loss: below 0; tie otherwise), and Holm's correction
over each table of comparisons (`_common.paired`, `_common.holm`).
The console shows each loss's own metric next to cross-entropy's, with the difference, its
interval and the verdict. The files (JSON record, Markdown tables, PNG plots) go to
`results/` (ignored by git) or `--out DIR`; `--record` writes them to `docs/benchmarks/`
and rewrites the generated blocks of the docs page `docs/benchmarks/compare_ce.md`.

All the networks of one loss (seeds x configurations) train at once as a batch of
independent networks (batched matrix products and a batched Adam), which is what keeps the
datasets of the default run within a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _machine
import _tasks
from _common import (
    DOCS,
    HOLM_NOTE,
    RESPLIT_CORRECTION,
    RESULTS,
    BatchedAdam,
    Progress,
    add_output_arguments,
    command_line,
    configurations,
    console_verdict,
    few_seeds_caution,
    finish_record,
    holm,
    mean_ci,
    output_dir,
    paired,
    provenance_line,
    run_record,
    verdict_mark,
    wrote,
)
from _datasets import DATASETS, TASKS, Dataset, load, split
from _tasks import TASK_MODULES

PAGE = DOCS / "compare_ce.md"
# the docs page's generated blocks: everything between these markers is rewritten by a
# `--record` run
PAGE_MARKERS = {
    part: (f"<!-- compare_ce {part}: begin (written by benchmarks/compare_ce.py) -->",
           f"<!-- compare_ce {part}: end -->")
    for part in ("results", *TASK_MODULES)
}
# `--tasks`: the tabular datasets, then the tasks of their own modules (`_tasks`)
TASK_NAMES = ("tabular", *TASK_MODULES)

METRICS = ("accuracy", "f1", "mcc", "auroc", "ap", "jaccard")
METRIC_LABELS = {
    "accuracy": "accuracy",
    "f1": "F1 (macro for multiclass)",
    "mcc": "MCC",
    "auroc": "AUROC (macro one-vs-rest for multiclass)",
    "ap": "AP (macro for multiclass)",
    "jaccard": "Jaccard (macro for multiclass)",
}
METRIC_SHORT = {"accuracy": "acc", "f1": "F1", "mcc": "MCC", "auroc": "AUROC", "ap": "AP",
                "jaccard": "Jaccard"}
THRESHOLD_METRICS = ("accuracy", "f1", "mcc", "jaccard")


# ---------------------------------------------------------------------------------------
# losses


@dataclass(frozen=True)
class LossSpec:
    """One training objective of the comparison."""

    key: str
    label: str
    metric: str  # the metric the loss targets: its own metric in the win/tie/loss summary
    softmetrics_name: str | None = None  # the softmetrics Loss class it uses
    extra: str | None = None  # its own hyper-parameter besides the learning rate
    with_ce: bool = False  # adds cross-entropy (mixing weight `extra="weight"`)
    trains: bool = True  # False: reuses cross-entropy's networks (tuned threshold)
    tasks: tuple[str, ...] = ("binary", "multiclass")
    options: dict[str, Any] = field(default_factory=dict)  # per task: extra Loss options


LOSSES: dict[str, LossSpec] = {
    spec.key: spec
    for spec in [
        LossSpec("ce", "CE", "accuracy", with_ce=True),
        LossSpec("ce_thr", "CE + tuned threshold", "f1", trains=False, tasks=("binary",)),
        LossSpec("f1", "SoftF1", "f1", "SoftF1Loss", "temperature",
                 options={"multiclass": {"average": "macro"}}),
        LossSpec("ce_f1", "CE + w·SoftF1", "f1", "SoftF1Loss", "weight", with_ce=True,
                 options={"multiclass": {"average": "macro"}}),
        LossSpec("mcc", "SoftMCC", "mcc", "SoftMCCLoss", "temperature"),
        LossSpec("auroc", "SoftAUROC", "auroc", "SoftAUROCLoss", "temperature"),
        LossSpec("ap", "SoftAP", "ap", "SoftAveragePrecisionLoss", "temperature"),
        LossSpec("accuracy", "SoftAccuracy", "accuracy", "SoftAccuracyLoss", "temperature"),
        LossSpec("jaccard", "SoftJaccard", "jaccard", "SoftJaccardLoss", "temperature",
                 options={"multiclass": {"average": "macro"}}),
    ]
}


def resolve_loss_class(spec: LossSpec) -> type[torch.nn.Module] | None:
    """The softmetrics class a loss needs; a missing one stops the run with a clear message."""
    if spec.softmetrics_name is None:
        return None
    try:
        import softmetrics
    except ImportError as err:  # pragma: no cover - the package is the point of the benchmark
        raise SystemExit(f"compare_ce: cannot import softmetrics ({err}); "
                         f"install it with `pip install -e \".[bench]\"`") from err
    cls = getattr(softmetrics, spec.softmetrics_name, None)
    if cls is None:
        raise SystemExit(
            f"compare_ce: loss {spec.key!r} needs softmetrics.{spec.softmetrics_name}, which "
            f"this softmetrics ({softmetrics.__file__}) does not have. Select the losses to "
            f"run with --losses (available: {', '.join(LOSSES)})."
        )
    return cls


RANKING = ("SoftAUROCLoss", "SoftAveragePrecisionLoss")
TICKS = 10  # progress-bar steps per training task (dataset x loss)


class Objective:
    """Sum over every network (seed x configuration) of its own loss on its own batch.

    `logits` is (S, H, B) for binary and (S, H, B, C) for multiclass; `y` is (S, B). One
    Loss Module per configuration (its temperature) is applied to the S networks of that
    configuration at once where the Loss allows it:

    - classification losses with `multidim_average="samplewise"` on (S, B) or (S, C, B)
      logits: one value per seed, and the Module returns their mean;
    - binary ranking losses as `task="multilabel"` with one column per seed: the
      per-column (per-seed) AUROC/AP, macro-averaged;
    - multiclass ranking losses one seed at a time (`task="multiclass"`, macro one-vs-rest).

    A mean over seeds is turned back into a sum (times S), so that every network gets
    the gradient of its own loss.
    """

    def __init__(self, spec: LossSpec, task: str, num_classes: int,
                 configs: list[dict[str, float]], num_seeds: int) -> None:
        self.spec, self.task, self.num_classes = spec, task, num_classes
        cls = resolve_loss_class(spec)
        self.modules: list[torch.nn.Module] = []
        self.weights = [cfg.get("weight", 1.0) for cfg in configs]
        self.per_seed = task == "multiclass" and spec.softmetrics_name in RANKING
        if cls is None:
            return
        for cfg in configs:
            opts: dict[str, Any] = {"temperature": cfg.get("temperature", 1.0),
                                    "validate_args": False}
            if spec.softmetrics_name in RANKING:
                if task == "binary":
                    opts.update(task="multilabel", num_classes=num_seeds, average="macro")
                else:
                    opts.update(task="multiclass", num_classes=num_classes, average="macro")
            else:
                opts.update(task=task, multidim_average="samplewise")
                if task == "multiclass":
                    opts["num_classes"] = num_classes
            opts.update(spec.options.get(task, {}))
            self.modules.append(cls(**opts))

    def cross_entropy(self, logits: Tensor, y: Tensor) -> Tensor:
        s, h, b = logits.shape[:3]
        if self.task == "binary":
            target = y[:, None, :].expand(s, h, b).to(logits.dtype)
            return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(-1)
        target = y[:, None, :].expand(s, h, b).reshape(-1)
        ce = F.cross_entropy(logits.reshape(s * h * b, -1), target, reduction="none")
        return ce.view(s, h, b).mean(-1)

    def surrogate(self, h: int, logits: Tensor, y: Tensor) -> Tensor:
        """Sum over seeds of configuration `h`'s loss; `logits` is (S, B) or (S, B, C)."""
        module, s = self.modules[h], logits.shape[0]
        if self.per_seed:
            return sum(module(logits[i], y[i]) for i in range(s))
        if self.spec.softmetrics_name in RANKING:  # binary: (B, S) multilabel columns
            return module(logits.t(), y.t()) * s
        z = logits if self.task == "binary" else logits.transpose(1, 2)  # (S, C, B)
        return module(z, y) * s

    def __call__(self, logits: Tensor, y: Tensor) -> Tensor:
        total = logits.new_zeros(())
        if self.spec.with_ce:
            total = total + self.cross_entropy(logits, y).sum()
        for h in range(len(self.modules)):
            value = self.surrogate(h, logits[:, h], y)
            weight = self.weights[h] if self.spec.with_ce else 1.0
            total = total + weight * value
        return total


# ---------------------------------------------------------------------------------------
# batched MLPs and a batched Adam


def init_mlp(seeds: Sequence[int], h: int, d: int, hidden: int, out: int) -> list[Tensor]:
    """Parameters (S, H, ...) initialised as `nn.Linear` does, identical across H (and across
    losses) for one seed, so that every comparison is paired down to the initialisation."""
    params: list[list[Tensor]] = [[], [], [], []]
    for seed in seeds:
        g = torch.Generator().manual_seed(1_000_003 * seed + 17)
        b1, b2 = 1 / math.sqrt(d), 1 / math.sqrt(hidden)
        w = [
            (torch.rand(d, hidden, generator=g) * 2 - 1) * b1,
            (torch.rand(1, hidden, generator=g) * 2 - 1) * b1,
            (torch.rand(hidden, out, generator=g) * 2 - 1) * b2,
            (torch.rand(1, out, generator=g) * 2 - 1) * b2,
        ]
        for i, t in enumerate(w):
            params[i].append(t)
    return [torch.stack(p)[:, None].expand(-1, h, -1, -1).contiguous().requires_grad_()
            for p in params]


def mlp(params: Sequence[Tensor], x: Tensor) -> Tensor:
    """`x` (S, N, d) -> logits (S, H, N, out)."""
    w1, b1, w2, b2 = params
    hidden = torch.relu(torch.matmul(x[:, None], w1) + b1)
    return torch.matmul(hidden, w2) + b2


def batch_indices(seeds: Sequence[int], n: int, batch: int, steps: int) -> Tensor:
    """(steps, S, B) training-row indices: epochs of a permutation fixed per seed."""
    if batch >= n:
        return torch.arange(n).expand(steps, len(seeds), n)
    per_epoch = n // batch
    out = []
    for seed in seeds:
        g = torch.Generator().manual_seed(7919 * seed + 3)
        rows = []
        while len(rows) < steps:
            perm = torch.randperm(n, generator=g)
            rows.extend(perm[i * batch:(i + 1) * batch] for i in range(per_epoch))
        out.append(torch.stack(rows[:steps]))
    return torch.stack(out, dim=1)


def train(objective: Objective, configs: list[dict[str, float]], data: dict[str, Tensor],
          seeds: Sequence[int], *, steps: int, batch: int, hidden: int,
          tick: Callable[[int], Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train S x H networks at once; return validation and test logits, (S, H, N[, C])."""
    x, y = data["x_train"], data["y_train"]
    out = 1 if objective.task == "binary" else objective.num_classes
    params = init_mlp(seeds, len(configs), x.shape[-1], hidden, out)
    adam = BatchedAdam(params, [c["lr"] for c in configs], axis=1)  # (S, configs, ...)
    index = batch_indices(seeds, x.shape[1], batch, steps)
    rows = torch.arange(len(seeds))[:, None]
    for step in range(steps):
        idx = index[step]
        logits = mlp(params, x[rows, idx])
        if objective.task == "binary":
            logits = logits.squeeze(-1)
        loss = objective(logits, y[rows, idx])
        grads = torch.autograd.grad(loss, params)
        adam.step(grads)
        if tick is not None:
            tick(TICKS * (step + 1) // steps - TICKS * step // steps)
    with torch.no_grad():
        outs = []
        for part in ("val", "test"):
            z = mlp(params, data[f"x_{part}"])
            z = z.squeeze(-1) if objective.task == "binary" else z
            outs.append(torch.nan_to_num(z.double(), nan=0.0, posinf=1e6, neginf=-1e6).numpy())
    return outs[0], outs[1]


# ---------------------------------------------------------------------------------------
# metrics (scikit-learn) and the tuned threshold


def sk_metrics(y: np.ndarray, scores: np.ndarray, task: str, num_classes: int,
               threshold: float | None = None, which: Sequence[str] = METRICS
               ) -> dict[str, float]:
    """The test metrics, computed by scikit-learn. Binary `scores` are logits (N,);
    multiclass ones are logits (N, C). A binary `threshold` applies to the logit."""
    from sklearn import metrics as skm
    from sklearn.preprocessing import label_binarize

    out: dict[str, float] = {}
    if task == "binary":
        pred = (scores > (0.0 if threshold is None else threshold)).astype(np.int64)
        rank_scores = scores
        average = "binary"
    else:
        pred = scores.argmax(axis=1)
        shifted = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        rank_scores = probs
        average = "macro"
    for m in which:
        if m == "accuracy":
            out[m] = skm.accuracy_score(y, pred)
        elif m == "f1":
            out[m] = skm.f1_score(y, pred, average=average, zero_division=0.0)
        elif m == "mcc":
            out[m] = skm.matthews_corrcoef(y, pred)
        elif m == "jaccard":
            out[m] = skm.jaccard_score(y, pred, average=average, zero_division=0.0)
        elif m == "auroc":
            if task == "binary":
                out[m] = skm.roc_auc_score(y, rank_scores)
            else:
                out[m] = skm.roc_auc_score(y, rank_scores, multi_class="ovr", average="macro",
                                           labels=np.arange(num_classes))
        elif m == "ap":
            if task == "binary":
                out[m] = skm.average_precision_score(y, rank_scores)
            else:
                onehot = label_binarize(y, classes=np.arange(num_classes))
                out[m] = skm.average_precision_score(onehot, rank_scores, average="macro")
    return {k: float(v) for k, v in out.items()}


def threshold_sweep(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every distinct decision threshold on `scores` and the validation metrics it gives.

    The counts come from scikit-learn's `roc_curve` (all thresholds kept); each returned
    threshold lies halfway between two consecutive distinct scores, so it reproduces the
    same validation decisions while leaving a margin on both sides.
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, thr = roc_curve(y, scores, drop_intermediate=False)
    p, n = float((y == 1).sum()), float((y == 0).sum())
    tp, fp = tpr * p, fpr * n
    fn, tn = p - tp, n - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        metrics = {
            "accuracy": (tp + tn) / (p + n),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
            "jaccard": np.where(tp + fp + fn > 0, tp / (tp + fp + fn), 0.0),
            "mcc": np.nan_to_num(
                (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)),
                nan=0.0),
        }
    # roc_curve thresholds decrease; "predict positive when score >= thr[i]". A cut halfway
    # to the next (lower) score gives the same decisions on validation.
    finite = np.where(np.isfinite(thr), thr, np.nan)
    nxt = np.append(finite[1:], finite[-1] - 1.0)
    cut = np.where(np.isfinite(thr), (finite + nxt) / 2, finite[1] + 1.0 if len(thr) > 1 else 0)
    return cut, metrics


def select(spec: LossSpec, task: str, num_classes: int, val: np.ndarray, test: np.ndarray,
           y_val: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """Choose, for every metric and seed, the configuration (and threshold) on validation;
    return the test values of the chosen ones."""
    s_count, h_count = val.shape[:2]
    chosen: dict[str, list[int]] = {m: [] for m in METRICS}
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    thresholds: dict[str, list[float]] = {m: [] for m in THRESHOLD_METRICS}
    for s in range(s_count):
        val_scores = [sk_metrics(y_val[s], val[s, h], task, num_classes) for h in range(h_count)]
        tuned: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        if not spec.trains:
            tuned = [threshold_sweep(y_val[s], val[s, h]) for h in range(h_count)]
        for m in METRICS:
            thr = None
            if tuned and m in THRESHOLD_METRICS:
                best = [(float(np.max(t[1][m])), int(np.argmax(t[1][m]))) for t in tuned]
                h = int(np.argmax([b[0] for b in best]))
                thr = float(tuned[h][0][best[h][1]])
                thresholds[m].append(thr)
            else:
                h = int(np.argmax([v[m] for v in val_scores]))
            chosen[m].append(h)
            values[m].append(sk_metrics(y_test[s], test[s, h], task, num_classes, thr, (m,))[m])
    out: dict[str, Any] = {"test": values, "chosen_config": chosen}
    if not spec.trains:
        out["threshold_logit"] = thresholds
    return out


# ---------------------------------------------------------------------------------------
# the run


@dataclass
class Settings:
    datasets: list[str]
    losses: list[str]
    seeds: list[int]
    configs: int = 4
    steps: int = 120
    batch: int = 256
    hidden: int = 64
    threads: int = 1
    plots: bool = True
    tasks: list[str] = field(default_factory=list)  # the selected tasks of `_tasks`
    size: str = "default"  # their size: "smoke", "default" or "full"


def machine() -> dict[str, Any]:
    """The machine and library versions the numbers come from."""
    return _machine.machine({"numpy": "numpy", "scikit-learn": "sklearn",
                             "softmetrics": "softmetrics"})


def dataset_info(data: Dataset, x_dim: int) -> dict[str, Any]:
    counts = np.bincount(data.y, minlength=data.num_classes)
    return {
        "source": data.source,
        "task": data.task,
        "n": data.n,
        "features": x_dim,
        "classes": data.class_names,
        "class_fractions": (counts / counts.sum()).round(4).tolist(),
    }


def run_dataset(name: str, settings: Settings, progress: Progress) -> dict[str, Any]:
    """Train and evaluate every selected loss on one dataset: one progress task per loss."""
    data = load(name)
    splits = [split(data, seed) for seed in settings.seeds]
    tensors = {
        key: torch.from_numpy(np.stack([getattr(sp, key) for sp in splits]))
        for key in ("x_train", "y_train", "x_val", "x_test")
    }
    y_val = np.stack([sp.y_val for sp in splits])
    y_test = np.stack([sp.y_test for sp in splits])
    result: dict[str, Any] = {"info": dataset_info(data, tensors["x_train"].shape[-1]),
                              "losses": {}}
    specs = [LOSSES[k] for k in settings.losses if data.task in LOSSES[k].tasks]
    logits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    batch = min(settings.batch, tensors["x_train"].shape[1])
    t0 = time.perf_counter()
    for spec in specs:
        configs = configurations(settings.configs, spec.extra)
        t_loss = time.perf_counter()
        with progress.task(f"{name}: {spec.label}") as tick:
            if spec.trains:
                objective = Objective(spec, data.task, data.num_classes, configs,
                                      len(settings.seeds))
                logits[spec.key] = train(objective, configs, tensors, settings.seeds,
                                         steps=settings.steps, batch=batch,
                                         hidden=settings.hidden, tick=tick)
                source = spec.key
            else:
                source = "ce"
                if source not in logits:
                    raise SystemExit(f"compare_ce: loss {spec.key!r} reuses the 'ce' "
                                     f"networks: select 'ce' too")
            val, test = logits[source]
            res = select(spec, data.task, data.num_classes, val, test, y_val, y_test)
        res["configs"] = configs
        res["seconds"] = time.perf_counter() - t_loss
        res["summary"] = {m: dict(zip(("mean", "ci95"), mean_ci(res["test"][m]), strict=True))
                          for m in METRICS}
        result["losses"][spec.key] = res
    result["seconds"] = time.perf_counter() - t0
    return result


def compare_datasets(datasets: dict[str, Any]) -> None:
    """Every dataset's comparisons (`compare`) from its per-seed test values, then Holm's
    correction over each table: a baseline's comparisons over all the datasets."""
    for data in datasets.values():
        data["comparisons"] = compare(data["losses"], data["info"]["task"])
    holm(datasets)


def compare(losses: dict[str, Any], task: str) -> dict[str, Any]:
    """Each loss against CE (and threshold-metric losses against CE + tuned threshold) on
    its own metric, paired by seed; the seeds re-split the dataset, so the t interval is
    Nadeau and Bengio's corrected one (`_common.RESPLIT_CORRECTION`)."""
    out: dict[str, Any] = {}
    for baseline in ("ce", "ce_thr"):
        if baseline not in losses:
            continue
        rows = {}
        for key, res in losses.items():
            if key in ("ce", baseline):
                continue
            metric = LOSSES[key].metric
            if baseline == "ce_thr" and (metric not in THRESHOLD_METRICS or key == "ce"):
                continue
            rows[key] = {"metric": metric, **paired(
                res["test"][metric], losses[baseline]["test"][metric], baseline=baseline,
                correction=RESPLIT_CORRECTION)}
        out[baseline] = rows
    return out


# ---------------------------------------------------------------------------------------
# reports


def _fmt(mean: float, ci: float) -> str:
    return f"{mean:.3f} ± {ci:.3f}" if math.isfinite(ci) else f"{mean:.3f}"


def _diff(d: float) -> str:
    """A signed difference; small ones keep a significant digit (not a bare -0.000), so the
    sign shown is the sign of the value (and a zero is +0.000)."""
    if 0 < abs(d) < 0.0005:
        return f"{d:+.1e}"
    return f"{d + 0.0:+.3f}"


VERDICT_MARK = {"win": "**win**", "tie": "tie", "loss": "*loss*"}
VERDICT_RULE = ("the verdict of its paired 95% t interval over seeds, corrected for the "
                f"overlap of re-split data (Nadeau and Bengio). {HOLM_NOTE}")


def markdown(results: dict[str, Any]) -> str:
    """The Markdown that the docs page embeds: settings, datasets, summaries, tables."""
    st, mc, run = results["settings"], results["machine"], results["run"]
    names = list(results["datasets"])
    lines = [
        f"{provenance_line(run, mc, run['seconds'])}; Python {mc['python']}, torch "
        f"{mc['torch']}, scikit-learn {mc['scikit-learn']}, numpy {mc['numpy']}, "
        f"softmetrics {mc['softmetrics']}.",
        "",
        f"Seeds: {len(st['seeds'])} ({', '.join(map(str, st['seeds']))}). Every loss: MLP "
        f"with one hidden layer of {st['hidden']} units, Adam, {st['steps']} steps of batch "
        f"{st['batch']} (the whole training split when smaller), {st['configs']} "
        f"hyper-parameter configurations chosen on validation for each reported metric.",
        "",
        "### Datasets",
        "",
        "| dataset | source | task | n | features | classes (fraction) |",
        "|---|---|---|---:|---:|---|",
    ]
    for name in names:
        info = results["datasets"][name]["info"]
        classes = ", ".join(f"{c} ({f:.3f})" for c, f in
                            zip(info["classes"], info["class_fractions"], strict=True))
        if info["task"] == "binary":
            classes += f"; positive: {info['classes'][1]}"
        lines.append(f"| {name} | {info['source']} | {info['task']} | {info['n']} | "
                     f"{info['features']} | {classes} |")
    for baseline, title in (("ce", "cross-entropy"), ("ce_thr", "CE + tuned threshold")):
        rows = sorted({k for n in names for k in
                       results["datasets"][n]["comparisons"].get(baseline, {})},
                      key=list(LOSSES).index)
        if not rows:
            continue
        lines += ["", f"### Win / tie / loss against {title}", "",
                  "Each cell: mean over seeds of (loss − baseline) on the loss's own metric, "
                  f"and {VERDICT_RULE}.", ""]
        cols = [n for n in names if results["datasets"][n]["comparisons"].get(baseline)]
        lines.append("| loss (metric) | " + " | ".join(cols) + " | W / T / L |")
        lines.append("|---|" + "---:|" * len(cols) + ":---:|")
        for key in rows:
            cells, tally = [], {"win": 0, "tie": 0, "loss": 0}
            for n in cols:
                c = results["datasets"][n]["comparisons"][baseline].get(key)
                if c is None:
                    cells.append("n/a")
                    continue
                tally[c["verdict"]] += 1
                cells.append(f"{_diff(c['mean_diff'])} {verdict_mark(c, VERDICT_MARK)}")
            spec = LOSSES[key]
            lines.append(f"| {spec.label} ({METRIC_SHORT[spec.metric]}) | " + " | ".join(cells)
                         + f" | {tally['win']} / {tally['tie']} / {tally['loss']} |")
    lines += ["", "### Test metrics per dataset", "",
              "Mean ± half-width of the 95% t-interval over seeds; the best mean per column in "
              "bold. Each loss's configuration (and, for CE + tuned threshold, its threshold) "
              "is chosen on validation separately for each metric.", ""]
    for name in names:
        losses = results["datasets"][name]["losses"]
        lines += [f"#### {name}", "", "| loss | " + " | ".join(METRIC_SHORT[m] for m in METRICS)
                  + " |", "|---|" + "---:|" * len(METRICS)]
        best = {m: max(r["summary"][m]["mean"] for r in losses.values()) for m in METRICS}
        for key, r in losses.items():
            cells = []
            for m in METRICS:
                s = r["summary"][m]
                text = _fmt(s["mean"], s["ci95"])
                cells.append(f"**{text}**" if s["mean"] == best[m] else text)
            lines.append(f"| {LOSSES[key].label} | " + " | ".join(cells) + " |")
        lines.append("")
    if results.get("plots"):
        lines += ["### Plots", ""]
        for m, path in results["plots"].items():
            lines += [f"![{METRIC_LABELS.get(m, m)} by loss]({path})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _interval(c: dict[str, Any]) -> str:
    return f"[{_diff(c['ci_low'])}, {_diff(c['ci_high'])}]"


def console_table(results: dict[str, Any]) -> str:
    """The terminal's table: on every dataset, each loss against cross-entropy on the loss's
    own metric (the loss's value, CE's value of the same metric, the difference, its
    interval and the verdict), then the win / tie / loss counts over the datasets."""
    names = list(results["datasets"])
    seeds = len(results["settings"]["seeds"])
    cols = (("loss", 22, "<"), ("metric", 8, "<"), ("value", 7, ">"), ("CE", 7, ">"),
            ("value-CE", 10, ">"), ("", 2, "<"), ("95% interval", 22, "<"), ("verdict", 7, "<"))

    def row(*cells: str) -> str:
        return "  " + "".join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, cols, strict=True))

    head = row(*(c[0] for c in cols)).rstrip()
    out = ["Each loss against cross-entropy (CE) on the loss's own test metric: the loss's",
           f"value and CE's value of that metric (means over {seeds} seeds), their paired "
           f"difference,",
           "its 95% t interval over seeds (corrected for the overlap of re-split data) and "
           "the verdict",
           "(win: the interval lies above 0, loss: below 0, tie otherwise; (Holm): it also "
           "holds under",
           "Holm's correction over all the comparisons with CE).", "",
           *few_seeds_caution(seeds), head,
           "  " + "-" * (len(head) - 2)]
    tally: dict[str, dict[str, int]] = {}
    for n in names:
        res = results["datasets"][n]
        info = res["info"]
        out.append(f"{n} ({info['task']}, {info['n']} samples)")
        for key, c in res["comparisons"].get("ce", {}).items():
            spec, m = LOSSES[key], c["metric"]
            value = res["losses"][key]["summary"][m]["mean"]
            base = res["losses"]["ce"]["summary"][m]["mean"]
            out.append(row(spec.label, METRIC_SHORT[m], f"{value:.3f}", f"{base:.3f}",
                           _diff(c["mean_diff"]), "", _interval(c),
                           console_verdict(c)).rstrip())
            counts = tally.setdefault(key, {"win": 0, "tie": 0, "loss": 0})
            counts[c["verdict"]] += 1
    if names and not tally:
        out.append("  (no comparison: the run did not train 'ce', the baseline; add it to "
                   "--losses)")
    if tally:
        out += ["", "Win / tie / loss against CE over the datasets:"]
        for key, t in tally.items():
            spec = LOSSES[key]
            out.append(f"  {spec.label + ' (' + METRIC_SHORT[spec.metric] + ')':<28}"
                       f"{t['win']} / {t['tie']} / {t['loss']}")
    out.append("Every metric of every loss, and the comparisons with CE + tuned threshold: "
               "compare_ce_results.md.")
    return "\n".join(out)


def plots(results: dict[str, Any], out: Path) -> dict[str, str]:
    """One PNG per metric: a panel per dataset, mean and 95% interval by loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["datasets"])
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    written = {}
    for m in METRICS:
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 0.35 * 9 * rows + 1.0),
                                 squeeze=False)
        for ax, name in zip(axes.flat, names, strict=False):
            losses = results["datasets"][name]["losses"]
            keys = list(losses)
            means = [losses[k]["summary"][m]["mean"] for k in keys]
            cis = [np.nan_to_num(losses[k]["summary"][m]["ci95"]) for k in keys]
            ypos = np.arange(len(keys))[::-1]
            colors = ["0.3" if k in ("ce", "ce_thr") else "C0" for k in keys]
            for mean, y, ci, color in zip(means, ypos, cis, colors, strict=True):
                ax.errorbar(mean, y, xerr=ci, fmt="o", color=color, ms=4, capsize=3)
            if "ce" in losses:
                ax.axvline(losses["ce"]["summary"][m]["mean"], color="0.6", ls="--", lw=0.8)
            ax.set_yticks(ypos, [LOSSES[k].label for k in keys], fontsize=8)
            ax.set_title(name, fontsize=10)
            ax.tick_params(axis="x", labelsize=8)
            ax.grid(axis="x", alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.suptitle(f"Test {METRIC_LABELS[m]}: mean and 95% interval over "
                     f"{len(results['settings']['seeds'])} seeds (dashed: CE)", fontsize=11)
        fig.tight_layout()
        path = out / f"compare_ce_{m}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written[m] = path.name
    return written


def update_page(page: Path, block: str, part: str = "results") -> bool:
    """Replace one generated block of the docs page (between its markers), if it has them."""
    if not page.exists():
        return False
    begin, end = PAGE_MARKERS[part]
    text = page.read_text()
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    page.write_text(f"{head}{begin}\n\n{block}\n{end}{tail}")
    return True


# ---------------------------------------------------------------------------------------
# command line


def write_tabular(results: dict[str, Any], out: Path, record_docs: bool) -> list[str]:
    """Write the datasets' record and tables into `out` (and, with `record_docs`, the
    page's generated block); return what was written."""
    block = markdown(results)
    (out / "compare_ce.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "compare_ce_results.md").write_text("# Surrogates vs cross-entropy: results\n\n"
                                               + block)
    written = ["compare_ce.json (the record)", "compare_ce_results.md (every table)"]
    if record_docs and update_page(PAGE, block, "results"):
        written.append(f"{PAGE.name}: its generated results block")
    return written


def write_task(task: _tasks.Task, record: dict[str, Any], out: Path, record_docs: bool
               ) -> list[str]:
    """Write one task's record and tables into `out` (and, with `record_docs`, its block of
    the page); return what was written."""
    name = f"compare_ce_{task.name}"
    block = task.markdown(record)
    (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / f"{name}.md").write_text(f"# Surrogates vs cross-entropy: {task.title}\n\n" + block)
    written = [f"{name}.json (the record)", f"{name}.md"]
    if record_docs and update_page(PAGE, block, task.name):
        written.append(f"{PAGE.name}: its generated {task.name} block")
    return written


def _names(value: str, known: Sequence[str], what: str) -> list[str]:
    if value.strip() == "none":
        return []
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in names if v not in known]
    if bad:
        raise SystemExit(f"compare_ce: unknown {what} {', '.join(bad)}; "
                         f"choose from {', '.join(known)}")
    return names


def _seeds(value: str) -> list[int]:
    seeds = ([int(v) for v in value.split(",") if v.strip()] if "," in value
             else list(range(int(value))))
    if not seeds or len(set(seeds)) != len(seeds):
        raise SystemExit(f"compare_ce: --seeds {value!r}: give distinct seeds (a repeated "
                         f"seed repeats a run, and its paired differences are not new ones)")
    return seeds


def parse(argv: Sequence[str] | None = None) -> tuple[Settings, Path, bool]:
    """The run's settings, its output folder and whether it writes the docs' record."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true",
                   help="20 seeds for the datasets, and the other tasks at their full size")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny run (2 small datasets, 2 seeds, a few steps) to keep the "
                        f"script working; writes to {RESULTS.name}/smoke/ unless --out says "
                        f"otherwise")
    p.add_argument("--tasks", help=f"comma-separated subset of {', '.join(TASK_NAMES)} "
                   f"(default: all; 'tabular' is the {len(DATASETS)} datasets)")
    p.add_argument("--datasets", help=f"comma-separated subset of {', '.join(DATASETS)}, "
                   f"or 'none'")
    p.add_argument("--losses", help=f"comma-separated subset of {', '.join(LOSSES)}")
    p.add_argument("--seeds", help="a number of seeds (0..N-1) or a comma-separated list")
    p.add_argument("--configs", type=int, help="hyper-parameter configurations per loss (4)")
    p.add_argument("--steps", type=int, help="optimiser steps per network (120)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1: many tiny batched ops; more threads only help on "
                        "an otherwise idle machine)")
    add_output_arguments(p)
    a = p.parse_args(argv)
    if a.record:
        # the record is the documented protocol: every dataset and loss (or, with
        # `--datasets none`, the other tasks alone), at the default settings or --full
        changed = [f"--{k.replace('_', '-')}" for k in ("smoke", "losses", "seeds", "configs",
                                                        "steps", "no_plots") if getattr(a, k)]
        tabular = a.tasks is None or "tabular" in _names(a.tasks, TASK_NAMES, "task")
        if tabular and a.datasets and a.datasets.strip() != "none":
            changed.append("--datasets")

        if changed:
            p.error(f"--record writes the docs' record of the full protocol; it cannot be "
                    f"combined with {', '.join(changed)} (use --out DIR for such a run)")
    s = Settings(datasets=list(DATASETS), losses=list(LOSSES), seeds=list(range(10)),
                 threads=a.threads, tasks=list(TASK_MODULES))
    default_out = RESULTS
    if a.full:
        s.seeds, s.size = list(range(20)), "full"
    if a.smoke:
        s.datasets, s.seeds = ["breast_cancer", "digits"], [0, 1]
        s.configs, s.steps, s.hidden = 2, 4, 8
        s.size = "smoke"
        default_out = RESULTS / "smoke"
    if a.tasks is not None:
        chosen = _names(a.tasks, TASK_NAMES, "task")
        s.tasks = [t for t in chosen if t != "tabular"]
        if "tabular" not in chosen:
            if a.datasets and a.datasets.strip() != "none":
                p.error("--datasets selects tabular datasets: add 'tabular' to --tasks")
            s.datasets = []
    if a.datasets:
        s.datasets = _names(a.datasets, list(DATASETS), "dataset")
    if a.losses:
        chosen = _names(a.losses, list(LOSSES), "loss")
        if "ce_thr" in chosen and "ce" not in chosen:
            p.error("--losses: 'ce_thr' tunes the threshold of the 'ce' networks: select "
                    "'ce' too")
        s.losses = [k for k in LOSSES if k in chosen]  # 'ce' before what reuses it
    if a.seeds:
        s.seeds = _seeds(a.seeds)
    if a.configs:
        s.configs = a.configs
    if a.steps:
        s.steps = a.steps
    s.plots = not a.no_plots
    return s, output_dir(a, default_out), a.record


def run_task(task: _tasks.Task, settings: Settings, command: str,
             code: dict[str, Any]) -> dict[str, Any]:
    """One task of its own module: its record, with the run's provenance (`code`: the
    commit the run started from) and the machine."""
    run, info = run_record(command, code=code), machine()
    body = task.run(list(settings.seeds), settings.size)
    return {"run": finish_record(run), "size": settings.size, "machine": info, **body}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    settings, out, record_docs = parse(argv)
    command = command_line("compare_ce.py", argv)
    torch.set_num_threads(settings.threads)
    # resolve every selected loss first: a missing one stops the run before any training
    for key in settings.losses:
        resolve_loss_class(LOSSES[key])
    own = [_tasks.load(name) for name in settings.tasks]
    for task in own:  # a missing package stops the run before any training
        task.check_available()

    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    results: dict[str, Any] = {"run": run_record(command), "settings": asdict(settings),
                               "machine": machine(), "datasets": {}}
    if settings.datasets:
        tasks = sum(sum(TASKS[name] in LOSSES[k].tasks for k in settings.losses)
                    for name in settings.datasets)
        with Progress(tasks, "compare_ce", ticks_per_task=TICKS) as progress:
            for name in settings.datasets:
                results["datasets"][name] = run_dataset(name, settings, progress)
        compare_datasets(results["datasets"])
        results["run"] = finish_record(results["run"])
        if settings.plots:
            results["plots"] = plots(results, out)
            written += [f"compare_ce_{m}.png" for m in results["plots"]]
        written[:0] = write_tabular(results, out, record_docs)
        print(console_table(results), flush=True)
    consoles = []
    for task in own:
        record = run_task(task, settings, command, results["run"])
        results[task.name] = record
        written += write_task(task, record, out, record_docs)
        if settings.plots:
            written += task.plots(record, out)
        consoles.append(f"{task.title}\n{'=' * len(task.title)}\n{task.console(record)}")
    if consoles:  # after every task's progress, so that the tables stay together
        if settings.size != "full":
            consoles.insert(0, f"The tasks below ran at their {settings.size} size (fewer "
                            "examples, steps and seeds than `--full`, which runs each at its "
                            "full size with 10 seeds); each table says how many seeds.")
        print("\n" + "\n\n".join(consoles), flush=True)
    wrote(out, written)
    return results


if __name__ == "__main__":
    main()
