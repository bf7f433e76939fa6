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


def _average(values: list[float], supports: list[float], average: str, zd: float):
    values_a, supports_a = np.asarray(values, float), np.asarray(supports, float)
    if average == "none":
        return values_a
    if average == "macro":
        return values_a.mean()
    if average == "weighted":
        total = supports_a.sum()
        return (values_a * supports_a).sum() / total if total > 0 else zd
    raise ValueError(average)


def reference(name: str, pred: np.ndarray, target: np.ndarray, keep: np.ndarray, *, task: str,
              num_classes: int, average: str, zero_division: float = 0.0,
              beta: float = 1.0) -> float | np.ndarray:
    """The exact metric of hard predictions, via scikit-learn (global, one group)."""
    zd = zero_division
    if task == "multiclass":
        yt, yp = target[keep].ravel(), pred[keep].ravel()
        labels = list(range(num_classes))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name == "accuracy":
                if len(yt) == 0:
                    return np.full(num_classes, zd) if average == "none" else zd
                if average in ("micro", "weighted"):
                    return skm.accuracy_score(yt, yp)
                if average == "macro":
                    return skm.balanced_accuracy_score(yt, yp)
                return skm.recall_score(yt, yp, labels=labels, average=None, zero_division=zd)
            if name == "mcc":
                if average == "micro":
                    return _sk_mcc(yt, yp, zd)
                per = [_sk_binary("mcc", (yt == c).astype(int), (yp == c).astype(int), zd, 1.0)
                       for c in range(num_classes)]
                return _average(per, [(yt == c).sum() for c in labels], average, zd)
            avg = None if average == "none" else average
            if len(yt) == 0:
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
    return _average(per, [yt.sum() for yt, _ in cols], average, zd)


def reference_tversky(pred: np.ndarray, target: np.ndarray, keep: np.ndarray, *, task: str,
                      num_classes: int, alpha: float, beta: float, average: str,
                      zero_division: float) -> float | np.ndarray:
    """Tversky index by explicit loops over samples and classes."""
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
    if average == "micro":
        return score(*np.sum(np.asarray(pairs, float), axis=0))
    per = [score(*p) for p in pairs]
    return _average(per, [p[0] + p[2] for p in pairs], average, zero_division)


def reference_top_k(logits: np.ndarray, target: np.ndarray, keep: np.ndarray, k: int,
                    average: str, num_classes: int, zero_division: float):
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
    present = np.array([(ys_a == c).any() for c in range(num_classes)])
    return per[present].mean() if present.any() else zero_division
