"""Classification semantics: options checked at construction, errors named after the
caller, edge values (beta = inf, empty batches, non-finite logits), segmentation shapes,
reductions, and per-sample values that equal the metric of each sample alone."""

from __future__ import annotations

import math

import pytest
import torch

import softmetrics

MC3 = dict(task="multiclass", num_classes=3)


# ---------------------------------------------------------------------------------------
# options are checked at construction; errors name the Module


@pytest.mark.parametrize("option", [{"smooth": 1.0}, {"weight": torch.ones(3)},
                                    {"averge": "micro"}, {"alpha": 0.3}])
def test_unknown_option_raises_at_construction(option):
    name = next(iter(option))
    with pytest.raises(TypeError, match=rf"SoftJaccardLoss: expected `{name}` to be a known "
                                        r"option"):
        softmetrics.SoftJaccardLoss(**MC3, **option)


def test_module_errors_name_the_module():
    loss = softmetrics.SoftDiceLoss(**MC3)
    with pytest.raises(ValueError, match=r"^SoftDiceLoss: expected `target` to be of shape"):
        loss(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^SoftDiceLoss: expected `target` to be integer"):
        loss.metric(torch.randn(4, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"^SoftDiceLoss: expected `average`"):
        softmetrics.SoftDiceLoss(**MC3, average="avg")


# ---------------------------------------------------------------------------------------
# F-beta at beta = inf is recall


@pytest.mark.parametrize("beta", [float("inf"), 1e200])
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_fbeta_at_infinite_beta_is_recall(beta, task):
    from sklearn.metrics import fbeta_score, recall_score

    g = torch.Generator().manual_seed(0)
    if task == "binary":
        x, y, kw = torch.randn(40, generator=g), torch.randint(0, 2, (40,), generator=g), {}
        pred = (x > 0).long()
        sk = dict(average="binary")
    else:
        x, y = torch.randn(40, 3, generator=g), torch.randint(0, 3, (40,), generator=g)
        kw, pred, sk = dict(num_classes=3, average="macro"), x.argmax(1), dict(average="macro")
    hard = softmetrics.functional.soft_fbeta_score(x, y, task=task, beta=beta,
                                                   temperature=0, **kw)
    want = recall_score(y.numpy(), pred.numpy(), **sk)
    assert float(hard) == pytest.approx(want, abs=1e-6)
    if beta == float("inf"):
        assert float(hard) == pytest.approx(fbeta_score(y.numpy(), pred.numpy(), beta=beta,
                                                        **sk), abs=1e-6)
    soft = softmetrics.functional.soft_fbeta_score(x, y, task=task, beta=beta, **kw)
    torch.testing.assert_close(soft, softmetrics.functional.soft_recall(x, y, task=task, **kw))
    loss = softmetrics.SoftFBetaLoss(task=task, beta=beta, **kw)
    torch.testing.assert_close(loss(x, y), 1 - soft)


# ---------------------------------------------------------------------------------------
# empty batches


EMPTY = {
    "binary": (torch.randn(0, 4, 4), torch.zeros(0, 4, 4, dtype=torch.long), {}),
    "multiclass": (torch.randn(0, 3, 4, 4), torch.zeros(0, 4, 4, dtype=torch.long),
                   dict(num_classes=3)),
    "multilabel": (torch.randn(0, 3, 4), torch.zeros(0, 3, 4, dtype=torch.long),
                   dict(num_classes=3)),
}
LOSS_TYPES = [softmetrics.SoftAccuracyLoss, softmetrics.SoftF1Loss, softmetrics.SoftMCCLoss,
              softmetrics.SoftJaccardLoss, softmetrics.SoftPrecisionLoss]


@pytest.mark.parametrize("task", sorted(EMPTY))
@pytest.mark.parametrize("cls", LOSS_TYPES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_empty_batch(task, cls, zero_division):
    """Global: the metric of no entries is `zero_division` (as for an all-ignored batch),
    the loss `1 - zero_division`; samplewise: no per-sample values, their mean and sum 0."""
    x, y, kw = EMPTY[task]
    x = x.clone().requires_grad_()
    glob = cls(task=task, zero_division=zero_division, **kw)
    assert float(glob.metric(x, y)) == zero_division
    loss = glob(x, y)
    assert float(loss.detach()) == 1.0 - zero_division
    loss.backward()
    assert x.grad is not None and x.grad.shape == x.shape
    per = cls(task=task, zero_division=zero_division, multidim_average="samplewise", **kw)
    assert per.metric(x, y).shape == (0,)
    assert float(per(x, y).detach()) == 0.0


# ---------------------------------------------------------------------------------------
# binary segmentation: (N, 1, H, W) logits with an (N, H, W) mask


@pytest.mark.parametrize("fn", [softmetrics.functional.soft_f1_score,
                                softmetrics.functional.soft_jaccard_index,
                                softmetrics.functional.soft_accuracy,
                                softmetrics.functional.soft_matthews_corrcoef])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("multidim_average", ["global", "samplewise"])
def test_binary_singleton_channel(fn, temperature, multidim_average):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 6, generator=g)
    y = torch.randint(0, 2, (3, 5, 6), generator=g)
    y[0, 0, 0] = 255
    kw = dict(task="binary", temperature=temperature, ignore_index=255,
              multidim_average=multidim_average)
    torch.testing.assert_close(fn(x.unsqueeze(1), y, **kw), fn(x, y, **kw))


def test_binary_singleton_channel_module_and_gradient():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 1, 4, 4, generator=g, requires_grad=True)
    y = torch.randint(0, 2, (2, 4, 4), generator=g)
    loss_fn = softmetrics.SoftDiceLoss(task="binary")
    loss = loss_fn(x, y)
    loss.backward()
    x2 = x.detach().squeeze(1).requires_grad_()
    want = loss_fn(x2, y)
    want.backward()
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(x.grad.squeeze(1), x2.grad)
    torch.testing.assert_close(loss_fn.metric(x, y), loss_fn.metric(x2, y))
    with pytest.raises(ValueError, match=r"SoftDiceLoss: expected `target` to be of shape"):
        loss_fn(torch.randn(2, 2, 4, 4), y)  # two channels are not a binary map


# ---------------------------------------------------------------------------------------
# reduction


@pytest.mark.parametrize("cls", [*LOSS_TYPES, softmetrics.SoftTverskyLoss],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("average", ["macro", "none"])
def test_samplewise_reductions_agree(cls, average):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 5, 5, generator=g)
    y = torch.randint(0, 3, (4, 5, 5), generator=g)
    kw = dict(**MC3, average=average, multidim_average="samplewise")
    none = cls(**kw, reduction="none")(x, y)
    per_sample = 1 - cls(**kw).metric(x, y)
    assert none.shape == per_sample.shape == ((4,) if average != "none" else (4, 3))
    torch.testing.assert_close(1 - cls(**kw, temperature=0.0, reduction="none")(x, y),
                               cls(**kw).metric(x, y))
    torch.testing.assert_close(none.sum(0), cls(**kw, reduction="sum")(x, y))
    torch.testing.assert_close(none.mean(0), cls(**kw, reduction="mean")(x, y))
    torch.testing.assert_close(cls(**kw)(x, y), none.mean(0))
    assert "reduction='sum'" in repr(cls(**kw, reduction="sum"))


def test_reduction_checked_and_global_only_mean():
    with pytest.raises(ValueError, match=r"SoftF1Loss: expected `reduction` to be one of "
                                         r"'mean', 'sum', 'none', got 'avg'\."):
        softmetrics.SoftF1Loss(**MC3, multidim_average="samplewise", reduction="avg")
    for reduction in ("sum", "none"):
        with pytest.raises(ValueError, match=r"SoftF1Loss: expected `reduction` to be 'mean' "
                                             r"with multidim_average='global'"):
            softmetrics.SoftF1Loss(**MC3, reduction=reduction)
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(softmetrics.SoftF1Loss(**MC3, reduction="mean")(x, y),
                               softmetrics.SoftF1Loss(**MC3)(x, y))
    empty = softmetrics.SoftF1Loss(**MC3, multidim_average="samplewise", reduction="none")
    assert empty(torch.randn(0, 3), torch.zeros(0, dtype=torch.long)).shape == (0,)


# ---------------------------------------------------------------------------------------
# samplewise values are the metric of each sample alone (fixed cases, not drawn)

F = softmetrics.functional
SAMPLEWISE_METRICS = {
    "accuracy": (F.soft_accuracy, {}),
    "precision": (F.soft_precision, {}),
    "recall": (F.soft_recall, {}),
    "fbeta": (F.soft_fbeta_score, {"beta": 2.0}),
    "f1": (F.soft_f1_score, {}),
    "jaccard": (F.soft_jaccard_index, {}),
    "tversky": (F.soft_tversky_index, {"alpha": 0.3, "beta": 0.7}),
    "mcc": (F.soft_matthews_corrcoef, {}),
    "top_k": (F.soft_top_k_accuracy, {"k": 2}),
}


def _segmentation_case(task: str, ignore_index: int | None):
    """(4, C, 3, 3) logits on a coarse grid (ties happen) and targets; one sample has a
    class absent, one has a third of its pixels ignored (when `ignore_index` is set)."""
    g = torch.Generator().manual_seed(7)
    shape = (4, 3, 3) if task == "binary" else (4, 3, 3, 3)
    x = torch.randint(-6, 7, shape, generator=g).float() / 2
    if task == "multiclass":
        y = torch.randint(0, 3, (4, 3, 3), generator=g)
        y[1][y[1] == 2] = 0
    else:
        y = torch.randint(0, 2, shape, generator=g)
    if ignore_index is not None:
        y[2, 0] = ignore_index
    return x, y


@pytest.mark.parametrize("name", sorted(SAMPLEWISE_METRICS))
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_samplewise_equals_each_sample_alone(name, task, ignore_index):
    fn, extra = SAMPLEWISE_METRICS[name]
    if name == "top_k" and task != "multiclass":
        pytest.skip("top-k accuracy is multiclass only")
    x, y = _segmentation_case(task, ignore_index)
    kw = dict(extra, ignore_index=ignore_index)
    if name == "top_k":
        kw["num_classes"] = 3
    else:
        kw.update(task=task, num_classes=None if task == "binary" else 3)
    averages = ["micro"] if name == "top_k" else ["micro", "macro", "weighted", "none"]
    for average in averages:
        for temperature in (0.0, 1.0):
            opts = dict(kw, average=average, temperature=temperature)
            per = fn(x, y, multidim_average="samplewise", **opts)
            assert per.shape[0] == x.shape[0]
            for i in range(x.shape[0]):
                alone = fn(x[i:i + 1], y[i:i + 1], multidim_average="global", **opts)
                torch.testing.assert_close(per[i], alone, msg=lambda m, i=i, a=average,
                                           t=temperature: f"sample {i}, {a}, T={t}: {m}")


def test_momentum_mixes_the_counts_of_two_batches():
    """Running statistics after two batches are `m * first + (1 - m) * second`, by hand from
    `soft_stat_scores`, and the second loss is the Tversky formula of the mixed counts."""
    m = 0.75
    g = torch.Generator().manual_seed(5)
    batches = [(torch.randn(6, 3, 2, 2, generator=g), torch.randint(0, 3, (6, 2, 2), generator=g))
               for _ in range(2)]
    batches[1][1][0, 0, 0] = 255
    loss_fn = softmetrics.SoftJaccardLoss(**MC3, ignore_index=255, momentum=m, average="macro")
    counts = []
    for x, y in batches:
        s = F.soft_stat_scores(x, y, **MC3, ignore_index=255)
        counts.append({"tp": s.tp, "pred": s.tp + s.fp, "support": s.tp + s.fn,
                       "total": s.tp + s.fp + s.fn + s.tn})
        loss = loss_fn(x, y)
    mixed = {k: m * counts[0][k] + (1 - m) * counts[1][k] for k in counts[0]}
    for key, value in mixed.items():
        torch.testing.assert_close(getattr(loss_fn, f"running_{key}")[0], value)
    fp, fn = mixed["pred"] - mixed["tp"], mixed["support"] - mixed["tp"]
    jaccard = mixed["tp"] / (mixed["tp"] + fp + fn)
    torch.testing.assert_close(loss, 1 - jaccard.mean())
    assert bool(loss_fn.running_initialized)


# ---------------------------------------------------------------------------------------
# non-finite input


NONFINITE = {
    "binary": (torch.randn(3, 4), torch.randint(0, 2, (3, 4)), {}),
    "multiclass": (torch.randn(3, 4, 2), torch.randint(0, 4, (3, 2)), dict(num_classes=4)),
    "multilabel": (torch.randn(3, 4), torch.randint(0, 2, (3, 4)), dict(num_classes=4)),
}


@pytest.mark.parametrize("task", sorted(NONFINITE))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_input_is_refused_when_validating(task, bad):
    """`validate_args=True` (the default) refuses NaN and infinite logits, naming the
    caller and the argument."""
    x, y, kw = NONFINITE[task]
    x = x.clone()
    x[1, 0] = bad
    with pytest.raises(ValueError, match=r"^soft_jaccard_index: expected `input` to be "
                                         r"finite"):
        F.soft_jaccard_index(x, y, task=task, **kw)
    with pytest.raises(ValueError, match=r"^SoftDiceLoss: expected `input` to be finite"):
        softmetrics.SoftDiceLoss(task=task, **kw)(x, y)
    with pytest.raises(ValueError, match=r"^SoftMCCLoss: expected `input` to be finite"):
        softmetrics.SoftMCCLoss(task=task, **kw).metric(x, y)


@pytest.mark.parametrize("task", sorted(NONFINITE))
@pytest.mark.parametrize("cls", LOSS_TYPES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
@pytest.mark.parametrize("multidim_average", ["global", "samplewise"])
def test_nan_propagates_without_validation(task, cls, zero_division, multidim_average):
    """Without validation a NaN logit makes its group's value NaN, soft or exact: never a
    finite value, never replaced by `zero_division`."""
    x, y, kw = NONFINITE[task]
    x = x.clone()
    x[1, 0] = float("nan")
    opts = dict(task=task, zero_division=zero_division, validate_args=False,
                multidim_average=multidim_average, **kw)
    loss = cls(**opts, reduction="none" if multidim_average == "samplewise" else "mean")(x, y)
    metric = cls(**opts).metric(x, y)  # the exact decision must not hide it either
    for value in (loss, metric):
        if multidim_average == "samplewise":
            # the sample with the NaN logit is NaN; the others are unaffected
            assert bool(value[1].isnan().all())
            assert bool(value[[0, 2]].isfinite().all())
        else:
            assert bool(value.isnan().all())
    # finite logits are unaffected by the check
    clean = NONFINITE[task][0]
    torch.testing.assert_close(cls(**opts)(clean, y),
                               cls(**dict(opts, validate_args=True))(clean, y))


def test_nan_propagates_through_top_k():
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    x[1, 0] = float("nan")
    for temperature in (0.0, 1.0):
        per = F.soft_top_k_accuracy(x, y, num_classes=4, k=2, temperature=temperature,
                                    multidim_average="samplewise", validate_args=False)
        assert bool(per[1].isnan()) and bool(per[[0, 2]].isfinite().all())


@pytest.mark.parametrize("factory", [
    lambda **kw: softmetrics.SoftF1Loss(**MC3, **kw),
    lambda **kw: softmetrics.SoftCohenKappaLoss(**MC3, **kw),
    lambda **kw: softmetrics.SoftAUROCLoss(task="binary", **kw),
], ids=["F1", "kappa", "AUROC"])
def test_repr_shows_the_set_level_options_that_are_set(factory):
    plain = repr(factory())
    assert "sync_dist" not in plain and "momentum" not in plain
    assert "temperature=1.0" in plain
    both = repr(factory(sync_dist=True, momentum=0.5, temperature=0.3))
    assert "sync_dist=True" in both and "momentum=0.5" in both and "temperature=0.3" in both


def test_default_reprs_in_full():
    """Every default that changes a value is in the repr, so a changed default shows."""
    for cls in (softmetrics.SoftAUROCLoss, softmetrics.SoftAveragePrecisionLoss,
                softmetrics.SoftCalibratedAveragePrecisionLoss):
        assert repr(cls(task="binary")) == (
            f"{cls.__name__}(task='binary', average='macro', validate_args=True, "
            "temperature=1.0)")
    assert repr(softmetrics.SoftF1Loss(**MC3)) == (
        "SoftF1Loss(task='multiclass', num_classes=3, average='macro', threshold=0.5, "
        "multidim_average='global', zero_division=0.0, validate_args=True, temperature=1.0)")
    assert repr(softmetrics.SoftCohenKappaLoss(**MC3)) == (
        "SoftCohenKappaLoss(task='multiclass', num_classes=3, threshold=0.5, "
        "zero_division=0.0, validate_args=True, temperature=1.0)")
    assert repr(softmetrics.SoftExactMatchLoss(task="multilabel", num_classes=3)) == (
        "SoftExactMatchLoss(task='multilabel', num_classes=3, threshold=0.5, "
        "multidim_average='global', zero_division=0.0, validate_args=True, temperature=1.0)")


def test_repr_shows_a_focal_exponent_only_where_one_is_set():
    assert "gamma" not in repr(softmetrics.SoftAccuracyLoss(**MC3))
    assert "gamma" not in repr(softmetrics.SoftMCCLoss(**MC3))
    assert "gamma" not in repr(softmetrics.SoftF1Loss(**MC3))
    assert "gamma=0.75" in repr(softmetrics.SoftTverskyLoss(**MC3, gamma=0.75))


@pytest.mark.parametrize("value", [-0.5, 1.5])
def test_zero_division_lies_in_the_unit_interval(value):
    with pytest.raises(ValueError, match=r"^soft_f1_score: expected `zero_division` to be "
                                         rf">= 0 and <= 1, got {value}\.$"):
        softmetrics.functional.soft_f1_score(torch.randn(3, 3), torch.tensor([0, 1, 0]),
                                             **MC3, zero_division=value)
    assert softmetrics.SoftF1Loss(**MC3, zero_division=1.0).metric(
        torch.randn(3, 3), torch.tensor([0, 1, 2])) >= 0


@pytest.mark.parametrize("zero_division", [0.0, 1.0])
@pytest.mark.parametrize("name", ["precision_score", "recall_score", "f1_score",
                                  "jaccard_score"])
def test_weighted_average_without_any_support_is_the_plain_mean(name, zero_division):
    """No label of any class in the batch: every support weight is 0, and scikit-learn's
    weighted average (`_nanaverage`) falls back to the unweighted mean of the per-class
    values, `zero_division` or not."""
    import numpy as np
    from sklearn import metrics

    fn = {"precision_score": softmetrics.functional.soft_precision,
          "recall_score": softmetrics.functional.soft_recall,
          "f1_score": softmetrics.functional.soft_f1_score,
          "jaccard_score": softmetrics.functional.soft_jaccard_index}[name]
    y = np.array([[0, 0, 0], [0, 0, 0]])
    p = np.array([[1, 0, 1], [0, 0, 1]])
    want = getattr(metrics, name)(y, p, average="weighted", zero_division=zero_division)
    got = fn(torch.tensor(20.0 * p - 10.0), torch.tensor(y), task="multilabel",
             num_classes=3, average="weighted", zero_division=zero_division, temperature=0)
    assert got.item() == pytest.approx(want, abs=1e-12)
    soft = fn(torch.tensor(20.0 * p - 10.0, requires_grad=True), torch.tensor(y),
              task="multilabel", num_classes=3, average="weighted",
              zero_division=zero_division, temperature=1e-4)  # close to the exact value
    assert soft.item() == pytest.approx(want, abs=1e-3)


THRESHOLDS = [0.3, 0.9, 0.8, 0.05, 0.45, 0.4, 0.5, 1e-3, 0.999]


def _around_the_shift(threshold: float, dtype: torch.dtype) -> torch.Tensor:
    """The logit of `threshold` rounded to `dtype` and its two neighbours in `dtype`."""
    shift = math.log(threshold) - math.log1p(-threshold)
    mid = torch.tensor([shift], dtype=dtype)
    if dtype.itemsize == 2:  # torch 2.1 has no `nextafter` for float16 on the CPU
        # the neighbours of a 16-bit float are one step of its bits away, away from or
        # towards zero by its sign (zero's are the smallest subnormals, 0x0001 and 0x8001)
        bits = int(mid.view(torch.int16))
        step = -1 if shift < 0 else 1
        near = [-32767, 1] if shift == 0 else [bits - step, bits + step]
        down, up = torch.tensor(near, dtype=torch.int16).view(dtype)
        return torch.stack([down, mid[0], up])
    return torch.cat([torch.nextafter(mid, torch.tensor(-math.inf, dtype=dtype)), mid,
                      torch.nextafter(mid, torch.tensor(math.inf, dtype=dtype))])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_the_exact_threshold_decides_as_the_real_numbers_do(threshold, dtype):
    """At temperature 0 an entry is positive when sigmoid(z) > threshold, that is when
    z > logit(threshold) as real numbers. Compared in the input's dtype, the logit would be
    rounded to it first, and the one value equal to its rounding would be decided wrong
    whenever the rounding is above the real logit (at 0.3 in float32: -0.84729785 >
    logit(0.3), classed negative)."""
    x = _around_the_shift(threshold, dtype)
    shift = math.log(threshold) - math.log1p(-threshold)
    expected = (x.double() > shift).double()
    ones = torch.ones(3, dtype=torch.long)
    kw = dict(threshold=threshold, temperature=0, validate_args=False)
    got = softmetrics.functional.soft_stat_scores(x, ones, task="binary",
                                                  multidim_average="samplewise", **kw)
    torch.testing.assert_close(got.tp.reshape(-1), expected)  # (N, 1) counts
    multilabel = softmetrics.functional.soft_exact_match(
        x.unsqueeze(1), ones.unsqueeze(1), task="multilabel", num_classes=1,
        multidim_average="samplewise", **kw)
    torch.testing.assert_close(multilabel.double(), expected)
    lovasz = softmetrics.functional.soft_jaccard_index(
        x, ones, task="binary", relaxation="lovasz", multidim_average="samplewise", **kw)
    torch.testing.assert_close(lovasz.double(), expected)  # IoU 1 where the one entry is hit


@pytest.mark.parametrize(("loss", "shown", "hidden"), [
    (softmetrics.SoftFBetaLoss(task="binary", beta=2.0), ["beta=2.0"], ["alpha", "beta=0.8"]),
    (softmetrics.SoftFBetaLoss(**MC3, beta=0.5, top_k=2), ["beta=0.5", "top_k=2"],
     ["alpha", "skip_unsupported"]),
    (softmetrics.SoftTverskyLoss(task="binary", alpha=0.3, beta=0.7),
     ["alpha=0.3", "beta=0.7"], []),
    (softmetrics.SoftPrecisionLoss(**MC3, top_k=2), ["top_k=2"], ["alpha", "beta"]),
    (softmetrics.SoftTopKAccuracyLoss(num_classes=4, k=2), ["k=2"], ["threshold", "top_k"]),
    (softmetrics.SoftJaccardLoss(**MC3, relaxation="lovasz"), ["relaxation='lovasz'"],
     ["alpha"]),
    (softmetrics.LovaszLoss(**MC3), [], ["relaxation", "alpha"]),
])
def test_the_repr_shows_the_options_the_constructor_took(loss, shown, hidden):
    """The repr reads as the call that built the loss: the F-beta `beta` the user gave,
    not the Tversky weights it becomes; `k`, not top-k accuracy's internal `top_k`; no
    option the constructor refuses (a threshold for top-k accuracy, a relaxation for
    `LovaszLoss`, alpha and beta for the losses whose metric fixes them)."""
    text = repr(loss)
    for option in shown:
        assert option in text, text
    for option in hidden:
        assert option not in text, text
