"""Independent references for the classification metrics: scikit-learn and explicit loops.

Each adapter takes numpy predictions (hard decisions), targets and a keep-mask and returns
what softmetrics must return at temperature 0, shaped the same way.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm


def hard_predictions(logits: np.ndarray, task: str, threshold: float) -> np.ndarray:
    """Argmax over axis 1 (first index at ties), or `sigmoid(z) > threshold`."""
    if task == "multiclass":
        return logits.argmax(axis=1)
    shift = np.log(threshold) - np.log1p(-threshold)
    return (logits.astype(np.float64) > shift).astype(np.int64)


def _columns(pred: np.ndarray, target: np.ndarray, keep: np.ndarray, task: str
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per label (multilabel, binary) the kept (target, pred) pairs, flattened."""
    if task == "binary":
        return [(target[keep].ravel(), pred[keep].ravel())]
    num = pred.shape[1]
    out = []
    for c in range(num):
        k = keep[:, c]
        out.append((target[:, c][k].ravel(), pred[:, c][k].ravel()))
    return out


def _sk_binary(name: str, yt: np.ndarray, yp: np.ndarray, zd: float, beta: float) -> float:
    """A scikit-learn binary metric on 0/1 arrays (positive class 1); `zd` when empty."""
    if len(yt) == 0:
        return zd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "precision":
            return skm.precision_score(yt, yp, labels=[1], average="macro", zero_division=zd)
        if name == "recall":
            return skm.recall_score(yt, yp, labels=[1], average="macro", zero_division=zd)
        if name == "f1":
            return skm.f1_score(yt, yp, labels=[1], average="macro", zero_division=zd)
        if name == "fbeta":
            return skm.fbeta_score(yt, yp, beta=beta, labels=[1], average="macro",
                                   zero_division=zd)
        if name == "jaccard":
            return skm.jaccard_score(yt, yp, labels=[1], average="macro", zero_division=zd)
        if name == "accuracy":
            return skm.accuracy_score(yt, yp) if len(yt) else zd
        if name == "mcc":
            return _sk_mcc(yt, yp, zd)
    raise ValueError(name)


def _sk_mcc(yt: np.ndarray, yp: np.ndarray, zd: float) -> float:
    """scikit-learn's MCC, with `zd` where it is 0/0 (a constant target or prediction)."""
    if len(np.unique(yt)) <= 1 or len(np.unique(yp)) <= 1:
        return zd
    return skm.matthews_corrcoef(yt, yp)


def _average(values: list[float], supports: list[float], average: str, zd: float,
             counted: list[bool] | None = None):
    """Per-class values reduced; `counted` says which classes a macro average includes."""
    values_a, supports_a = np.asarray(values, float), np.asarray(supports, float)
    if average == "none":
        return values_a
    if average == "macro":
        if counted is not None:
            values_a = values_a[np.asarray(counted, bool)]
        return values_a.mean() if len(values_a) else zd
    if average == "weighted":  # no support at all: scikit-learn's plain mean
        total = supports_a.sum()
        return (values_a * supports_a).sum() / total if total > 0 else values_a.mean()
    raise ValueError(average)


def multiclass_labels(yt: np.ndarray, yp: np.ndarray, num_classes: int, average: str,
                      absent_classes: str | None, ignore_index: int | None) -> list[int]:
    """The `labels` scikit-learn is given: its default (the classes in target or
    prediction) when absent classes are skipped, else all C; all C for per-class results;
    without the class equal to an in-range `ignore_index` (torchmetrics' Jaccard rule)."""
    if average == "none":
        return list(range(num_classes))
    if (absent_classes or "skip") == "skip" and average == "macro":
        labels = sorted(set(yt.tolist()) | set(yp.tolist()))
    else:
        labels = list(range(num_classes))
    return [c for c in labels if c != ignore_index]


def reference(name: str, pred: np.ndarray, target: np.ndarray, keep: np.ndarray, *, task: str,
              num_classes: int, average: str, zero_division: float = 0.0,
              beta: float = 1.0, absent_classes: str | None = None,
              ignore_index: int | None = None) -> float | np.ndarray:
    """The exact metric of hard predictions, via scikit-learn (global, one group).

    `absent_classes` and an `ignore_index` inside [0, C) choose the `labels` of the
    multiclass averages (`multiclass_labels`); for multilabel, "skip" leaves out of the
    macro average the labels with no positive target and no positive prediction."""
    zd = zero_division
    if task == "multiclass":
        yt, yp = target[keep].ravel(), pred[keep].ravel()
        labels = multiclass_labels(yt, yp, num_classes, average, absent_classes, ignore_index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "accuracy":
                if len(yt) == 0:
                    return np.full(num_classes, zd) if average == "none" else zd
                if average in ("micro", "weighted"):
                    return skm.accuracy_score(yt, yp)
                if average == "macro" and (absent_classes or "skip") == "skip":
                    return skm.balanced_accuracy_score(yt, yp)
                avg = None if average == "none" else average
                return skm.recall_score(yt, yp, labels=labels, average=avg, zero_division=zd)
            if name == "mcc":
                if average == "micro":
                    return _sk_mcc(yt, yp, zd)
                per = [_sk_binary("mcc", (yt == c).astype(int), (yp == c).astype(int), zd, 1.0)
                       for c in range(num_classes)]
                return _average(per, [(yt == c).sum() for c in range(num_classes)], average, zd,
                                [c in labels for c in range(num_classes)])
            avg = None if average == "none" else average
            if len(yt) == 0 or not labels:
                return np.full(num_classes, zd) if average == "none" else zd
            kwargs = dict(labels=labels, average=avg, zero_division=zd)
            if name == "precision":
                return skm.precision_score(yt, yp, **kwargs)
            if name == "recall":
                return skm.recall_score(yt, yp, **kwargs)
            if name == "f1":
                return skm.f1_score(yt, yp, **kwargs)
            if name == "fbeta":
                return skm.fbeta_score(yt, yp, beta=beta, **kwargs)
            if name == "jaccard":
                return skm.jaccard_score(yt, yp, **kwargs)
        raise ValueError(name)
    cols = _columns(pred, target, keep, task)
    if task == "binary":
        yt, yp = cols[0]
        return _sk_binary(name, yt, yp, zd, beta)
    if average == "micro":
        yt = np.concatenate([c[0] for c in cols])
        yp = np.concatenate([c[1] for c in cols])
        return _sk_binary(name, yt, yp, zd, beta)
    per = [_sk_binary(name, yt, yp, zd, beta) for yt, yp in cols]
    counted = None
    if absent_classes == "skip":
        counted = [bool(yt.any() or yp.any()) for yt, yp in cols]
    return _average(per, [yt.sum() for yt, _ in cols], average, zd, counted)


def reference_tversky(pred: np.ndarray, target: np.ndarray, keep: np.ndarray, *, task: str,
                      num_classes: int, alpha: float, beta: float, average: str,
                      zero_division: float, absent_classes: str | None = None,
                      ignore_index: int | None = None) -> float | np.ndarray:
    """Tversky index by explicit loops over samples and classes.

    A macro average skips the classes with TP + FP + FN = 0 (multiclass by default, or
    `absent_classes="skip"`); a multiclass `ignore_index` inside [0, C) leaves its class
    out of the micro sums and the averages."""
    if task == "multiclass":
        classes = range(num_classes)
        pairs = []
        for c in classes:
            tp = fp = fn = 0
            for t, p, k in zip(target.ravel(), pred.ravel(), keep.ravel(), strict=True):
                if not k:
                    continue
                tp += (p == c) and (t == c)
                fp += (p == c) and (t != c)
                fn += (p != c) and (t == c)
            pairs.append((tp, fp, fn))
    else:
        pairs = []
        for yt, yp in _columns(pred, target, keep, task):
            tp = int(((yp == 1) & (yt == 1)).sum())
            fp = int(((yp == 1) & (yt == 0)).sum())
            fn = int(((yp == 0) & (yt == 1)).sum())
            pairs.append((tp, fp, fn))

    def score(tp: float, fp: float, fn: float) -> float:
        den = tp + alpha * fp + beta * fn
        return tp / den if den else zero_division

    if task == "binary":
        return score(*pairs[0])
    skip = (absent_classes or ("skip" if task == "multiclass" else "include")) == "skip"
    counted = [(not skip or sum(p) > 0) and c != ignore_index for c, p in enumerate(pairs)]
    if task != "multiclass":
        counted = [not skip or sum(p) > 0 for p in pairs]
    if average == "micro":
        kept = [p for c, p in enumerate(pairs) if task != "multiclass" or c != ignore_index]
        return score(*np.sum(np.asarray(kept, float).reshape(-1, 3), axis=0))
    per = [score(*p) for p in pairs]
    return _average(per, [p[0] + p[2] for p in pairs], average, zero_division, counted)


def reference_top_k(logits: np.ndarray, target: np.ndarray, keep: np.ndarray, k: int,
                    average: str, num_classes: int, zero_division: float,
                    absent_classes: str | None = None, ignore_index: int | None = None):
    """Top-k hits by an explicit loop (ties count 1/2 per tied competitor at the boundary)."""
    hits = []
    ys = []
    for row, y, kp in zip(logits, target, keep, strict=True):
        if not kp:
            continue
        rank = sum(1.0 if row[j] > row[y] else 0.5 if row[j] == row[y] else 0.0
                   for j in range(num_classes) if j != y)
        gap = k - 0.5 - rank
        hits.append(1.0 if gap > 0 else 0.5 if gap == 0 else 0.0)
        ys.append(y)
    hits_a, ys_a = np.asarray(hits, float), np.asarray(ys, int)
    if average in ("micro", "weighted"):
        return hits_a.mean() if len(hits_a) else zero_division
    per = np.array([hits_a[ys_a == c].mean() if (ys_a == c).any() else zero_division
                    for c in range(num_classes)])
    if average == "none":
        return per
    present = np.array([((ys_a == c).any() or absent_classes == "include")
                        and c != ignore_index for c in range(num_classes)])
    return per[present].mean() if present.any() else zero_division
